"""What the operator makes of an Endpoint, checked on the wire: the real operator writes the route, a real
gateway agent drives HAProxy inside a gateway network namespace, and real TCP crosses from a consumer
namespace to a provider namespace (R18, R21, R33, R34; issue 16).

consumer netns --veth-- gateway netns (HAProxy; the agent runs on the host, where the API server is, and
starts HAProxy inside the namespace through a wrapper, as hack/demo does) --veth-- provider netns (backends).

Nothing here is hand-written on the data path: the consumer dials the Endpoint's ``nodeIP:clientPort``, a
kube-proxy stand-in (DNAT in the consumer namespace, built from the Service and EndpointSlice the operator
wrote) sends it to the gateway, and HAProxy serves it from the route the operator rendered from the
EndpointService (PROXY v2, two port mappings), the Endpoint (``sourceCIDRs``) and the operator's config (the
connection cap). If the operator dropped any of them, a test here fails.
"""

from __future__ import annotations

import csv
import io
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from dataplane.helpers import greeting, read_line, refused
from dataplane.netns import Topology, connect, haproxy_in_netns, require_netns, sh, spawn, wait_until
from integration.conftest import delete_namespaces, start_operator
from integration.helpers import (
    Cluster,
    OperatorProcess,
    phase_is,
    pod_running_at,
    running_gateway_agent,
    wait_for,
)
from vpcep.builders.haproxy_config import frontend_name
from vpcep.gateway.haproxy_process import unix_command

pytestmark = [pytest.mark.cluster, pytest.mark.netns]

PID = os.getpid()
PROVIDER, CONSUMER = f"wire-prov-{PID}", f"wire-cons-{PID}"
BACKEND_SERVER = pathlib.Path(__file__).resolve().parents[1] / "dataplane" / "backend_server.py"
# The operator's connection cap for this module (R21's 3000 takes minutes of sockets on a shared 2-core
# machine; tests/dataplane holds 3000 against a hand-written route). What is checked here is that the cap
# the operator renders from its config is the one that bounds an endpoint on the wire.
CAP = 40
# clientPort -> serverPort of the EndpointService: two mappings, each to its own backend process.
MAPPINGS = {80: 8081, 81: 8082}


@dataclass
class Wire:
    topology: Topology
    status: dict[str, Any]  # the Endpoint's status once Accepted
    node_ip: str
    gateway_runtime: str  # the agent's runtime directory: HAProxy's stats socket is there

    def open_sessions(self) -> int:
        """The endpoint's current connections as HAProxy counts them (its frontend's ``scur``)."""
        stats = unix_command(os.path.join(self.gateway_runtime, "haproxy.sock"), "show stat")
        frontend = frontend_name(self.status["endpointId"])
        for row in csv.DictReader(io.StringIO(stats.lstrip("# "))):
            if row["pxname"] == frontend and row["svname"] == "FRONTEND":
                return int(row["scur"])
        raise AssertionError(f"no frontend {frontend} in HAProxy's stats")

    def diagnosis(self) -> str:
        """HAProxy's view of the endpoint and the agent's log tail, for a failure message."""
        stats = unix_command(os.path.join(self.gateway_runtime, "haproxy.sock"), "show stat")
        rows = [
            line for line in stats.splitlines() if self.status["endpointId"] in line or line.startswith("#")
        ]
        log = pathlib.Path(self.gateway_runtime, "agent.log").read_text(errors="replace")
        return "HAProxy stats:\n" + "\n".join(rows) + "\nagent log (tail):\n" + log[-3000:]


def first_line(sock: socket.socket) -> bytes:
    try:
        return read_line(sock)
    except OSError as error:
        return repr(error).encode()


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    require_netns("OPERATOR-TO-WIRE TESTS")
    net = Topology.create()
    # A consumer pod sends everything to its node: node IPs (ClusterIPs) leave through the gateway side.
    net.ip(net.consumer, "route", "add", "default", "via", net.gateway_consumer_ip)
    yield net
    net.destroy()


@pytest.fixture(scope="module")
def backends(topology: Topology) -> Iterator[None]:
    processes = []
    for server_port in MAPPINGS.values():
        argv = [sys.executable, str(BACKEND_SERVER), "--listen", f"0.0.0.0:{server_port}", "--proxy-v2"]
        argv += ["--name", f"backend-{server_port}"]
        process = spawn(topology.provider, argv, stdout=subprocess.PIPE)
        processes.append(process)
        assert process.stdout is not None and process.stdout.readline().strip() == b"READY"
    yield
    for process in processes:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def operator(kube: Cluster, operator_namespace: str) -> Iterator[OperatorProcess]:
    process = start_operator(
        kube,
        operator_namespace,
        config={"maxConnectionsPerEndpoint": CAP, "gatewayPorts": {"first": 31000, "last": 31019}},
    )
    try:
        yield process
        delete_namespaces(kube, PROVIDER, CONSUMER, operator_namespace)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def gateway(kube: Cluster, operator: OperatorProcess, topology: Topology) -> Iterator[str]:
    """A real agent; its HAProxy runs in the gateway namespace and binds the consumer-side address only."""
    with tempfile.TemporaryDirectory(prefix="vpcep-wire-") as folder:
        wrapper = haproxy_in_netns(pathlib.Path(folder), topology.gateway)
        with running_gateway_agent(
            kube, operator.namespace, f"wire-{PID}",
            "--address", topology.gateway_consumer_ip, "--bind-address", topology.gateway_consumer_ip,
            "--haproxy", str(wrapper), "--heartbeat-interval", "1", "--health-check-interval-ms", "300",
            "--debounce", "0.05", "--max-debounce", "0.2",
            prefix="vpcep-wire",
        ) as runtime:  # fmt: skip
            yield runtime


def install_kube_proxy_stand_in(kube: Cluster, net: Topology, endpoint: str) -> str:
    """DNAT ``nodeIP:clientPort`` to the gateway address and port the operator's EndpointSlice names, in the
    consumer namespace (what kube-proxy does on a node). Returns the node IP."""
    service = kube.get("service", CONSUMER, f"vpce-{endpoint}")
    slices = kube.get("endpointslices", CONSUMER, selector=f"kubernetes.io/service-name=vpce-{endpoint}")
    (endpoint_slice,) = slices["items"]
    address = endpoint_slice["endpoints"][0]["addresses"][0]
    targets = {port["name"]: port["port"] for port in endpoint_slice["ports"]}
    node_ip = service["spec"]["clusterIP"]
    for port in service["spec"]["ports"]:
        sh(
            "ip", "netns", "exec", net.consumer, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp",
            "-d", node_ip, "--dport", str(port["port"]),
            "-j", "DNAT", "--to-destination", f"{address}:{targets[port['name']]}",
        )  # fmt: skip
    return str(node_ip)


@pytest.fixture(scope="module")
def wire(kube: Cluster, operator: OperatorProcess, gateway: str, topology: Topology, backends: None) -> Wire:
    kube.namespace(PROVIDER, f"wire-{PID}")
    kube.namespace(CONSUMER, f"wire-{PID}")
    kube.apply("backend-pod.yaml", name="api", namespace=PROVIDER)
    pod_running_at(kube, PROVIDER, "api", topology.provider_ip)
    service_manifest = {
        "apiVersion": "vpcep.io/v1alpha1",
        "kind": "EndpointService",
        "metadata": {"name": "api", "namespace": PROVIDER},
        "spec": {
            "backend": {"kind": "Pod", "name": "api"},
            "ports": [
                {"protocol": "TCP", "clientPort": client, "serverPort": server}
                for client, server in MAPPINGS.items()
            ],
            "proxyProtocol": "V2",
        },
    }
    kube.apply_text(yaml.safe_dump(service_manifest))
    service = wait_for("api Available", phase_is(kube, "vpces", PROVIDER, "api", "Available"))
    endpoint_manifest = {
        "apiVersion": "vpcep.io/v1alpha1",
        "kind": "Endpoint",
        "metadata": {"name": "api", "namespace": CONSUMER},
        "spec": {
            "serviceName": service["serviceName"],
            "accessControl": {"sourceCIDRs": [f"{topology.consumer_ip}/32"]},
        },
    }
    kube.apply_text(yaml.safe_dump(endpoint_manifest))
    status = wait_for("api Accepted", phase_is(kube, "vpce", CONSUMER, "api", "Accepted"), timeout=60)
    node_ip = install_kube_proxy_stand_in(kube, topology, "api")
    assert node_ip == status["nodeIP"]
    return Wire(topology, status, node_ip, gateway)


def test_both_port_mappings_echo_through_the_node_ip_R18(wire: Wire) -> None:
    net = wire.topology
    for client_port, server_port in MAPPINGS.items():
        with connect(net.consumer, wire.node_ip, client_port, source=net.consumer_ip) as sock:
            assert greeting(sock)["server"] == f"backend-{server_port}", f"clientPort {client_port}"
            sock.sendall(b"ping %d\n" % client_port)
            assert read_line(sock) == b"ping %d\n" % client_port


def test_the_backend_decodes_the_client_address_and_the_marker_from_proxy_v2_R33(wire: Wire) -> None:
    net = wire.topology
    gateway_ports = {p["clientPort"]: p["gatewayPort"] for p in wire.status["gatewayPorts"]}
    for client_port in MAPPINGS:
        with connect(net.consumer, wire.node_ip, client_port, source=net.consumer_ip) as sock:
            local_port = sock.getsockname()[1]
            hello = greeting(sock)
        assert hello["command"] == "PROXY"
        assert hello["client"] == f"{net.consumer_ip}:{local_port}", "the original client, not the gateway"
        assert hello["destination"] == f"{net.gateway_consumer_ip}:{gateway_ports[client_port]}"
        assert hello["marker"] == str(wire.status["markerId"]), "TLV 0x05 carries the Endpoint's markerId"
        assert hello["via"].startswith(f"{net.gateway_provider_ip}:"), "the TCP peer is the gateway (R31)"


def test_a_source_outside_the_endpoints_cidrs_is_refused_R34(wire: Wire) -> None:
    net = wire.topology
    for client_port in MAPPINGS:
        outcome = refused(net.consumer, wire.node_ip, client_port, source=net.consumer_other_ip)
        assert outcome in ("reset at once", "closed at once"), (client_port, outcome)
        # The same namespace from the permitted address is served: the refusal is the CIDR's doing.
        assert refused(net.consumer, wire.node_ip, client_port, source=net.consumer_ip) is None


def test_the_operators_cap_bounds_the_endpoint_across_both_mappings_R21(wire: Wire) -> None:
    net = wire.topology
    client_ports = list(MAPPINGS)
    held: list[socket.socket] = []
    wait_until(lambda: wire.open_sessions() == 0, timeout=10, what="the earlier tests' connections to close")
    try:
        for n in range(CAP):  # the cap is per endpoint: half of them on each mapping
            sock = connect(net.consumer, wire.node_ip, client_ports[n % 2], timeout=5, source=net.consumer_ip)
            held.append(sock)
            # Served through to a backend before the next one opens: the count is exact, never a race.
            assert b'"command": "PROXY"' in first_line(sock), (
                f"connection {n + 1} of {CAP}\n{wire.diagnosis()}"
            )
        assert wire.open_sessions() == CAP, "HAProxy counts what the consumer holds"
        for client_port in client_ports:
            outcome = refused(net.consumer, wire.node_ip, client_port, source=net.consumer_ip)
            assert outcome in ("reset at once", "closed at once"), f"connection {CAP + 1}: {outcome}"
        held.pop().close()
        wait_until(  # a freed slot is usable again: refused, not banned
            lambda: served(net, wire.node_ip, client_ports[0]),
            timeout=10,
            what="a freed slot to serve again",
        )
    finally:
        for sock in held:
            sock.close()


def served(net: Topology, host: str, port: int) -> bool:
    with connect(net.consumer, host, port, source=net.consumer_ip) as sock:
        return b'"command": "PROXY"' in first_line(sock)
