#!/usr/bin/env python3
"""Scrape size and time of a gateway's /metrics at 10,000 endpoints (issue 12, SPEC §6 scale).

One command, root, everything inside a private network namespace (loopback only):

    python3 bench/gateway_metrics.py [--endpoints 10000] [--scrapes 5] [--json results.json]

A real vpcep-gateway agent serves N routes (one port each, labels as long as real ones: a UUID,
a namespace, an Endpoint name and a published service name) from a routes directory; once HAProxy
serves them all, /metrics is scraped several times over HTTP. Reported: bytes per scrape, series,
bytes per endpoint, scrape time (median and worst), and the agent's resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
METRICS_PORT = 9464
FIRST_PORT = 20000
INSIDE = "VPCEP_BENCH_IN_NETNS"


def routes(count: int) -> list[dict[str, Any]]:
    documents = []
    for index in range(count):
        endpoint_id = str(uuid.UUID(int=index + 1))
        documents.append(
            {
                "endpointId": endpoint_id,
                "markerId": index + 1,
                "listeners": [
                    # A backend on loopback that nobody serves: health checks run (and fail) as they would.
                    {"gatewayPort": FIRST_PORT + index, "clientPort": 443, "backendHost": "127.0.0.2",
                     "serverPort": 8443}
                ],
                "consumerNamespace": f"team-consumer-{index % 500:03d}",
                "endpointName": f"orders-database-{index:05d}",
                "serviceName": f"local-1.orders-db-{index % 2000:04d}.{uuid.UUID(int=index % 2000 + 7)}",
            }
        )  # fmt: skip
    return documents


def scrape() -> tuple[int, int, float]:
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=120) as answer:
        body = answer.read()
    elapsed = time.perf_counter() - started
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return len(body), series, elapsed


def cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(count: int, scrapes: int) -> dict[str, Any]:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with tempfile.TemporaryDirectory(prefix="vpcep-metrics-bench-") as workdir:
        work = pathlib.Path(workdir)
        (work / "routes").mkdir()
        (work / "routes" / "all.json").write_text(json.dumps(routes(count)))
        env = dict(os.environ, PYTHONPATH=str(ROOT / "operator"))
        agent = subprocess.Popen(
            [
                sys.executable, "-m", "vpcep.gateway.agent",
                "--routes-dir", str(work / "routes"), "--runtime-dir", str(work / "run"),
                "--bind-address", "127.0.0.1", "--metrics-port", str(METRICS_PORT),
                "--log-level", "WARNING",
            ],
            env=env,
        )  # fmt: skip
        try:
            started = time.monotonic()
            while True:
                try:
                    status = json.loads((work / "run" / "status.json").read_text())
                    series = scrape()[1] if status.get("appliedResourceVersion") else 0
                except (OSError, ValueError):
                    series = 0
                if series >= count:
                    break
                if agent.poll() is not None or time.monotonic() - started > 900:
                    raise SystemExit("the agent did not serve every route within 15 minutes")
                time.sleep(2)
            served_after = time.monotonic() - started
            results = []
            cpu = []
            for _ in range(scrapes):
                before = cpu_seconds(agent.pid)
                results.append(scrape())
                cpu.append(cpu_seconds(agent.pid) - before)
            sizes = [size for size, _, _ in results]
            times = [elapsed for _, _, elapsed in results]
            return {
                "endpoints": count,
                "seconds_until_served": round(served_after, 1),
                "scrape_bytes": max(sizes),
                "scrape_series": results[-1][1],
                "bytes_per_endpoint": round(max(sizes) / count),
                "scrape_seconds_median": round(statistics.median(times), 3),
                "scrape_seconds_max": round(max(times), 3),
                # CPU the agent spent per scrape: less sensitive than wall time to a busy shared machine.
                "scrape_cpu_seconds_median": round(statistics.median(cpu), 3),
                "agent_rss_mb": round(rss_mb(agent.pid), 1),
            }
        finally:
            agent.terminate()
            agent.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoints", type=int, default=10_000)
    parser.add_argument("--scrapes", type=int, default=5)
    parser.add_argument("--json", type=pathlib.Path)
    args = parser.parse_args()
    if (
        os.environ.get(INSIDE) != "1"
    ):  # a private network namespace: nothing else's ports, nothing left behind
        env = dict(os.environ, **{INSIDE: "1"})
        return subprocess.call(["unshare", "--net", sys.executable, *sys.argv], env=env)
    result = run(args.endpoints, args.scrapes)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
