"""Chaos benchmark (SPEC §6 reliability, R50, R52, R30): random SIGKILLs of the leader operator and of gateway
agents during create/delete storms of Endpoints; at the end the system must have converged with no orphan, no
duplicate allocation, and no failed connection on the endpoints established before the chaos began.

    python bench/chaos.py                  # 50 kills, about 8 minutes on two shared cores
    python bench/chaos.py --kills 10       # shorter
    python bench/chaos.py --kubeconfig K   # an existing API, not a private hack/testbed instance

What runs, all real processes on the test control plane (hack/testbed, a private instance on free ports):
- two operators (`python -m vpcep.main`) with leader election on their Lease (R50); a killed one is started
  again after a second, as a Deployment's pod would be (a new identity, as a new pod);
- two gateway agents (`python -m vpcep.gateway.agent`) each driving its own HAProxy bound to a loopback
  address of its own (127.0.0.2, 127.0.0.3); a killed agent is started again after a second and adopts the
  HAProxy that kept serving (a container restart: R30, R47);
- a backend: a threaded echo server on 127.0.0.1 behind a Pod backend (the testbed has no kubelet: the bench
  writes the Pod's status);
- traffic: clients dial the established endpoints through the gateways their EndpointSlice lists (a userspace
  kube-proxy stand-in re-reading the slices every second): a steady stream of new connections, each sending a
  line and reading it back through HAProxy, plus long-lived streams talking every half second;
- a storm: Endpoints created and deleted at random (a few per second) across several services;
- the chaos: `--kills` SIGKILLs at random moments (2-8 s apart), each of the current leader (the Lease's
  holder; after a leader kill the bench waits for the next leader, up to 30 s) or of one gateway agent,
  half and half.

Then the storm stops, every process is running again, and the bench waits for convergence and checks:
converged (every Endpoint Accepted, nothing stuck deleting, every gateway applied every route), orphans
(routes, EndpointConnections, consumer Services/EndpointSlices/NetworkPolicies of Endpoints that are gone),
duplicates (two live Endpoints holding one gateway port at any moment the watch saw, two holding one marker id
of a service, or a marker id handed to a second Endpoint ever), failed connections and broken streams.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import pathlib
import random
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import yaml
from control_plane import REPO, Testbed, kubectl
from kubernetes import client, config, watch

GROUP, VERSION = "vpcep.io", "v1alpha1"
GATEWAY_ADDRESSES = ("127.0.0.2", "127.0.0.3")
MANAGED = "app.kubernetes.io/managed-by=vpcep-operator"


def load_average() -> str:
    return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])


class EchoHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(OSError):
            for line in self.rfile:
                self.wfile.write(line)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@dataclass
class Process:
    """One restartable process of the scene (an operator replica or a gateway agent container)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    logs: pathlib.Path
    generation: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def identity(self) -> str:
        return f"{self.name}-{self.generation}"

    def start(self) -> None:
        self.generation += 1
        log = (self.logs / f"{self.identity}.log").open("wb")
        env = {**self.env, "POD_NAME": self.identity}
        self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGINT)  # at once, no drain: the bench is over
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Traffic:
    """New connections and long-lived streams to the established endpoints, through the listed gateways."""

    discovery: client.DiscoveryV1Api
    namespace: str
    targets: dict[str, tuple[tuple[str, ...], int]] = field(
        default_factory=dict
    )  # slice -> (addresses, port)
    connects: int = 0
    failed: list[str] = field(default_factory=list)
    exchanges: int = 0
    broken: list[str] = field(default_factory=list)
    streams: list[socket.socket] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def refresh(self) -> None:
        slices: Any = self.discovery.list_namespaced_endpoint_slice(self.namespace, label_selector=MANAGED)
        targets = {}
        for item in slices.items:
            addresses = tuple(a for e in item.endpoints or () for a in e.addresses)
            if addresses and item.ports:
                targets[item.metadata.name] = (addresses, int(item.ports[0].port))
        self.targets = targets

    def _dial(self) -> socket.socket:
        addresses, port = random.choice(list(self.targets.values()))
        return socket.create_connection((random.choice(addresses), port), timeout=5)

    def start(self, streams: int, per_second: float) -> None:
        for _ in range(streams):
            self.streams.append(self._dial())
        for target in (self._follow_slices, self._new_connections, self._talk):
            threading.Thread(target=target, args=(per_second,), daemon=True).start()

    def _follow_slices(self, _rate: float) -> None:
        while not self._stop.wait(1.0):
            with contextlib.suppress(Exception):  # an API hiccup: keep the last known slices
                self.refresh()

    def _new_connections(self, per_second: float) -> None:
        while not self._stop.wait(1.0 / per_second):
            self.connects += 1
            try:
                with self._dial() as sock:
                    sock.sendall(b"hello\n")
                    if sock.makefile("rb").readline() != b"hello\n":
                        raise ConnectionError("no echo")
            except OSError as error:
                self.failed.append(f"{time.strftime('%H:%M:%S')} {error!r}")

    def _talk(self, _rate: float) -> None:
        readers = [stream.makefile("rb") for stream in self.streams]
        alive = [True] * len(self.streams)
        while not self._stop.wait(0.5):
            for index, stream in enumerate(self.streams):
                if not alive[index]:
                    continue
                try:
                    stream.sendall(b"still here\n")
                    if readers[index].readline() != b"still here\n":
                        raise ConnectionError("no echo")
                    self.exchanges += 1
                except OSError as error:
                    alive[index] = False
                    self.broken.append(f"#{index} {time.strftime('%H:%M:%S')} {error!r}")

    def stop(self) -> None:
        self._stop.set()
        time.sleep(1)
        for stream in self.streams:
            stream.close()


class AllocationWatch:
    """Every state the API server went through (two watches): two live Endpoints holding one gateway port, or
    one marker id of a service, at once; a marker id of a service ever given to a second Endpoint; two route
    ConfigMaps naming one gateway port at once (what the gateways see: the second is left out until the
    first goes)."""

    def __init__(self, core: client.CoreV1Api, custom: client.CustomObjectsApi, operator_ns: str) -> None:
        self.core, self.custom, self.operator_ns = core, custom, operator_ns
        self.duplicate_ports: list[str] = []
        self.duplicate_markers: list[str] = []
        self.route_overlaps: list[str] = []
        self.events = 0
        self._ports: dict[int, str] = {}  # gateway port -> uid of the live endpoint holding it
        self._held: dict[str, set[int]] = collections.defaultdict(set)
        self._markers: dict[tuple[str, int], str] = {}  # (service, marker id) -> uid it was first given to
        self._route_ports: dict[int, str] = {}  # gateway port -> route ConfigMap naming it
        self._route_held: dict[str, set[int]] = collections.defaultdict(set)
        self._stop = threading.Event()

    def start(self) -> None:
        endpoints: tuple[Any, ...] = (
            self.custom.list_cluster_custom_object, (GROUP, VERSION, "endpoints"), {}, self._see,
        )  # fmt: skip
        routes = (
            self.core.list_namespaced_config_map, (self.operator_ns,),
            {"label_selector": "vpcep.io/route=true"}, self._see_route,
        )  # fmt: skip
        for follow in (endpoints, routes):
            threading.Thread(target=self._follow, args=follow, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _follow(self, lister: Any, args: tuple[str, ...], kwargs: dict[str, str], handler: Any) -> None:
        version = ""
        while not self._stop.is_set():
            try:
                stream = watch.Watch()
                for event in stream.stream(
                    lister, *args, **kwargs, resource_version=version, timeout_seconds=30
                ):
                    body = event.get("raw_object") or event["object"]
                    version = body["metadata"]["resourceVersion"]
                    handler(event["type"], body)
                    if self._stop.is_set():
                        return
            except client.ApiException as error:
                if error.status == 410:
                    version = ""  # expired: list again from now (a gap; the final check covers the end)
                time.sleep(0.2)
            except Exception:
                time.sleep(0.2)

    def _see_route(self, kind: str, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        for port in self._route_held.pop(name, set()):
            if self._route_ports.get(port) == name:
                del self._route_ports[port]
        if kind == "DELETED":
            return
        route = json.loads((body.get("data") or {}).get("route.json") or "{}")
        for listener in route.get("listeners") or []:
            port = int(listener["gatewayPort"])
            holder = self._route_ports.setdefault(port, name)
            if holder != name:
                self.route_overlaps.append(f"{time.strftime('%H:%M:%S')} port {port}: {holder} and {name}")
            self._route_held[name].add(port)

    def _see(self, kind: str, body: dict[str, Any]) -> None:
        self.events += 1
        uid = body["metadata"]["uid"]
        status = body.get("status") or {}
        for port in self._held.pop(uid, set()):
            if self._ports.get(port) == uid:
                del self._ports[port]
        if kind == "DELETED" or body["metadata"].get("deletionTimestamp"):
            return
        for mapping in status.get("gatewayPorts") or []:
            port = int(mapping["gatewayPort"])
            holder = self._ports.setdefault(port, uid)
            if holder != uid:
                self.duplicate_ports.append(f"port {port}: {holder} and {uid}")
            self._held[uid].add(port)
        marker = status.get("markerId")
        if marker:
            key = (body["spec"]["serviceName"], int(marker))
            first = self._markers.setdefault(key, uid)
            if first != uid:
                self.duplicate_markers.append(f"marker {key}: {first} and {uid}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    pid = os.getpid()
    operator_ns, provider, consumer, storm_ns = (f"chaos-{kind}-{pid}" for kind in ("op", "p", "c", "s"))
    work = pathlib.Path(tempfile.mkdtemp(prefix="vpcep-chaos-"))
    testbed = Testbed.start(args.kubeconfig or os.environ.get("KUBECONFIG"))
    results: dict[str, Any] = {"kills_requested": args.kills, "load_average_start": load_average()}
    processes: list[Process] = []
    echo = EchoServer(("127.0.0.1", 0), EchoHandler)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    started = time.monotonic()
    try:
        config.load_kube_config(config_file=testbed.kubeconfig)
        core, custom = client.CoreV1Api(), client.CustomObjectsApi()
        coordination, discovery = client.CoordinationV1Api(), client.DiscoveryV1Api()
        kubectl(testbed.kubeconfig, "apply", "-f", str(REPO / "crds"))
        first_port = 40000 + pid % 50 * 200
        operator_config = work / "operator.yaml"
        operator_config.write_text(yaml.safe_dump({
            "quotas": {"default": {"services": 100, "endpoints": 1000, "gatewayPorts": 1000}},
            "cloudServices": [],
            "gatewayPorts": {"first": first_port, "last": first_port + 199},
            "gatewayIngressPolicy": False,  # no network plugin on loopback
        }))  # fmt: skip
        env = {**os.environ, "KUBECONFIG": testbed.kubeconfig, "PYTHONPATH": str(REPO / "operator")}
        operators = [
            Process(f"operator-{name}", [sys.executable, "-m", "vpcep.main", "--config", str(operator_config),
                                         "--namespace", operator_ns], env, work)
            for name in ("a", "b")
        ]  # fmt: skip
        for operator in operators:
            operator.start()
        processes.extend(operators)
        wait(lambda: namespace_exists(core, operator_ns), 60, "the operator namespace")
        gateways = [
            Process(f"gateway-{index}", [
                sys.executable, "-m", "vpcep.gateway.agent", "--name", f"chaos-{index}", "--namespace",
                operator_ns, "--address", address, "--bind-address", address,
                "--runtime-dir", str(work / f"gateway-{index}"), "--heartbeat-interval", "1",
            ], env, work)
            for index, address in enumerate(GATEWAY_ADDRESSES)
        ]  # fmt: skip
        for gateway in gateways:
            gateway.start()
        processes.extend(gateways)

        for namespace in (provider, consumer, storm_ns):
            namespace_body: Any = {
                "metadata": {"name": namespace, "labels": {"vpcep.io/account": f"chaos-{pid}"}}
            }
            core.create_namespace(namespace_body)
        pod: Any = {  # a Pod backend; the testbed runs no kubelet, so the bench writes its status
            "metadata": {"name": "echo", "labels": {"app": "echo"}},
            "spec": {"containers": [{"name": "echo", "image": "example.invalid/echo"}]},
        }
        core.create_namespaced_pod(provider, pod)
        core.patch_namespaced_pod_status(
            "echo", provider, {"status": {"phase": "Running", "podIP": "127.0.0.1"}}
        )
        services = [f"svc-{index}" for index in range(args.services)]
        for name in services:
            custom.create_namespaced_custom_object(GROUP, VERSION, provider, "endpointservices", {
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "EndpointService", "metadata": {"name": name},
                "spec": {"backend": {"kind": "Pod", "name": "echo"},
                         "ports": [{"serverPort": echo.server_address[1], "clientPort": 80}]},
            })  # fmt: skip
        service_names = {}
        for name in services:
            service_names[name] = wait(
                lambda n=name: available(custom, provider, n), 120, f"{name} Available"
            )

        def endpoint(namespace: str, name: str, service: str) -> None:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "endpoints", {
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "Endpoint", "metadata": {"name": name},
                "spec": {"serviceName": service_names[service]},
            })  # fmt: skip

        for index in range(args.established):
            endpoint(consumer, f"kept-{index}", services[index % len(services)])
        wait(lambda: all_accepted(custom, consumer, args.established), 180, "the established endpoints")
        watcher = AllocationWatch(core, custom, operator_ns)
        watcher.start()
        traffic = Traffic(discovery, consumer)

        def both_gateways_listed() -> bool:
            traffic.refresh()
            listed = [addresses for addresses, _ in traffic.targets.values()]
            return len(listed) == args.established and all(len(a) == len(GATEWAY_ADDRESSES) for a in listed)

        wait(both_gateways_listed, 60, "slices listing both gateways")
        traffic.start(streams=args.streams, per_second=args.rate)
        results["setup_s"] = round(time.monotonic() - started, 1)

        # The storm: a create or a delete of a random Endpoint of the pool, a few per second.
        storm_stop = threading.Event()
        storm = collections.Counter[str]()

        def storm_loop() -> None:
            live: set[str] = set()
            while not storm_stop.wait(1.0 / args.storm_rate):
                name = f"storm-{rng.randrange(args.pool)}"
                try:
                    if name in live:
                        custom.delete_namespaced_custom_object(GROUP, VERSION, storm_ns, "endpoints", name)
                        live.discard(name)
                        storm["deleted"] += 1
                    else:
                        endpoint(storm_ns, name, rng.choice(services))
                        live.add(name)
                        storm["created"] += 1
                except client.ApiException as error:
                    storm[f"api {error.status}"] += 1  # 409: still deleting from an earlier round
                    if error.status == 404:
                        live.discard(name)

        storm_thread = threading.Thread(target=storm_loop, daemon=True)
        storm_thread.start()

        kills = collections.Counter[str]()
        chaos_started = time.monotonic()
        for _ in range(args.kills):
            time.sleep(rng.uniform(args.min_gap, args.max_gap))
            for process in processes:  # the Deployment restarts what was killed (after about a second)
                if not process.alive():
                    process.start()
            if rng.random() < 0.5:
                # The leader: the Lease's holder, once there is a live one (after a kill the Lease names the
                # dead replica until a standby takes it over, 10-14 s).
                leader = wait(lambda: live_leader(coordination, operator_ns, operators), 30, "", quiet=True)
                victim = leader or rng.choice(operators)
                kills["leader" if leader else "operator, no leader within 30 s"] += 1
            else:
                victim = rng.choice(gateways)
                kills["gateway agent"] += 1
            victim.kill()
            time.sleep(1.0)
            victim.start()
        results["chaos_s"] = round(time.monotonic() - chaos_started, 1)
        results["kills"] = dict(kills)
        storm_stop.set()
        storm_thread.join(timeout=10)
        results["storm"] = dict(storm)
        for process in processes:
            if not process.alive():
                process.start()

        converge_started = time.monotonic()
        verdict = wait(lambda: converged(custom, core, operator_ns), args.converge_timeout, "convergence",
                       quiet=True)  # fmt: skip
        results["converged_after_s"] = round(time.monotonic() - converge_started, 1)
        results["converged"] = verdict is not None
        time.sleep(2)
        traffic.stop()
        watcher.stop()
        results.update(final_checks(custom, core, operator_ns, provider, (consumer, storm_ns)))
        results["duplicate_ports_seen"] = watcher.duplicate_ports[:5]
        results["duplicate_markers_seen"] = watcher.duplicate_markers[:5]
        results["route_port_overlaps_seen"] = len(watcher.route_overlaps)
        results["route_port_overlap_examples"] = watcher.route_overlaps[:5]
        results["endpoint_events_watched"] = watcher.events
        results["connections"] = traffic.connects
        results["failed_connections"] = len(traffic.failed)
        results["failed_examples"] = traffic.failed[:5]
        results["long_lived_streams"] = len(traffic.streams)
        results["stream_exchanges"] = traffic.exchanges
        results["broken_streams"] = len(traffic.broken)
        results["operator_restarts"] = sum(p.generation - 1 for p in operators)
        results["gateway_agent_restarts"] = sum(p.generation - 1 for p in gateways)
        results["load_average_end"] = load_average()
        results["total_s"] = round(time.monotonic() - started, 1)
    finally:
        for process in processes:
            process.stop()
        for gateway_dir in work.glob("gateway-*"):  # HAProxy outlives its agent by design: stop it too
            with contextlib.suppress(OSError, ValueError, ProcessLookupError):
                os.kill(int((gateway_dir / "haproxy.pid").read_text().split()[0]), signal.SIGTERM)
        echo.shutdown()
        testbed.stop()
        if args.keep_logs:
            print(f"chaos: logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return results


def wait(check: Any, timeout: float, what: str, quiet: bool = False) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(client.ApiException):
            value = check()
            if value:
                return value
        time.sleep(0.5)
    if quiet:
        return None
    raise TimeoutError(f"chaos: no {what} within {timeout:.0f} s")


def namespace_exists(core: client.CoreV1Api, name: str) -> bool:
    core.read_namespace(name)
    return True


def available(custom: client.CustomObjectsApi, namespace: str, name: str) -> str | None:
    body: Any = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "endpointservices", name)
    status = body.get("status") or {}
    return status.get("serviceName") if status.get("phase") == "Available" else None


def endpoints(custom: client.CustomObjectsApi) -> list[dict[str, Any]]:
    listed: Any = custom.list_cluster_custom_object(GROUP, VERSION, "endpoints")
    return list(listed["items"])


def all_accepted(custom: client.CustomObjectsApi, namespace: str, count: int) -> bool:
    listed: Any = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "endpoints")
    return sum((item.get("status") or {}).get("phase") == "Accepted" for item in listed["items"]) == count


def live_leader(
    coordination: client.CoordinationV1Api, namespace: str, operators: list[Process]
) -> Process | None:
    """The operator process the Lease names as its holder, if it runs (identities are POD_NAME)."""
    try:
        lease: Any = coordination.read_namespaced_lease("vpcep-operator", namespace)
    except client.ApiException:
        return None
    holder = str(lease.spec.holder_identity or "")
    return next((p for p in operators if p.identity == holder and p.alive()), None)


def converged(custom: client.CustomObjectsApi, core: client.CoreV1Api, operator_ns: str) -> bool:
    """Every Endpoint Accepted for its generation, none deleting, one route per Endpoint, and every gateway's
    report covers every route."""
    items = endpoints(custom)
    for item in items:
        status = item.get("status") or {}
        if item["metadata"].get("deletionTimestamp") or status.get("phase") != "Accepted":
            return False
        if status.get("observedGeneration") != item["metadata"].get("generation"):
            return False
    routes: Any = core.list_namespaced_config_map(operator_ns, label_selector="vpcep.io/route=true")
    if len(routes.items) != len(items):
        return False
    newest = max((int(r.metadata.resource_version) for r in routes.items), default=0)
    reports: Any = core.list_namespaced_config_map(operator_ns, label_selector="vpcep.io/gateway-status=true")
    applied = [json.loads(r.data["status.json"]).get("appliedResourceVersion", 0) for r in reports.items]
    return len(applied) == len(GATEWAY_ADDRESSES) and all(version >= newest for version in applied)


def final_checks(
    custom: client.CustomObjectsApi, core: client.CoreV1Api, operator_ns: str, provider: str,
    consumers: tuple[str, ...],
) -> dict[str, Any]:  # fmt: skip
    items = endpoints(custom)
    uids = {item["metadata"]["uid"] for item in items}
    ids = {(item.get("status") or {}).get("endpointId") for item in items}
    orphans: list[str] = []
    routes: Any = core.list_namespaced_config_map(operator_ns, label_selector="vpcep.io/route=true")
    orphans += [f"route {r.metadata.name}" for r in routes.items
                if r.metadata.labels.get("vpcep.io/endpoint-uid") not in uids]  # fmt: skip
    connections: Any = custom.list_namespaced_custom_object(GROUP, VERSION, provider, "endpointconnections")
    orphans += [f"connection {c['metadata']['name']}" for c in connections["items"]
                if c["metadata"]["labels"].get("vpcep.io/endpoint-id") not in ids]  # fmt: skip
    networking, discovery = client.NetworkingV1Api(), client.DiscoveryV1Api()
    checked = 0
    for namespace in consumers:
        listings: dict[str, Any] = {
            "service": core.list_namespaced_service,
            "slice": discovery.list_namespaced_endpoint_slice,
            "policy": networking.list_namespaced_network_policy,
        }
        owned = [
            (kind, item)
            for kind, listing in listings.items()
            for item in listing(namespace, label_selector=MANAGED).items
        ]
        checked += len(owned)
        orphans += [f"{kind} {namespace}/{o.metadata.name}" for kind, o in owned
                    if (o.metadata.labels or {}).get("vpcep.io/endpoint-uid") not in uids]  # fmt: skip
    ports = collections.Counter(
        int(m["gatewayPort"]) for item in items for m in (item.get("status") or {}).get("gatewayPorts") or []
    )
    markers = collections.Counter(
        (item["spec"]["serviceName"], (item.get("status") or {}).get("markerId")) for item in items
    )
    return {
        "endpoints_at_end": len(items),
        # What the orphan check looked at (a check over nothing would pass).
        "objects_checked": len(routes.items) + len(connections["items"]) + checked,
        "orphans": len(orphans),
        "orphan_examples": orphans[:5],
        "duplicate_ports_at_end": sum(count - 1 for count in ports.values() if count > 1),
        "duplicate_markers_at_end": sum(count - 1 for key, count in markers.items() if count > 1 and key[1]),
    }


def report(results: dict[str, Any]) -> int:
    print(json.dumps(results, indent=2))
    failures = {
        "converged": not results.get("converged"),
        "orphans": results.get("orphans") != 0,
        "duplicate allocations": bool(
            results.get("duplicate_ports_at_end") or results.get("duplicate_markers_at_end")
            or results.get("duplicate_ports_seen") or results.get("duplicate_markers_seen")
            or results.get("route_port_overlaps_seen")
        ),
        "failed connections": results.get("failed_connections") != 0 or results.get("broken_streams") != 0,
    }  # fmt: skip
    for what, failed in failures.items():
        print(f"{what:24} {'FAIL' if failed else 'ok'}")
    return 1 if any(failures.values()) else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=50, help="SIGKILLs (default 50)")
    parser.add_argument("--min-gap", type=float, default=2.0, help="shortest time between kills, seconds")
    parser.add_argument("--max-gap", type=float, default=8.0, help="longest time between kills, seconds")
    parser.add_argument("--services", type=int, default=4, help="EndpointServices (default 4)")
    parser.add_argument("--established", type=int, default=4, help="endpoints carrying traffic (default 4)")
    parser.add_argument(
        "--pool", type=int, default=40, help="names the storm creates and deletes (default 40)"
    )
    parser.add_argument("--storm-rate", type=float, default=3.0, help="storm operations per second")
    parser.add_argument("--rate", type=float, default=10.0, help="new connections per second")
    parser.add_argument("--streams", type=int, default=8, help="long-lived streams (default 8)")
    parser.add_argument(
        "--converge-timeout", type=float, default=180.0, help="seconds to converge at the end"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    parser.add_argument("--kubeconfig", help="use this API instead of a private hack/testbed instance")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: processes and the testbed are stopped
    return report(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
