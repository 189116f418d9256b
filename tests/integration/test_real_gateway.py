"""End to end on loopback: the operator and the real gateway agent (HAProxy) together. Accepted is
reported only after the gateway applied the route, and bytes sent to the gateway port reach the Pod
backend (R18, R30)."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from integration.conftest import delete_namespaces, start_operator
from integration.helpers import (
    TRUSTED_GATEWAYS,
    Cluster,
    OperatorProcess,
    free_port_run,
    gateway_pod,
    phase_is,
    running_gateway_agent,
    slice_addresses,
    wait_for,
)
from line_echo import stream_echo_server, talks

pytestmark = pytest.mark.cluster
PID = os.getpid()
PROVIDER, CONSUMER = f"gw-prov-{PID}", f"gw-cons-{PID}"
HEARTBEAT_TIMEOUT_SECONDS = 6


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
def stream_echo_port() -> Iterator[int]:
    with stream_echo_server() as port:
        yield port


@pytest.fixture(scope="module")
def operator(kube: Cluster, operator_namespace: str) -> Iterator[OperatorProcess]:
    first = free_port_run(20)
    config = {
        "gatewayPorts": {"first": first, "last": first + 19},
        # R47 as the chart runs it: the agent's report counts because a Ready gateway pod at its IP stands
        # behind it (helpers.gateway_pod); R52: three missed heartbeats (every 2 s) make it stale.
        **TRUSTED_GATEWAYS,
        "gatewayHeartbeatTimeoutSeconds": HEARTBEAT_TIMEOUT_SECONDS,
    }
    process = start_operator(kube, operator_namespace, config=config)
    try:
        yield process
        delete_namespaces(kube, PROVIDER, CONSUMER, operator_namespace)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def real_gateway(kube: Cluster, operator: OperatorProcess) -> Iterator[str]:
    with (
        gateway_pod(kube, operator.namespace, f"it-{PID}", "127.0.0.1"),
        running_gateway_agent(kube, operator.namespace, f"it-{PID}", "--heartbeat-interval", "2") as runtime,
    ):
        yield runtime


def publish_local_server(kube: Cluster, name: str, port: int) -> dict[str, Any]:
    """An EndpointService in PROVIDER whose Pod backend is a server of this test on 127.0.0.1:port."""
    kube.namespace(PROVIDER, f"gw-{PID}")
    kube.namespace(CONSUMER, f"gw-{PID}")
    kube.apply("backend-pod.yaml", name=name, namespace=PROVIDER)
    kube.kubectl(
        "patch",
        "pod",
        name,
        "-n",
        PROVIDER,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"podIP": "127.0.0.1", "phase": "Running"}}),
    )
    kube.apply(
        "pod-endpoint-service.yaml", name=name, namespace=PROVIDER, backend=name, server_port=str(port)
    )
    return wait_for(f"{name} Available", phase_is(kube, "vpces", PROVIDER, name, "Available"))


def test_accepted_only_when_served_and_bytes_reach_the_backend(
    kube: Cluster, operator: OperatorProcess, real_gateway: str, echo_server: int
) -> None:
    service = publish_local_server(kube, "echo", echo_server)
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


def test_reject_cuts_the_endpoints_open_sessions_after_the_drain_and_no_other_R43(
    kube: Cluster, operator: OperatorProcess, real_gateway: str, stream_echo_port: int
) -> None:
    """The provider rejects one of two accepted endpoints: the operator removes its route, and the gateway
    (default drain, 5 s) cuts its open session, held by an old HAProxy worker; the other one keeps flowing."""
    service = publish_local_server(kube, "stream", stream_echo_port)
    sessions: dict[str, socket.socket] = {}
    statuses: dict[str, dict[str, Any]] = {}
    for name in (
        "stream-cut",
        "stream-stays",
    ):  # the second endpoint's reload moves the first session to an old worker
        kube.apply("endpoint.yaml", name=name, namespace=CONSUMER, service_name=service["serviceName"])
        statuses[name] = wait_for(f"{name} Accepted", phase_is(kube, "vpce", CONSUMER, name, "Accepted"))
        port = statuses[name]["gatewayPorts"][0]["gatewayPort"]
        sessions[name] = wait_for(f"a session through {name}", lambda p=port: _open_session(p), timeout=15)

    kube.apply(
        "connection-decision.yaml",
        name=statuses["stream-cut"]["endpointId"],
        namespace=PROVIDER,
        decision="Reject",
    )
    rejected_at = time.monotonic()
    wait_for("stream-cut Rejected", phase_is(kube, "vpce", CONSUMER, "stream-cut", "Rejected"))
    cut_port = statuses["stream-cut"]["gatewayPorts"][0]["gatewayPort"]
    wait_for(
        "new connections to the rejected endpoint refused",
        lambda: _refused(cut_port),
        timeout=10,
    )
    assert talks(sessions["stream-cut"]), "the open session drains before it is cut"

    def cut() -> bool:
        assert talks(sessions["stream-stays"]), "the other endpoint's session is never cut (R30)"
        return not talks(sessions["stream-cut"])

    wait_for("the rejected endpoint's session to be cut", cut, timeout=15)
    cut_after = time.monotonic() - rejected_at
    assert cut_after >= 5.0, f"cut {cut_after:.1f} s after the Reject, before the 5 s drain"
    assert talks(sessions["stream-stays"])
    print(f"\nReject -> session cut after {cut_after:.2f} s (drain 5 s)")
    for connection in sessions.values():
        connection.close()


def test_a_paused_agent_past_the_heartbeat_timeout_keeps_serving_and_keeps_its_slice_R52(
    kube: Cluster, operator: OperatorProcess, real_gateway: str, stream_echo_port: int
) -> None:
    """SIGSTOP the gateway agent (HAProxy, its child, keeps running) for twice the heartbeat timeout: its
    reports stop, the operator holds the fleet (fail static) instead of emptying the slice, bytes keep
    flowing on open and new connections; SIGCONT and it reports again, the hold ends."""
    service = publish_local_server(kube, "paused", stream_echo_port)
    kube.apply("endpoint.yaml", name="paused", namespace=CONSUMER, service_name=service["serviceName"])
    status = wait_for("paused Accepted", phase_is(kube, "vpce", CONSUMER, "paused", "Accepted"))
    port = status["gatewayPorts"][0]["gatewayPort"]
    session = wait_for("a session through the gateway", lambda: _open_session(port), timeout=15)
    wait_for("the gateway in the slice", lambda: slice_addresses(kube, CONSUMER, "paused") == {"127.0.0.1"})
    holds_before = operator.log().count("(fail static, R52)")
    agent = int(pathlib.Path(real_gateway, "agent.pid").read_text())
    os.kill(agent, signal.SIGSTOP)
    try:
        wait_for(
            "the operator to hold the fleet",
            lambda: operator.log().count("(fail static, R52)") > holds_before,
            timeout=HEARTBEAT_TIMEOUT_SECONDS + 20,
        )
        paused_until = time.monotonic() + HEARTBEAT_TIMEOUT_SECONDS
        while time.monotonic() < paused_until:  # well past the timeout, checked all along
            assert talks(session), "the open session stops while the agent is paused"
            fresh = _open_session(port)
            assert fresh is not None, "a new connection is refused while the agent is paused"
            fresh.close()
            assert slice_addresses(kube, CONSUMER, "paused") == {"127.0.0.1"}
            assert kube.status("vpce", CONSUMER, "paused")["phase"] == "Accepted"
            time.sleep(0.5)
    finally:
        os.kill(agent, signal.SIGCONT)
    wait_for("the hold to end", lambda: "fail static over" in operator.log(), timeout=20)
    assert talks(session)
    assert slice_addresses(kube, CONSUMER, "paused") == {"127.0.0.1"}
    session.close()


def _open_session(port: int) -> socket.socket | None:
    try:
        connection = socket.create_connection(("127.0.0.1", port), timeout=2)
    except OSError:
        return None
    if not talks(connection):
        connection.close()
        return None
    return connection


def _refused(port: int) -> bool:
    connection = _open_session(port)
    if connection is None:
        return True
    connection.close()
    return False
