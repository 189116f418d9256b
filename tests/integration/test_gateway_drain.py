"""A rolling replacement of a gateway under load loses no connection (R52, R30): a terminating gateway reports
itself draining, the operator takes its address out of every consumer EndpointSlice at once, the gateway keeps
serving the sessions it holds, then stops.

Real parts throughout: the real operator on the test API server, three real gateway agents each driving its
own HAProxy inside one gateway network namespace (each bound to an address of its own, as pods on one node),
a backend in a provider namespace, and clients in a consumer namespace dialling the Endpoint's
``nodeIP:clientPort``. A kube-proxy stand-in (a test-side stand-in, as in test_routes_on_the_wire.py) follows
the operator's EndpointSlice: it rewrites a DNAT chain in the consumer namespace, spreading new connections at
random over the listed gateways; established flows keep their conntrack entry, as with kube-proxy.

The replacement is a Deployment's RollingUpdate (maxSurge 1, maxUnavailable 0): a new gateway starts and is in
the slice, then the old one gets SIGTERM. Meanwhile a steady stream of new connections and a set of long-lived
streams that talk throughout: none may fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from dataplane.helpers import read_line
from dataplane.netns import Topology, connect, haproxy_in_netns, require_netns, sh, spawn
from integration.conftest import delete_namespaces, start_operator
from integration.helpers import (
    Cluster,
    OperatorProcess,
    phase_is,
    pod_running_at,
    running_gateway_agent,
    wait_for,
)
from vpcep.gateway.haproxy_process import HaproxyError, parse_show_proc, unix_command

pytestmark = [pytest.mark.cluster, pytest.mark.netns]

PID = os.getpid()
PROVIDER, CONSUMER = f"drain-prov-{PID}", f"drain-cons-{PID}"
BACKEND_SERVER = pathlib.Path(__file__).resolve().parents[1] / "dataplane" / "backend_server.py"
BACKEND_PORT = 8090
CAP = 60
LEAVE_S, SESSIONS_S = 3.0, 40.0  # the agents' drain (the chart's gateway.drain values)
OLD, SURVIVOR, NEW = "10.61.1.4", "10.61.1.5", "10.61.1.6"  # the three gateway pods' addresses
CHAIN = "VPCEP-DRAIN"


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    require_netns("GATEWAY DRAIN TESTS")
    net = Topology.create()
    net.ip(net.consumer, "route", "add", "default", "via", net.gateway_consumer_ip)
    for address in (OLD, SURVIVOR, NEW):
        net.ip(net.gateway, "addr", "add", f"{address}/24", "dev", f"gc{net.tag}")
    yield net
    net.destroy()


@pytest.fixture(scope="module")
def backend(topology: Topology) -> Iterator[None]:
    argv = [sys.executable, str(BACKEND_SERVER), "--listen", f"0.0.0.0:{BACKEND_PORT}", "--name", "backend"]
    process = spawn(topology.provider, argv, stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline().strip() == b"READY"
    yield
    process.kill()
    process.wait()


@pytest.fixture(scope="module")
def operator(kube: Cluster, operator_namespace: str) -> Iterator[OperatorProcess]:
    process = start_operator(
        kube,
        operator_namespace,
        config={"maxConnectionsPerEndpoint": CAP, "gatewayPorts": {"first": 31100, "last": 31109}},
    )
    try:
        yield process
        delete_namespaces(kube, PROVIDER, CONSUMER, operator_namespace)
    finally:
        process.stop()


@contextlib.contextmanager
def gateway(
    kube: Cluster, operator: OperatorProcess, net: Topology, name: str, address: str
) -> Iterator[str]:
    """A real agent whose HAProxy runs in the gateway namespace bound to `address`; yields its runtime dir."""
    with tempfile.TemporaryDirectory(prefix="vpcep-drain-") as folder:
        wrapper = haproxy_in_netns(pathlib.Path(folder), net.gateway)
        with running_gateway_agent(
            kube, operator.namespace, f"{name}-{PID}",
            "--address", address, "--bind-address", address, "--haproxy", str(wrapper),
            "--heartbeat-interval", "1", "--health-check-interval-ms", "300",
            "--debounce", "0.05", "--max-debounce", "0.2",
            "--drain-leave-seconds", str(LEAVE_S), "--drain-seconds", str(SESSIONS_S),
            prefix="vpcep-drain",
        ) as runtime:  # fmt: skip
            yield runtime


class KubeProxyStandIn:
    """Follows the Endpoint's EndpointSlice: DNAT ``nodeIP:clientPort`` to one of the listed gateways at
    random (iptables ``statistic``, as kube-proxy's iptables mode), rewritten atomically when the slice
    changes."""

    def __init__(self, kube: Cluster, net: Topology, endpoint: str) -> None:
        from kubernetes import client, config

        api_client = config.new_client_from_config(config_file=kube.kubeconfig)
        self._discovery = client.DiscoveryV1Api(api_client)
        self._net = net
        self._service = f"vpce-{endpoint}"
        service = kube.get("service", CONSUMER, self._service)
        self.node_ip = str(service["spec"]["clusterIP"])
        self.client_port = int(service["spec"]["ports"][0]["port"])
        self.addresses: tuple[str, ...] = ()
        self.changes: list[tuple[float, tuple[str, ...]]] = []  # (monotonic time applied, addresses)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kube-proxy-stand-in", daemon=True)
        sh("ip", "netns", "exec", net.consumer, "iptables", "-t", "nat", "-N", CHAIN)
        sh(
            "ip", "netns", "exec", net.consumer, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp",
            "-d", self.node_ip, "--dport", str(self.client_port), "-j", CHAIN,
        )  # fmt: skip
        self.sync()
        self._thread.start()

    def slice(self) -> tuple[tuple[str, ...], int]:
        found = self._discovery.list_namespaced_endpoint_slice(
            CONSUMER, label_selector=f"kubernetes.io/service-name={self._service}"
        )
        (endpoint_slice,) = found.items
        addresses = tuple(sorted(a for e in endpoint_slice.endpoints or () for a in e.addresses))
        return addresses, int(endpoint_slice.ports[0].port)

    def sync(self) -> None:
        addresses, port = self.slice()
        if addresses == self.addresses:
            return
        rules = [f":{CHAIN} - [0:0]"]  # declared again: flushed, in the same atomic commit
        for index, address in enumerate(addresses):
            chance = 1.0 / (len(addresses) - index)
            spread = f"-m statistic --mode random --probability {chance:.5f} " if chance < 1 else ""
            rules.append(f"-A {CHAIN} -p tcp {spread}-j DNAT --to-destination {address}:{port}")
        restore = "*nat\n" + "\n".join(rules) + "\nCOMMIT\n"
        subprocess.run(
            ["ip", "netns", "exec", self._net.consumer, "iptables-restore", "--noflush"],
            input=restore, text=True, check=True, capture_output=True,
        )  # fmt: skip
        self.addresses = addresses
        self.changes.append((time.monotonic(), addresses))

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            with contextlib.suppress(Exception):  # an API hiccup: the next round reads again
                self.sync()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class Load:
    """New connections at a steady rate, plus long-lived streams that talk every 0.2 s."""

    net: Topology
    node_ip: str
    port: int
    connects: int = 0
    failed_connects: list[str] = field(default_factory=list)
    streams: list[socket.socket] = field(default_factory=list)
    exchanges: int = 0
    broken_streams: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def open_stream(self) -> socket.socket:
        stream = connect(self.net.consumer, self.node_ip, self.port, timeout=5)
        assert json.loads(read_line(stream))["server"] == "backend"
        self.streams.append(stream)
        return stream

    def start(self, new_per_second: float) -> None:
        self._threads = [
            threading.Thread(target=self._new_connections, args=(new_per_second,), daemon=True),
            threading.Thread(target=self._talk, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _new_connections(self, per_second: float) -> None:
        while not self._stop.wait(1.0 / per_second):
            self.connects += 1
            try:
                with connect(self.net.consumer, self.node_ip, self.port, timeout=3) as sock:
                    assert json.loads(read_line(sock))["server"] == "backend"
                    sock.sendall(b"ping\n")
                    assert read_line(sock) == b"ping\n"
            except (OSError, AssertionError, ValueError) as error:
                self.failed_connects.append(f"{time.monotonic():.2f} {error!r}")

    def _talk(self) -> None:
        while not self._stop.wait(0.2):
            for index, stream in enumerate(self.streams):
                if any(broken.startswith(f"#{index} ") for broken in self.broken_streams):
                    continue
                try:
                    line = f"stream {index} {self.exchanges}\n".encode()
                    stream.sendall(line)
                    assert read_line(stream) == line
                    self.exchanges += 1
                except (OSError, AssertionError) as error:
                    self.broken_streams.append(f"#{index} {time.monotonic():.2f} {error!r}")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        for stream in self.streams:
            stream.close()


def sessions_on(runtime: str) -> int:
    """Current sessions of a gateway's HAProxy workers (``show info`` CurrConns through the master CLI, which
    reaches a soft-stopping worker too; its stats socket is closed then), 0 once it is gone."""
    master = os.path.join(runtime, "master.sock")
    try:
        table = parse_show_proc(unix_command(master, "show proc"))
        workers = [pid for pid in (table.current_worker, *table.old_workers) if pid is not None]
        infos = [unix_command(master, f"@!{pid} show info") for pid in workers]
    except (OSError, HaproxyError):
        return 0
    return sum(
        int(line.split(":")[1])
        for info in infos
        for line in info.splitlines()
        if line.startswith("CurrConns:")
    )


def exited(pid: int) -> bool:
    """The agent has ended (a zombie until its parent, the fixture, reaps it)."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True


def listens(net: Topology, address: str, port: int) -> bool:
    try:
        with connect(net.consumer, address, port, timeout=1):
            return True
    except OSError:
        return False


def route_cap(kube: Cluster, operator: OperatorProcess, endpoint_id: str) -> int:
    route = kube.get("configmap", operator.namespace, f"vpcep-route-{endpoint_id}") or {}
    return int(json.loads(route.get("data", {}).get("route.json", "{}")).get("maxConnections", 0))


def test_a_rolling_replacement_of_a_gateway_under_load_loses_no_connection_R52_R30(
    kube: Cluster, operator: OperatorProcess, topology: Topology, backend: None
) -> None:
    net = topology
    with contextlib.ExitStack() as gateways:
        old = gateways.enter_context(gateway(kube, operator, net, "old", OLD))
        gateways.enter_context(gateway(kube, operator, net, "survivor", SURVIVOR))

        kube.namespace(PROVIDER, f"drain-{PID}")
        kube.namespace(CONSUMER, f"drain-{PID}")
        kube.apply("backend-pod.yaml", name="api", namespace=PROVIDER)
        pod_running_at(kube, PROVIDER, "api", net.provider_ip)
        kube.apply("pod-endpoint-service.yaml", name="api", namespace=PROVIDER, backend="api",
                   server_port=str(BACKEND_PORT))  # fmt: skip
        service = wait_for("api Available", phase_is(kube, "vpces", PROVIDER, "api", "Available"))
        kube.apply("endpoint.yaml", name="api", namespace=CONSUMER, service_name=service["serviceName"])
        status = wait_for("api Accepted", phase_is(kube, "vpce", CONSUMER, "api", "Accepted"), timeout=60)
        endpoint_id = status["endpointId"]
        proxy = KubeProxyStandIn(kube, net, "api")
        gateway_port = proxy.slice()[1]
        wait_for("both gateways in the slice", lambda: proxy.addresses == (OLD, SURVIVOR), timeout=30)
        load = Load(net, proxy.node_ip, proxy.client_port)
        try:
            # Long-lived streams, at least a few of them through the gateway about to be replaced.
            while len(load.streams) < 40 and (len(load.streams) < 12 or sessions_on(old) < 4):
                load.open_stream()
            held_by_old = sessions_on(old)
            assert held_by_old >= 4, (
                f"only {held_by_old} of {len(load.streams)} streams landed on the old one"
            )
            load.start(new_per_second=20)
            time.sleep(2)

            # maxSurge 1: the new gateway comes up and is Ready in the slice before the old one goes.
            gateways.enter_context(gateway(kube, operator, net, "new", NEW))
            wait_for(
                "the new gateway in the slice", lambda: proxy.addresses == (OLD, SURVIVOR, NEW), timeout=30
            )
            wait_for("the cap shared by three", lambda: route_cap(kube, operator, endpoint_id) == CAP // 3)
            time.sleep(2)

            # The old gateway's pod is deleted: SIGTERM to its agent.
            old_agent = int(pathlib.Path(old, "agent.pid").read_text())
            terminated = time.monotonic()
            os.kill(old_agent, signal.SIGTERM)
            wait_for(
                "the old gateway out of the slice",
                lambda: proxy.addresses == (SURVIVOR, NEW),
                timeout=LEAVE_S,
            )
            left_after = proxy.changes[-1][0] - terminated
            # Past the leave delay it stops listening, and still serves the streams it holds.
            wait_for("the old gateway to stop listening", lambda: not listens(net, OLD, gateway_port),
                     timeout=LEAVE_S + 5)  # fmt: skip
            stopped_listening_after = time.monotonic() - terminated
            still_held = sessions_on(old)
            assert still_held >= held_by_old, "a draining gateway keeps every session it holds"
            # A drain rewrites no route: the draining gateway keeps its share of R21's cap.
            assert route_cap(kube, operator, endpoint_id) == CAP // 3
            time.sleep(4)  # the streams go on talking through the draining gateway
        finally:
            load.stop()
            proxy.stop()
        # Its last session ended: HAProxy exits, the agent with it, long before the drain period is over.
        wait_for("the old gateway's agent to exit once drained", lambda: exited(old_agent), timeout=15)
        drained_after = time.monotonic() - terminated
        log = pathlib.Path(old, "agent.log").read_text(errors="replace")
        assert "drained: HAProxy has closed its last session" in log, log[-3000:]

    print(
        f"\nR52 rolling replacement: {load.connects} new connections, {len(load.failed_connects)} failed; "
        f"{len(load.streams)} long-lived streams ({held_by_old} through the replaced gateway), "
        f"{load.exchanges} exchanges, {len(load.broken_streams)} broken; slice left {left_after:.2f} s after "
        f"SIGTERM, listeners closed after {stopped_listening_after:.2f} s, agent gone {drained_after:.2f} s "
        f"after SIGTERM (its streams closed by the clients)"
    )
    assert load.failed_connects == [], load.failed_connects[:10]
    assert load.broken_streams == [], load.broken_streams[:10]
    assert load.connects >= 150 and load.exchanges >= 20 * len(load.streams)  # the load ran throughout
