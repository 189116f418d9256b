"""Backends that go away (issue 11, R7, R18, R1): when the provider deletes the backend Service, or its whole
namespace, under an accepted endpoint, the endpoint's route stops at once -- never left aimed at an address
the cluster may hand to another tenant's Service -- and the endpoint says why; deleting the namespace
completes (the testbed's API server runs the namespace controller)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from integration.conftest import delete_namespaces
from integration.helpers import Cluster, OperatorProcess, StandInGateway, phase_is, publish_service, wait_for

pytestmark = pytest.mark.cluster
PID = os.getpid()
PROVIDER, DOOMED, CONSUMER = f"gone-prov-{PID}", f"gone-doomed-{PID}", f"gone-cons-{PID}"
ACCOUNT = f"gone-{PID}"


@pytest.fixture(scope="module")
def tenants(kube: Cluster, operator: OperatorProcess, gateway: StandInGateway) -> Iterator[None]:
    for namespace in (PROVIDER, DOOMED, CONSUMER):
        kube.namespace(namespace, ACCOUNT)
    yield
    delete_namespaces(kube, PROVIDER, DOOMED, CONSUMER)


def accepted_endpoint(kube: Cluster, provider: str, name: str) -> dict[str, Any]:
    service_name = publish_service(kube, provider, name)
    kube.apply("endpoint.yaml", name=name, namespace=CONSUMER, service_name=service_name)
    return dict(wait_for(f"{name} Accepted", phase_is(kube, "vpce", CONSUMER, name, "Accepted")))


def route_backend(kube: Cluster, operator: OperatorProcess, endpoint_id: str) -> Any:
    """Where the gateways are told to send the endpoint's traffic; None once there is no route."""
    route = kube.get("configmap", operator.namespace, f"vpcep-route-{endpoint_id}")
    if route is None:
        return None
    body = json.loads(route["data"]["route.json"])
    return body.get("backend") or body.get("backendAddress") or body


def test_a_deleted_backend_service_stops_the_route_and_the_endpoint_says_why(
    kube: Cluster, operator: OperatorProcess, tenants: None
) -> None:
    status = accepted_endpoint(kube, PROVIDER, "db")
    backend_ip = kube.get("service", PROVIDER, "db-backend")["spec"]["clusterIP"]
    assert backend_ip in json.dumps(route_backend(kube, operator, status["endpointId"]))

    kube.delete("service", PROVIDER, "db-backend", wait=True)
    failed = wait_for(
        "the endpoint to leave Accepted",
        phase_is(kube, "vpce", CONSUMER, "db", "Failed", "Creating", "Pending"),
    )
    assert failed["reason"] in ("ServiceNotAvailable", "BackendNotFound"), failed
    wait_for(
        "the route no longer aimed at the freed address",
        lambda: backend_ip not in json.dumps(route_backend(kube, operator, status["endpointId"])),
    )

    kube.apply("backend-service.yaml", name="db-backend", namespace=PROVIDER)
    wait_for("Accepted again once the backend is back", phase_is(kube, "vpce", CONSUMER, "db", "Accepted"))


def test_deleting_the_provider_namespace_completes_and_the_endpoint_says_the_service_is_gone(
    kube: Cluster, operator: OperatorProcess, tenants: None
) -> None:
    status = accepted_endpoint(kube, DOOMED, "cache")
    backend_ip = kube.get("service", DOOMED, "cache-backend")["spec"]["clusterIP"]

    kube.kubectl("delete", "namespace", DOOMED, "--wait=false")
    wait_for("the provider namespace gone", lambda: kube.get("namespace", None, DOOMED) is None, timeout=60)
    failed = wait_for("the endpoint Failed", phase_is(kube, "vpce", CONSUMER, "cache", "Failed"))
    assert failed["reason"] == "ServiceDeleted", failed
    route = route_backend(kube, operator, status["endpointId"])
    assert route is None or backend_ip not in json.dumps(route)
