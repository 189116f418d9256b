"""What a gateway reports reaches the Endpoint: a refused route, an unreachable backend and a stopped
heartbeat each give the condition and message a person can act on, and each recovers when the report does
(R30, R32, R39).

The real operator, and the stand-in gateway (helpers.StandInGateway) made to report what a real agent reports
in these cases; the agent's side of each report (HAProxy refusing a port, a failing health check) is tested
with real HAProxy in tests/dataplane/test_gateway_paths.py.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from integration.conftest import delete_namespaces, start_operator
from integration.helpers import (
    Cluster,
    OperatorProcess,
    StandInGateway,
    phase_is,
    slice_addresses,
    wait_for,
)

pytestmark = pytest.mark.cluster
PID = os.getpid()
PROVIDER, CONSUMER = f"gwrep-prov-{PID}", f"gwrep-cons-{PID}"
HEARTBEAT_TIMEOUT_SECONDS = 5


@pytest.fixture(scope="module")
def operator(kube: Cluster, operator_namespace: str) -> Iterator[OperatorProcess]:
    process = start_operator(
        kube, operator_namespace, config={"gatewayHeartbeatTimeoutSeconds": HEARTBEAT_TIMEOUT_SECONDS}
    )
    try:
        yield process
        delete_namespaces(kube, PROVIDER, CONSUMER, operator_namespace)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def service_name(kube: Cluster, operator: OperatorProcess, gateway: StandInGateway) -> str:
    kube.namespace(PROVIDER, f"gwrep-{PID}")
    kube.namespace(CONSUMER, f"gwrep-{PID}")
    kube.apply("backend-service.yaml", name="web-backend", namespace=PROVIDER)
    kube.apply(
        "endpoint-service.yaml", name="web", namespace=PROVIDER, backend="web-backend", approval="false"
    )
    return str(
        wait_for("web Available", phase_is(kube, "vpces", PROVIDER, "web", "Available"))["serviceName"]
    )


def accepted_endpoint(kube: Cluster, service_name: str, name: str) -> dict[str, Any]:
    kube.apply("endpoint.yaml", name=name, namespace=CONSUMER, service_name=service_name)
    return wait_for(f"{name} Accepted", phase_is(kube, "vpce", CONSUMER, name, "Accepted"))


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions") or [] if c["type"] == kind)


def heartbeat_age(kube: Cluster, gateway: StandInGateway) -> float:
    report = kube.get("configmap", gateway.namespace, f"vpcep-gateway-{gateway.name}")
    heartbeat = json.loads(report["data"]["status.json"])["heartbeat"]
    moment = datetime.datetime.fromisoformat(heartbeat.replace("Z", "+00:00"))
    return (datetime.datetime.now(datetime.UTC) - moment).total_seconds()


def test_a_refused_route_holds_the_endpoint_with_the_gateways_reason(
    kube: Cluster, gateway: StandInGateway, service_name: str
) -> None:
    endpoint_id = accepted_endpoint(kube, service_name, "refused")["endpointId"]
    gateway.rejected_routes[endpoint_id] = "gatewayPort 20001 is in use on the gateway by another process"
    status = wait_for(
        "refused RouteRejected",
        lambda: (s := kube.status("vpce", CONSUMER, "refused")).get("reason") == "RouteRejected" and s,
    )
    assert status["phase"] == "Creating"
    assert f"{gateway.name}: gatewayPort 20001 is in use" in status["message"]
    assert condition(status, "Ready")["status"] == "False"

    del gateway.rejected_routes[endpoint_id]
    wait_for("refused Accepted again", phase_is(kube, "vpce", CONSUMER, "refused", "Accepted"))


def test_an_unreachable_backend_is_a_false_backend_reachable_condition_R32(
    kube: Cluster, gateway: StandInGateway, service_name: str
) -> None:
    status = accepted_endpoint(kube, service_name, "unreachable")
    assert condition(status, "BackendReachable")["status"] == "True"
    message = "gateway port 20002: backend 10.96.0.7:8080 unreachable from gateway (DOWN: Layer4 timeout)"
    gateway.unreachable_backends[status["endpointId"]] = message

    def reachability() -> dict[str, Any] | None:
        found = condition(kube.status("vpce", CONSUMER, "unreachable"), "BackendReachable")
        return found if found["status"] == "False" else None

    reported = wait_for("BackendReachable False", reachability)
    assert reported["reason"] == "BackendUnreachable"
    # R46: the consumer hears the gateway's report without the backend's address.
    expected = message.replace("10.96.0.7:8080", "<backend>")
    assert f"backend unreachable from gateway {gateway.name}: {expected}" in reported["message"]
    assert "10.96.0.7" not in reported["message"]

    del gateway.unreachable_backends[status["endpointId"]]
    wait_for(
        "BackendReachable True again",
        lambda: (
            condition(kube.status("vpce", CONSUMER, "unreachable"), "BackendReachable")["status"] == "True"
        ),
    )


def test_when_the_only_gateway_stops_reporting_it_keeps_serving_and_no_new_endpoint_is_accepted_R52(
    kube: Cluster, operator: OperatorProcess, gateway: StandInGateway, service_name: str
) -> None:
    """Its reports stop (the API refuses its writes, its agent hangs): what it serves stays in the slices
    (fail static, said in the log); a new endpoint waits, saying why, until a report comes."""
    accepted_endpoint(kube, service_name, "held")
    assert slice_addresses(kube, CONSUMER, "held") == {gateway.address}
    gateway.stop_heartbeat()
    try:
        wait_for(  # the operator's own clock decides; give it a second more than its timeout
            "the gateway's last heartbeat to be stale",
            lambda: heartbeat_age(kube, gateway) > HEARTBEAT_TIMEOUT_SECONDS + 1,
            timeout=HEARTBEAT_TIMEOUT_SECONDS + 15,
        )
        wait_for(
            "the operator to say it holds the fleet", lambda: "fail static" in operator.log(), timeout=10
        )
        kube.apply("endpoint.yaml", name="stale", namespace=CONSUMER, service_name=service_name)
        status = wait_for(
            "stale waiting for a fresh report",
            lambda: (
                "no fresh status report" in (s := kube.status("vpce", CONSUMER, "stale")).get("message", "")
                and s
            ),
            timeout=HEARTBEAT_TIMEOUT_SECONDS + 30,
        )
        assert status["phase"] == "Creating" and status["reason"] == "RoutePending"
        # Meanwhile the established endpoint keeps its phase and its gateway.
        assert kube.status("vpce", CONSUMER, "held")["phase"] == "Accepted"
        assert slice_addresses(kube, CONSUMER, "held") == {gateway.address}
    finally:
        gateway.resume_heartbeat()
    wait_for("stale Accepted once the gateway reports", phase_is(kube, "vpce", CONSUMER, "stale", "Accepted"))
    assert "fail static over" in operator.log()


def test_one_stale_gateway_among_fresh_ones_is_withdrawn_R30(
    kube: Cluster, operator: OperatorProcess, gateway: StandInGateway, service_name: str
) -> None:
    second = StandInGateway(kube, operator.namespace, f"second-{PID}", "10.244.0.12")
    second.start()
    try:
        accepted_endpoint(kube, service_name, "pair")
        wait_for(
            "both gateways in the slice",
            lambda: slice_addresses(kube, CONSUMER, "pair") == {gateway.address, second.address},
        )
        second.stop_heartbeat()
        wait_for(
            "the stale one withdrawn",
            lambda: slice_addresses(kube, CONSUMER, "pair") == {gateway.address},
            timeout=HEARTBEAT_TIMEOUT_SECONDS + 20,
        )
        assert kube.status("vpce", CONSUMER, "pair")["phase"] == "Accepted"
    finally:
        second.stop()
