"""A gateway that cannot apply any configuration says why in its status, and the operator quotes it to the
endpoints that wait on it (R30, R39: a reason and a message a person can act on, not only an agent log line).

The real operator and a real gateway agent (ConfigMap route source, real `haproxy -c`) whose HAProxy setting
`--threads 100000` is refused for every configuration."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from integration.conftest import delete_namespaces
from integration.helpers import Cluster, OperatorProcess, phase_is, running_gateway_agent, wait_for

pytestmark = pytest.mark.cluster
PID = os.getpid()
PROVIDER, CONSUMER = f"gwerr-prov-{PID}", f"gwerr-cons-{PID}"
GATEWAY = f"gw-broken-{PID}"


@pytest.fixture(scope="module")
def broken_gateway(kube: Cluster, operator: OperatorProcess) -> Iterator[str]:
    try:
        with running_gateway_agent(
            kube, operator.namespace, GATEWAY, "--threads", "100000", "--heartbeat-interval", "1",
            prefix="vpcep-gwerr",
        ) as runtime:  # fmt: skip
            yield runtime
    finally:
        delete_namespaces(kube, PROVIDER, CONSUMER)


def test_an_endpoint_waiting_on_a_broken_gateway_names_it_and_its_error(
    kube: Cluster, operator: OperatorProcess, broken_gateway: str
) -> None:
    kube.namespace(PROVIDER, f"gwerr-{PID}")
    kube.namespace(CONSUMER, f"gwerr-{PID}")
    kube.apply("backend-service.yaml", name="web-backend", namespace=PROVIDER)
    kube.apply(
        "endpoint-service.yaml", name="web", namespace=PROVIDER, backend="web-backend", approval="false"
    )
    service = wait_for("web Available", phase_is(kube, "vpces", PROVIDER, "web", "Available"))
    kube.apply("endpoint.yaml", name="web", namespace=CONSUMER, service_name=service["serviceName"])

    status = wait_for(
        "the endpoint to quote the gateway's error",
        lambda: (s := kube.status("vpce", CONSUMER, "web")) and GATEWAY in (s.get("message") or "") and s,
    )
    assert (status["phase"], status["reason"]) == ("Creating", "RoutePending")
    assert f"gateway {GATEWAY}: gateway configuration is invalid" in status["message"]
    assert "nbthread" in status["message"], "HAProxy's own words reach the user"
