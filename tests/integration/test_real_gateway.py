"""End to end on loopback: the operator and the real gateway agent (HAProxy) together. Accepted is
reported only after the gateway applied the route, and bytes sent to the gateway port reach the Pod
backend (R18, R30)."""

from __future__ import annotations

import json
import os
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from integration.conftest import delete_namespaces, start_operator
from integration.helpers import Cluster, OperatorProcess, phase_is, running_gateway_agent, wait_for

pytestmark = pytest.mark.cluster
PID = os.getpid()
PROVIDER, CONSUMER = f"gw-prov-{PID}", f"gw-cons-{PID}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _free_range(size: int) -> int:
    """A run of `size` ports that are free right now (the gateway listens on them)."""
    for _ in range(50):
        first = _free_port()
        if first + size > 65000:
            continue
        probes = []
        try:
            for port in range(first, first + size):
                probe = socket.socket()
                probe.bind(("127.0.0.1", port))
                probes.append(probe)
            return first
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise RuntimeError("no free port range")


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data = self.request.recv(1024)
        self.request.sendall(b"echo:" + data)


@pytest.fixture(scope="module")
def echo_server() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def operator(kube: Cluster, operator_namespace: str) -> Iterator[OperatorProcess]:
    first = _free_range(20)
    process = start_operator(
        kube, operator_namespace, config={"gatewayPorts": {"first": first, "last": first + 19}}
    )
    try:
        yield process
        delete_namespaces(kube, PROVIDER, CONSUMER, operator_namespace)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def real_gateway(kube: Cluster, operator: OperatorProcess) -> Iterator[str]:
    with running_gateway_agent(kube, operator.namespace, f"it-{PID}", "--heartbeat-interval", "2") as runtime:
        yield runtime


def test_accepted_only_when_served_and_bytes_reach_the_backend(
    kube: Cluster, operator: OperatorProcess, real_gateway: str, echo_server: int
) -> None:
    kube.namespace(PROVIDER, f"gw-{PID}")
    kube.namespace(CONSUMER, f"gw-{PID}")
    kube.apply("backend-pod.yaml", name="echo", namespace=PROVIDER)
    kube.kubectl(
        "patch",
        "pod",
        "echo",
        "-n",
        PROVIDER,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"podIP": "127.0.0.1", "phase": "Running"}}),
    )
    kube.apply(
        "pod-endpoint-service.yaml",
        name="echo",
        namespace=PROVIDER,
        backend="echo",
        server_port=str(echo_server),
    )
    service = wait_for("echo Available", phase_is(kube, "vpces", PROVIDER, "echo", "Available"))
    kube.apply("endpoint.yaml", name="echo", namespace=CONSUMER, service_name=service["serviceName"])
    status = wait_for("echo Accepted", phase_is(kube, "vpce", CONSUMER, "echo", "Accepted"))

    report = json.loads(
        kube.get("configmap", operator.namespace, f"vpcep-gateway-it-{PID}")["data"]["status.json"]
    )
    route = kube.get("configmap", operator.namespace, f"vpcep-route-{status['endpointId']}")
    assert report["appliedResourceVersion"] >= int(route["metadata"]["resourceVersion"])

    gateway_port = status["gatewayPorts"][0]["gatewayPort"]

    def round_trip() -> bytes:
        try:
            with socket.create_connection(("127.0.0.1", gateway_port), timeout=2) as connection:
                connection.sendall(b"hello")
                return connection.recv(1024)
        except OSError:
            return b""

    assert wait_for("bytes through the gateway", round_trip, timeout=15) == b"echo:hello"
