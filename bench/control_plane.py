"""Control-plane benchmark (SPEC §6): one command, figures against the targets, a miss is reported.

    python bench/control_plane.py              # N = 1000 endpoints
    python bench/control_plane.py --large      # N = 10000 endpoints across 2000 services
    python bench/control_plane.py --kubeconfig K   # an existing API, not a private hack/testbed instance

What it does, on the test control plane (hack/testbed, a private instance on free ports unless --kubeconfig):
1. starts the operator as a real process (`python -m vpcep.main`) and a stand-in gateway that reports every
   route as applied as soon as it sees it (a watch; heartbeats every 2 s). The stand-in moves no bytes, so the
   latency below is the control plane's share of "apply -> Accepted"; the data path has its own benchmark;
2. creates N/5 EndpointServices and N Endpoints across several accounts (bulk, through the API);
3. measures apply -> Accepted for `--samples` more endpoints, one `kubectl apply -f` at a time, with the N
   already present (p50, p99);
4. measures idle: operator CPU and API writes over `--idle` seconds with nothing changing;
5. restarts the operator (SIGTERM, new process) and measures the time to "initial reconcile done" (its log
   line) and the API writes that restart caused (none expected: nothing changed);
6. reports peak RSS of each operator process.

Writes are also named ("idle_writes_by_kind", "restart_writes_by_kind": resource and verb, from the API
server's counters), and the operator runs under bench/collector_probe.py, which times CPython's garbage
collections: "collector_full_in_<phase>" counts the full ones in the bulk create, the samples and the restart,
"collector_longest_pause_in_<phase>_s" is the longest of any (the event loop serves nothing meanwhile).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import yaml
from kubernetes import client, config, watch

REPO = pathlib.Path(__file__).resolve().parents[1]
GROUP, VERSION = "vpcep.io", "v1alpha1"
TARGETS = {
    "latency_p50_s": 1.0,
    "latency_p99_s": 2.0,
    "restart_reconcile_s": 60.0,
    "peak_rss_mb": 300.0,
    "idle_cpu_percent": 1.0,
    "idle_writes": 0,
    "restart_writes": 0,
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Testbed:
    kubeconfig: str
    instance: pathlib.Path | None = None

    @classmethod
    def start(cls, kubeconfig: str | None) -> Testbed:
        if kubeconfig:
            return cls(kubeconfig)
        script = REPO / "hack" / "testbed"
        if not script.exists():
            sys.exit("bench: no hack/testbed in this checkout; pass --kubeconfig (or set KUBECONFIG)")
        instance = pathlib.Path(tempfile.mkdtemp(prefix="vpcep-bench-"))
        subprocess.run([str(script), "up", "--dir", str(instance)], check=True)
        return cls(str(instance / "kubeconfig"), instance)

    def stop(self) -> None:
        if self.instance is not None:
            subprocess.run(
                [str(REPO / "hack" / "testbed"), "down", "--dir", str(self.instance), "--purge"], check=False
            )
            shutil.rmtree(self.instance, ignore_errors=True)


def kubectl(kubeconfig: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, *args],
        input=input,
        text=True,
        capture_output=True,
        check=True,
    )


@dataclass
class Operator:
    kubeconfig: str
    config_path: pathlib.Path
    namespace: str
    log_path: pathlib.Path = field(init=False)
    process: subprocess.Popen[bytes] | None = None
    spawned_at: float = 0.0

    def start(self) -> None:
        self.log_path = pathlib.Path(tempfile.mkstemp(prefix="vpcep-bench-operator-", suffix=".log")[1])
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "PYTHONPATH": str(REPO / "operator")}
        self.spawned_at = time.monotonic()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    str(REPO / "bench" / "collector_probe.py"),  # vpcep.main, its collections timed
                    "--config",
                    str(self.config_path),
                    "--namespace",
                    self.namespace,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        profile_dir = os.environ.get("VPCEP_BENCH_PROFILE")
        if profile_dir:  # sampled stacks of this operator process, for finding where the time goes
            output = pathlib.Path(profile_dir) / f"operator-{self.process.pid}.txt"
            subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--pid",
                    str(self.process.pid),
                    "--format",
                    "raw",
                    "--rate",
                    "50",
                    "--nonblocking",
                    "--output",
                    str(output),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def proc_status(self, field_name: str) -> float:
        assert self.process is not None
        for line in pathlib.Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024 / 1e6  # /proc says kB (KiB); SPEC §6 says MB (10^6 bytes)
        return 0.0

    def cpu_seconds(self) -> float:
        assert self.process is not None
        fields = pathlib.Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def collector_pauses(self, since: float, until: float) -> list[tuple[int, float]]:
        """(generation, seconds) of each collection the probe reported between two time.monotonic()s."""
        pattern = re.compile(r"collector: generation=(\d) pause_s=([0-9.]+) collected=\d+ at=([0-9.]+)")
        found = pattern.findall(self.log_path.read_text(errors="replace"))
        return [(int(gen), float(pause)) for gen, pause, at in found if since <= float(at) <= until]

    def wait_initial_sync(self, timeout: float) -> float:
        """Seconds from spawn (interpreter start included) to the operator's 'initial reconcile done' line."""
        deadline = time.monotonic() + timeout
        pattern = re.compile(r"initial reconcile done in ([0-9.]+)s")
        while time.monotonic() < deadline:
            if pattern.search(self.log_path.read_text(errors="replace")):
                return time.monotonic() - self.spawned_at
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"operator exited; log: {self.log_path}")
            time.sleep(0.05)
        raise TimeoutError(f"no initial reconcile within {timeout}s; log: {self.log_path}")


class StandInGateway:
    """Reports every route it has seen (a watch) as applied; heartbeat every 5 s. Counts its own writes."""

    def __init__(self, api: client.CoreV1Api, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.writes = 0
        self.max_report_gap = (
            0.0  # longest time between two reports (> heartbeat timeout: gateway "not ready")
        )
        self._applied = 0
        self._reported = -1
        self._last_report = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._watch, daemon=True),
            threading.Thread(target=self._report, daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.api.list_namespaced_config_map,
                    self.namespace,
                    label_selector="vpcep.io/route=true",
                    timeout_seconds=60,
                ):
                    version = int(event["object"].metadata.resource_version)
                    with self._lock:
                        self._applied = max(self._applied, version)
                    if self._stop.is_set():
                        break
            except Exception:  # a dropped watch is simply re-opened
                time.sleep(0.2)

    def _report(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                applied = self._applied
            if applied != self._reported or time.monotonic() - self._last_report > 2:
                status = {
                    "gateway": "bench",
                    "address": "10.244.0.10",
                    "appliedResourceVersion": applied,
                    "heartbeat": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
                body: Any = {
                    "metadata": {
                        "name": "vpcep-gateway-bench",
                        "labels": {"vpcep.io/gateway-status": "true"},
                    },
                    "data": {"status.json": json.dumps(status)},
                }
                try:
                    self.api.patch_namespaced_config_map("vpcep-gateway-bench", self.namespace, body)
                except client.ApiException:
                    self.api.create_namespaced_config_map(self.namespace, body)
                self.writes += 1
                now = time.monotonic()
                if self._last_report:
                    self.max_report_gap = max(self.max_report_gap, now - self._last_report)
                self._reported, self._last_report = applied, now
            time.sleep(0.02)


def cluster_revision(api: client.CoreV1Api) -> int:
    listed: Any = api.list_namespace(limit=1)
    return int(listed.metadata.resource_version)


def parallel(calls: list[Callable[[], Any]], workers: int = 8) -> None:
    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(call) for call in calls]:
            future.result()


def wait_phases(custom: client.CustomObjectsApi, plural: str, wanted: str, count: int, timeout: float) -> int:
    """Polls until `count` objects are in phase `wanted`; returns the number of LISTs it sent."""
    started = time.monotonic()
    polls = 0
    while time.monotonic() - started < timeout:
        listed: Any = custom.list_cluster_custom_object(GROUP, VERSION, plural)
        polls += 1
        items = listed["items"]
        done = sum(1 for item in items if (item.get("status") or {}).get("phase") == wanted)
        if done >= count:
            return polls
        # Each poll LISTs every object: at 10,000 endpoints a 1 s poll is a good share of the API server's
        # CPU, taken from the operator being measured.
        time.sleep(min(5.0, 0.5 + count / 2000))
    raise TimeoutError(f"only some {plural} reached {wanted} within {timeout}s")


def api_requests(kubeconfig: str) -> dict[str, int]:
    """The API server's own request counters (everything but WATCH), by "resource[/subresource] VERB".
    Counts do not depend on machine load, so they compare runs that timings cannot."""
    text = kubectl(kubeconfig, "get", "--raw", "/metrics").stdout
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
        if labels.get("verb") in ("WATCH", "LIST", "GET") and not labels.get("resource"):
            continue
        if labels.get("verb") == "WATCH":
            continue
        subresource = f"/{labels['subresource']}" if labels.get("subresource") else ""
        name = f"{labels.get('resource', '')}{subresource} {labels.get('verb', '')}"
        counts[name] = counts.get(name, 0) + int(float(line.rsplit(" ", 1)[1]))
    return counts


def requests_per_endpoint(
    before: dict[str, int], after: dict[str, int], endpoints: int, exclude: dict[str, int]
) -> dict[str, float]:
    """The operator's API requests per endpoint in a phase: the counters' growth minus what the bench and
    the stand-in gateway sent themselves (`exclude`), largest first."""
    grown = {name: after[name] - before.get(name, 0) - exclude.get(name, 0) for name in after}
    return {
        name: round(count / endpoints, 2)
        for name, count in sorted(grown.items(), key=lambda item: -item[1])
        if count / endpoints >= 0.01
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = 10000 if args.large else args.n
    services = max(1, n // 5)
    accounts = max(2, n // 500)
    testbed = Testbed.start(args.kubeconfig or os.environ.get("KUBECONFIG"))
    pid = os.getpid()
    operator_ns = f"vpcep-bench-{pid}"
    results: dict[str, Any] = {"endpoints": n, "services": services, "accounts": accounts}
    operators: list[Operator] = []
    namespaces: list[str] = []
    try:
        config.load_kube_config(config_file=testbed.kubeconfig)
        core, custom = client.CoreV1Api(), client.CustomObjectsApi()
        kubectl(testbed.kubeconfig, "apply", "-f", str(REPO / "crds"))
        config_path = pathlib.Path(tempfile.mkstemp(prefix="vpcep-bench-", suffix=".yaml")[1])
        config_path.write_text(
            yaml.safe_dump(
                {
                    "quotas": {"default": {"services": n, "endpoints": n * 2, "gatewayPorts": n * 2}},
                    "cloudServices": [],
                    "gatewayPorts": {"first": 10000, "last": 65000},
                }
            )
        )
        operator = Operator(testbed.kubeconfig, config_path, operator_ns)
        operator.start()
        operators.append(operator)
        time.sleep(2)
        gateway = StandInGateway(core, operator_ns)
        while True:
            try:
                core.read_namespace(operator_ns)
                break
            except client.ApiException:
                time.sleep(0.2)
        gateway.start()

        providers = [f"bench-p{a}-{pid}" for a in range(accounts)]
        consumers = [f"bench-c{a}-{pid}" for a in range(accounts)]
        namespaces = [*providers, *consumers, f"bench-s-{pid}"]
        for index, namespace in enumerate(namespaces):
            account = f"acct-{index % accounts}" if index < 2 * accounts else "acct-0"
            namespace_body: Any = {"metadata": {"name": namespace, "labels": {"vpcep.io/account": account}}}
            core.create_namespace(namespace_body)
        for provider in providers:
            backend: Any = {
                "metadata": {"name": "backend"},
                "spec": {"selector": {"app": "backend"}, "ports": [{"port": 8080, "targetPort": 8080}]},
            }
            core.create_namespaced_service(provider, backend)

        def make_service(index: int) -> Callable[[], Any]:
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "EndpointService",
                "metadata": {"name": f"svc-{index}"},
                "spec": {
                    "backend": {"kind": "Service", "name": "backend"},
                    "ports": [{"serverPort": 8080, "clientPort": 80}],
                },
            }
            return lambda: custom.create_namespaced_custom_object(
                GROUP, VERSION, providers[index % accounts], "endpointservices", body
            )

        started = time.monotonic()
        parallel([make_service(i) for i in range(services)])
        wait_phases(custom, "endpointservices", "Available", services, timeout=600)
        results["services_available_s"] = round(time.monotonic() - started, 1)
        names = {}
        published: Any = custom.list_cluster_custom_object(GROUP, VERSION, "endpointservices")
        for item in published["items"]:
            names[item["metadata"]["name"]] = item["status"]["serviceName"]

        def make_endpoint(index: int) -> Callable[[], Any]:
            service = index % services
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Endpoint",
                "metadata": {"name": f"ep-{index}"},
                "spec": {"serviceName": names[f"svc-{service}"]},
            }
            return lambda: custom.create_namespaced_custom_object(
                GROUP, VERSION, consumers[service % accounts], "endpoints", body
            )

        started = time.monotonic()
        requests_before, gateway_writes_before = api_requests(testbed.kubeconfig), gateway.writes
        parallel([make_endpoint(i) for i in range(n)])
        polls = wait_phases(custom, "endpoints", "Accepted", n, timeout=3600)
        results["bulk_accept_s"] = round(time.monotonic() - started, 1)
        results["bulk_rate_per_s"] = round(n / results["bulk_accept_s"], 1)
        results["bulk_operator_cpu_ms_per_endpoint"] = round(1000 * operator.cpu_seconds() / n, 2)
        results.update(collector_figures(operator.collector_pauses(started, time.monotonic()), "bulk"))

        sampling = time.monotonic()
        results.update(
            measure_latency(testbed.kubeconfig, custom, names["svc-0"], namespaces[-1], args.samples)
        )
        results.update(collector_figures(operator.collector_pauses(sampling, time.monotonic()), "samples"))
        time.sleep(3)
        results.update(measure_idle(testbed.kubeconfig, core, operator, gateway, args.idle))
        results["peak_rss_mb"] = round(operator.proc_status("VmHWM"), 1)
        # Bulk, samples and idle together, so what trails the last Accepted (counts, Events) is included.
        own = {  # what the bench and the stand-in gateway sent themselves
            "endpoints POST": n + args.samples,
            "endpoints GET": args.samples,  # kubectl apply looks first
            "endpoints LIST": polls,
            "namespaces LIST": 2,
            "configmaps PATCH": gateway.writes - gateway_writes_before,
        }
        per_endpoint = requests_per_endpoint(
            requests_before, api_requests(testbed.kubeconfig), n + args.samples, own
        )
        results["api_requests_per_endpoint"] = round(sum(per_endpoint.values()), 2)
        results["api_requests_per_endpoint_by_kind"] = per_endpoint

        before, leases_before = cluster_revision(core), lease_writes(testbed.kubeconfig)
        writes_before, requests_before = gateway.writes, api_requests(testbed.kubeconfig)
        operator.stop()
        restarted = Operator(testbed.kubeconfig, config_path, operator_ns)
        restarted.start()
        operators.append(restarted)
        results["restart_reconcile_s"] = round(restarted.wait_initial_sync(timeout=600), 2)
        results["restart_operator_cpu_s"] = round(restarted.cpu_seconds(), 2)  # comparable under load
        results.update(collector_figures(restarted.collector_pauses(0, time.monotonic()), "restart"))
        # the old leader releasing its Lease, the new one taking it
        leases = lease_writes(testbed.kubeconfig) - leases_before
        results["restart_writes"] = (
            cluster_revision(core) - before - (gateway.writes - writes_before) - leases
        )
        results["restart_writes_by_kind"] = operator_writes(
            requests_before, api_requests(testbed.kubeconfig), gateway.writes - writes_before
        )
        results["restart_peak_rss_mb"] = round(restarted.proc_status("VmHWM"), 1)
        results["peak_rss_mb"] = max(results["peak_rss_mb"], results["restart_peak_rss_mb"])
        results["stand_in_max_report_gap_s"] = round(gateway.max_report_gap, 1)
        gateway.stop()
        if args.keep:
            print(f"bench: --keep: left namespaces {namespaces} and {operator_ns} in place", file=sys.stderr)
            namespaces = []
        elif testbed.instance is not None:
            namespaces = []  # a private testbed is purged whole: deleting 10,000 endpoints first only waits
        for namespace in namespaces:
            core.delete_namespace(namespace)
        for namespace in namespaces:
            for _ in range(600):
                try:
                    core.read_namespace(namespace)
                    time.sleep(0.5)
                except client.ApiException:
                    break
        if not args.keep and testbed.instance is None:
            core.delete_namespace(operator_ns)
    finally:
        for operator in operators:
            operator.stop()
        testbed.stop()
    for operator in operators:  # kept when something failed: the exception names the log
        if args.keep_logs:
            print(f"bench: operator log kept: {operator.log_path}", file=sys.stderr)
        else:
            operator.log_path.unlink(missing_ok=True)
    return results


def measure_latency(
    kubeconfig: str, custom: client.CustomObjectsApi, service_name: str, namespace: str, samples: int
) -> dict[str, Any]:
    """One `kubectl apply -f` at a time; the time until a watch sees the endpoint Accepted."""
    accepted: dict[str, float] = {}
    ready = threading.Event()

    def watch_accepted() -> None:
        stream = watch.Watch()
        ready.set()
        for event in stream.stream(
            custom.list_namespaced_custom_object, GROUP, VERSION, namespace, "endpoints", timeout_seconds=600
        ):
            body = event["object"]
            if (body.get("status") or {}).get("phase") == "Accepted":
                accepted.setdefault(body["metadata"]["name"], time.monotonic())
            if len(accepted) >= samples:
                return

    watcher = threading.Thread(target=watch_accepted, daemon=True)
    watcher.start()
    ready.wait()
    time.sleep(0.5)
    latencies = []
    slowest: list[tuple[float, str]] = []
    for index in range(samples):
        name = f"sample-{index}"
        manifest = yaml.safe_dump(
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Endpoint",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"serviceName": service_name},
            }
        )
        started = time.monotonic()
        kubectl(kubeconfig, "apply", "-f", "-", input=manifest)
        while name not in accepted:
            if time.monotonic() - started > 60:
                raise TimeoutError(f"{name} not Accepted within 60s")
            time.sleep(0.005)
        latencies.append(accepted[name] - started)
        slowest.append((round(accepted[name] - started, 2), name))
    _, worst = max(slowest)
    events = kubectl(
        kubeconfig,
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        f"involvedObject.name={worst}",
        "-o",
        "custom-columns=AT:.lastTimestamp,REASON:.reason",
        "--no-headers",
    ).stdout.split("\n")
    return {
        "latency_slowest_events": [line for line in events if line.strip()],  # what the slowest waited for
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p99_s": round(percentile(latencies, 0.99), 3),
        "latency_max_s": round(max(latencies), 3),
        "latency_slowest": sorted(slowest, reverse=True)[:3],
    }


def lease_writes(kubeconfig: str) -> int:
    """Leader-election renewals (R50): a heartbeat, not a change; counted apart from the idle writes."""
    writes = ("leases POST", "leases PUT", "leases PATCH", "leases APPLY", "leases DELETE")
    return sum(count for name, count in api_requests(kubeconfig).items() if name in writes)


WRITE_VERBS = ("POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION")


def operator_writes(before: dict[str, int], after: dict[str, int], gateway_writes: int) -> dict[str, int]:
    """The writes between two readings of the API server's counters, by "resource VERB", without the lease
    heartbeats and the stand-in gateway's reports: what a 'writes' figure counted, named."""
    grown = {name: count - before.get(name, 0) for name, count in after.items()}
    grown["configmaps PATCH"] = grown.get("configmaps PATCH", 0) - gateway_writes
    return {
        name: count
        for name, count in sorted(grown.items())
        if count > 0 and name.rsplit(" ", 1)[-1] in WRITE_VERBS and not name.startswith("leases ")
    }


def collector_figures(pauses: list[tuple[int, float]], phase: str) -> dict[str, Any]:
    """What CPython's collector took from a phase (bench/collector_probe.py): full collections and the
    longest pause of any generation -- the event loop serves nothing meanwhile."""
    return {
        f"collector_full_in_{phase}": sum(1 for generation, _ in pauses if generation == 2),
        f"collector_longest_pause_in_{phase}_s": max((pause for _, pause in pauses), default=0.0),
    }


def measure_idle(
    kubeconfig: str, core: client.CoreV1Api, operator: Operator, gateway: StandInGateway, seconds: float
) -> dict[str, Any]:
    before_cpu, before_rev, before_writes = operator.cpu_seconds(), cluster_revision(core), gateway.writes
    before_leases, requests_before = lease_writes(kubeconfig), api_requests(kubeconfig)
    time.sleep(seconds)
    cpu = operator.cpu_seconds() - before_cpu
    leases = lease_writes(kubeconfig) - before_leases
    writes = cluster_revision(core) - before_rev - (gateway.writes - before_writes) - leases
    return {
        "idle_cpu_percent": round(100 * cpu / seconds, 2),
        "idle_writes": writes,
        "idle_writes_by_kind": operator_writes(
            requests_before, api_requests(kubeconfig), gateway.writes - before_writes
        ),
        "idle_lease_renewals": leases,
        "rss_after_load_mb": round(operator.proc_status("VmRSS"), 1),
    }


def report(results: dict[str, Any]) -> int:
    print(json.dumps(results, indent=2))
    misses = []
    print(f"\n{'metric':24} {'measured':>10} {'target':>10}")
    for metric, target in TARGETS.items():
        value = results.get(metric)
        ok = value is not None and value <= target
        print(f"{metric:24} {value!s:>10} {'<= ' + str(target):>10}  {'ok' if ok else 'MISS'}")
        if not ok:
            misses.append(metric)
    if results["endpoints"] < 10000:
        print("(restart and memory targets are stated for 10,000 endpoints; run with --large for those)")
    if misses:
        print(f"MISSED: {', '.join(misses)}")
    return 1 if misses else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000, help="endpoints to create (default 1000)")
    parser.add_argument("--large", action="store_true", help="10,000 endpoints across 2,000 services")
    parser.add_argument("--samples", type=int, default=50, help="apply -> Accepted samples (default 50)")
    parser.add_argument("--idle", type=float, default=20.0, help="idle measurement window, seconds")
    parser.add_argument("--keep", action="store_true", help="leave the objects in place (for investigations)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the operator processes' logs")
    parser.add_argument("--kubeconfig", help="use this API instead of a private hack/testbed instance")
    # SIGTERM (a timeout, a CI cancel) unwinds like Ctrl-C: the operators and the private testbed are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return report(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
