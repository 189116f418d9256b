"""R21 across gateway replicas (R49), end to end with two real gateway agents (HAProxy) and the operator: the
endpoint's cap holds for the endpoint as a whole, not per gateway.

Each route carries ⌈cap ÷ ready gateways⌉ (vpcep.domain.connection_cap); the operator rewrites it when a
gateway joins or leaves. The two agents run on the host's loopback, bound to 127.0.0.2 and 127.0.0.3 (both
loopback addresses on Linux), so each listens on the same gateway port; the test dials each gateway
directly, as kube-proxy would spread a consumer's connections.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator

import pytest

from integration.conftest import delete_namespaces, start_operator
from integration.helpers import (
    Cluster,
    OperatorProcess,
    free_port_run,
    published_pod_endpoint,
    running_gateway_agent,
    wait_for,
)
from line_echo import stream_echo_server, talks

pytestmark = pytest.mark.cluster
PID = os.getpid()
PROVIDER, CONSUMER = f"cap-prov-{PID}", f"cap-cons-{PID}"
CAP = 10
GATEWAY_A, GATEWAY_B = "127.0.0.2", "127.0.0.3"


@pytest.fixture(scope="module")
def operator(kube: Cluster, operator_namespace: str) -> Iterator[OperatorProcess]:
    first = free_port_run(4, (GATEWAY_A, GATEWAY_B))
    process = start_operator(
        kube,
        operator_namespace,
        config={
            "gatewayPorts": {"first": first, "last": first + 3},
            "maxConnectionsPerEndpoint": CAP,
            "gatewayIngressPolicy": False,  # no network plugin on loopback; R42 is tested elsewhere
        },
    )
    try:
        yield process
        delete_namespaces(kube, PROVIDER, CONSUMER, operator_namespace)
    finally:
        process.stop()


@contextlib.contextmanager
def gateway_agent(kube: Cluster, operator: OperatorProcess, name: str, address: str) -> Iterator[str]:
    with running_gateway_agent(
        kube,
        operator.namespace,
        f"{name}-{PID}",
        "--address", address, "--bind-address", address, "--heartbeat-interval", "1",
    ) as runtime:  # fmt: skip
        yield runtime


def route_cap(kube: Cluster, operator: OperatorProcess, endpoint_id: str) -> int:
    route = kube.get("configmap", operator.namespace, f"vpcep-route-{endpoint_id}") or {}
    return int(json.loads(route.get("data", {}).get("route.json", "{}")).get("maxConnections", 0))


def served_by_all(kube: Cluster, operator: OperatorProcess, endpoint_id: str, *gateways: str) -> bool:
    """Every named gateway reports a version covering the route (it reloaded with the new cap)."""
    route = kube.get("configmap", operator.namespace, f"vpcep-route-{endpoint_id}")
    if route is None:
        return False
    version = int(route["metadata"]["resourceVersion"])
    for name in gateways:
        status = kube.get("configmap", operator.namespace, f"vpcep-gateway-{name}-{PID}")
        report = json.loads(((status or {}).get("data") or {}).get("status.json", "{}"))
        if int(report.get("appliedResourceVersion", 0)) < version:
            return False
    return True


def session(address: str, port: int) -> socket.socket | None:
    """A session through the gateway that talks, or None: the gateway refused it (closed at once)."""
    try:
        connection = socket.create_connection((address, port), timeout=2)
    except OSError:
        return None
    if not talks(connection):
        connection.close()
        return None
    return connection


def open_sessions(address: str, port: int, count: int) -> list[socket.socket]:
    opened = [s for s in (session(address, port) for _ in range(count)) if s is not None]
    assert len(opened) == count, f"{len(opened)} of {count} sessions through {address} were accepted"
    return opened


def close(sessions: list[socket.socket]) -> None:
    for connection in sessions:
        connection.close()


def test_the_cap_holds_for_the_endpoint_across_two_gateways_R21_R49(
    kube: Cluster, operator: OperatorProcess
) -> None:
    """Cap 10, two gateways: each takes 5, so 10 sessions pass across both and the 11th is refused on either.
    The documented worst case of uneven spreading shows too: the 6th on one gateway is refused while the other
    is idle. One gateway leaves: the survivor is given the whole cap again."""
    with stream_echo_server() as backend, gateway_agent(kube, operator, "cap-a", GATEWAY_A):
        status = published_pod_endpoint(kube, PROVIDER, CONSUMER, f"cap-{PID}", backend)
        endpoint_id, port = status["endpointId"], status["gatewayPorts"][0]["gatewayPort"]
        assert route_cap(kube, operator, endpoint_id) == CAP  # one ready gateway: the whole cap

        with gateway_agent(kube, operator, "cap-b", GATEWAY_B):
            wait_for(
                "the route to carry half the cap, served by both gateways",
                lambda: (
                    route_cap(kube, operator, endpoint_id) == CAP // 2
                    and served_by_all(kube, operator, endpoint_id, "cap-a", "cap-b")
                ),
                timeout=30,
            )
            on_a = open_sessions(GATEWAY_A, port, CAP // 2)
            assert session(GATEWAY_A, port) is None, "gateway A took more than its share"
            on_b = open_sessions(GATEWAY_B, port, CAP // 2)
            assert all(talks(s) for s in on_a + on_b), f"{CAP} sessions across both gateways"
            for address in (GATEWAY_A, GATEWAY_B):
                assert session(address, port) is None, f"session {CAP + 1} passed through {address}"
            close(on_a + on_b)

        wait_for(
            "the survivor to get the whole cap back",
            lambda: (
                route_cap(kube, operator, endpoint_id) == CAP
                and served_by_all(kube, operator, endpoint_id, "cap-a")
            ),
            timeout=30,
        )
        survivor = wait_for(
            "all sessions of the cap through the survivor",
            lambda: _all_or_none(GATEWAY_A, port, CAP),
            timeout=15,
        )
        assert session(GATEWAY_A, port) is None, f"session {CAP + 1} passed"
        close(survivor)


def _all_or_none(address: str, port: int, count: int) -> list[socket.socket] | None:
    """`count` sessions, or None (closing what opened) while the old cap still holds (HAProxy reloading)."""
    opened = [s for s in (session(address, port) for _ in range(count)) if s is not None]
    if len(opened) == count:
        return opened
    close(opened)
    return None
