#!/usr/bin/env python3
"""Scrape size and time of a gateway's /metrics at scale (issue 12, SPEC §6: 10,000 endpoints).

One command, root, everything inside a private network namespace (loopback only):

    python3 bench/gateway_metrics.py [--endpoints 6000] [--extrapolate-to 10000] [--scrapes 5] [--json F]

1. Live: a real vpcep-gateway agent serves ``--endpoints`` routes (one port each, labels as long as
   real ones: a UUID, a namespace, an Endpoint name and a published service name) from a routes
   directory; once HAProxy serves them all, /metrics is scraped over HTTP several times. Reported:
   bytes per scrape, series, bytes per endpoint, wall and CPU time per scrape, the agent's memory.
   One HAProxy needs a descriptor per listener and per health check besides two per connection:
   this machine's hard limit of 20,000 descriptors per process stops a live gateway short of 10,000
   endpoints, so the live run defaults to 6,000.
2. At ``--extrapolate-to`` endpoints: HAProxy's real ``show stat`` rows of the live run, repeated under
   new endpoint ids, go through the same collector and prometheus_client exposition in this process
   (HAProxy's own ``show stat`` time is the live run's, scaled linearly).
"""

from __future__ import annotations

import argparse
import gzip
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
sys.path.insert(0, str(ROOT / "operator"))

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402

from vpcep.api.routing import Route  # noqa: E402
from vpcep.gateway.haproxy_process import HaproxyMaster, ProcessTable, unix_command  # noqa: E402
from vpcep.gateway.metrics import SHOW_STAT_PROXIES, GatewayCollector  # noqa: E402
from vpcep.gateway.reloader import AppliedState  # noqa: E402

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
                "--max-connections", "2000", "--log-level", "WARNING",
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
            started = time.perf_counter()
            stat = unix_command(str(work / "run" / "haproxy.sock"), SHOW_STAT_PROXIES)
            show_stat_seconds = time.perf_counter() - started
            return {
                "endpoints": count,
                "show_stat_seconds": round(show_stat_seconds, 3),
                "show_stat": stat,
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


class ReplayedHaproxy(HaproxyMaster):
    """Answers the collector with recorded HAProxy output instead of a live process."""

    def __init__(self, show_stat: str, show_info: str) -> None:
        super().__init__("haproxy", pathlib.Path("/nonexistent"), pathlib.Path("/nonexistent/haproxy.cfg"))
        self.answers = {SHOW_STAT_PROXIES: show_stat, "show info": show_info}

    def worker_command(self, command: str) -> str:
        return self.answers[command]

    def process_table(self, patience_s: float = 2.0) -> ProcessTable:
        return ProcessTable(master_pid=1, reloads=1, failed_reloads=0, current_worker=2, old_workers=())


def extrapolate(show_stat: str, live_count: int, target: int, scrapes: int) -> dict[str, Any]:
    """The collector and exposition at ``target`` endpoints, from the live run's real rows."""
    header, *rows = show_stat.splitlines()
    template = [row for row in rows if row.startswith(f"ep_{uuid.UUID(int=1)}")]
    lines = [header, *rows]
    for index in range(live_count, target):
        endpoint_id = str(uuid.UUID(int=index + 1))
        lines += [row.replace(str(uuid.UUID(int=1)), endpoint_id) for row in template]
    by_id = {route["endpointId"]: Route.model_validate(route) for route in routes(target)}
    state = AppliedState(live_routes=by_id)
    collector = GatewayCollector(
        ReplayedHaproxy("\n".join(lines) + "\n", "CurrConns: 0\nMaxconn: 2000\n"),
        lambda: state,
        lambda: by_id,
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    sizes, times, cpu = [], [], []
    for _ in range(scrapes):
        wall, process = time.perf_counter(), time.process_time()
        body = generate_latest(registry)
        times.append(time.perf_counter() - wall)
        cpu.append(time.process_time() - process)
        sizes.append(len(body))
    return {
        "endpoints": target,
        "scrape_bytes": max(sizes),
        "bytes_per_endpoint": round(max(sizes) / target),
        # Prometheus asks for gzip, which prometheus_client's server honours.
        "scrape_bytes_gzip": len(gzip.compress(body)),
        "collect_and_expose_seconds_median": round(statistics.median(times), 3),
        "collect_and_expose_cpu_seconds_median": round(statistics.median(cpu), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoints", type=int, default=6_000)
    parser.add_argument("--extrapolate-to", type=int, default=10_000)
    parser.add_argument("--scrapes", type=int, default=5)
    parser.add_argument("--json", type=pathlib.Path)
    args = parser.parse_args()
    if (
        os.environ.get(INSIDE) != "1"
    ):  # a private network namespace: nothing else's ports, nothing left behind
        env = dict(os.environ, **{INSIDE: "1"})
        return subprocess.call(["unshare", "--net", sys.executable, *sys.argv], env=env)
    live = run(args.endpoints, args.scrapes)
    show_stat = live.pop("show_stat")
    live["show_stat_seconds_at_target"] = round(
        live["show_stat_seconds"] * args.extrapolate_to / args.endpoints, 3
    )
    result = {
        "live": live,
        "at_target": extrapolate(show_stat, args.endpoints, args.extrapolate_to, args.scrapes),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
