"""Quotas (R9, R22) and backend recovery (R1) with the webhook off: the reconcilers enforce them alone."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from integration.conftest import delete_namespaces
from integration.helpers import (
    Cluster,
    OperatorProcess,
    StandInGateway,
    phase_is,
    pod_running_at,
    render,
    wait_for,
)

pytestmark = pytest.mark.cluster
PID = os.getpid()
PROVIDER, CONSUMER, OTHER = f"q-prov-{PID}", f"q-cons-{PID}", f"q-other-{PID}"
ACCOUNT = f"quota-{PID}"


@pytest.fixture(scope="module")
def namespaces(kube: Cluster, operator: OperatorProcess, gateway: StandInGateway) -> Iterator[None]:
    for namespace in (PROVIDER, CONSUMER, OTHER):
        kube.namespace(namespace, ACCOUNT)
    kube.apply("backend-service.yaml", name="shared-backend", namespace=PROVIDER)
    yield
    delete_namespaces(kube, PROVIDER, CONSUMER, OTHER)


def apply_many(kube: Cluster, template: str, names: list[str], **values: str) -> None:
    """One `kubectl apply -f` of a multi-document file, as a GitOps sync would do."""
    kube.apply_text("\n---\n".join(render(template, name=name, **values) for name in names))


def quota_view(kube: Cluster, namespace: str) -> dict[str, str]:
    body = kube.get("configmap", namespace, "vpcep-quota")
    return dict((body or {}).get("data") or {})


def test_the_21st_service_of_an_account_fails_until_one_is_deleted(kube: Cluster, namespaces: None) -> None:
    """R9 default limit 20: created past the (disabled) webhook, the 21st is Failed/QuotaExceeded; a delete
    frees its place at once; R41 the tenant's quota view shows the usage."""
    first = [f"svc-{n:02d}" for n in range(20)]
    apply_many(
        kube,
        "endpoint-service.yaml",
        first,
        namespace=PROVIDER,
        backend="shared-backend",
        approval="false",
    )
    for name in first:
        wait_for(f"{name} Available", phase_is(kube, "vpces", PROVIDER, name, "Available"))
    kube.apply(
        "endpoint-service.yaml", name="svc-20", namespace=PROVIDER, backend="shared-backend", approval="false"
    )
    failed = wait_for("svc-20 Failed", phase_is(kube, "vpces", PROVIDER, "svc-20", "Failed"))
    assert failed["reason"] == "QuotaExceeded"
    assert "20" in failed["message"]
    wait_for(
        "the quota view to count 21 services",
        lambda: quota_view(kube, PROVIDER).get("servicesUsed") == "21" and quota_view(kube, PROVIDER),
    )
    assert quota_view(kube, PROVIDER)["servicesLimit"] == "20"

    kube.delete("vpces", PROVIDER, "svc-00")
    wait_for("svc-20 to recover", phase_is(kube, "vpces", PROVIDER, "svc-20", "Available"))


def test_the_51st_endpoint_of_an_account_fails_until_one_is_deleted(kube: Cluster, namespaces: None) -> None:
    """R22 default limit 50, counted across the account's namespaces."""
    kube.apply(  # there already when the test above ran first; this test needs only this one service
        "endpoint-service.yaml", name="svc-01", namespace=PROVIDER, backend="shared-backend", approval="false"
    )
    service_name = wait_for("svc-01", phase_is(kube, "vpces", PROVIDER, "svc-01", "Available"))["serviceName"]
    apply_many(
        kube,
        "endpoint.yaml",
        [f"ep-{n:02d}" for n in range(25)],
        namespace=CONSUMER,
        service_name=service_name,
    )
    apply_many(
        kube,
        "endpoint.yaml",
        [f"ep-{n:02d}" for n in range(25, 50)],
        namespace=OTHER,
        service_name=service_name,
    )
    for n in range(50):
        wait_for(
            f"ep-{n:02d} Accepted",
            phase_is(kube, "vpce", CONSUMER if n < 25 else OTHER, f"ep-{n:02d}", "Accepted"),
            timeout=60,
        )
    kube.apply("endpoint.yaml", name="ep-50", namespace=CONSUMER, service_name=service_name)
    failed = wait_for("ep-50 Failed", phase_is(kube, "vpce", CONSUMER, "ep-50", "Failed"))
    assert failed["reason"] == "QuotaExceeded"
    assert kube.get("service", CONSUMER, "vpce-ep-50") is None

    kube.delete("vpce", OTHER, "ep-30")
    wait_for("ep-50 to recover", phase_is(kube, "vpce", CONSUMER, "ep-50", "Accepted"))
    view = wait_for(
        "the quota view",
        lambda: quota_view(kube, CONSUMER).get("endpointsUsed") == "50" and quota_view(kube, CONSUMER),
    )
    assert view["endpointsLimit"] == "50" and view["account"] == ACCOUNT


def test_missing_backend_fails_then_recovers_by_itself(kube: Cluster, namespaces: None) -> None:
    """R1: BackendNotFound until the backend Service appears; endpoints waiting on it follow (R18)."""
    kube.delete("vpces", PROVIDER, "svc-02", wait=True)  # stay within the 20-service quota of this account
    kube.delete("vpce", OTHER, "ep-31", wait=True)  # and within the 50-endpoint quota
    kube.apply(
        "endpoint-service.yaml", name="late", namespace=PROVIDER, backend="late-backend", approval="false"
    )
    failed = wait_for("late Failed", phase_is(kube, "vpces", PROVIDER, "late", "Failed"))
    assert failed["reason"] == "BackendNotFound"
    assert "late-backend" in failed["message"]

    kube.apply("backend-service.yaml", name="late-backend", namespace=PROVIDER)
    recovered = wait_for("late Available", phase_is(kube, "vpces", PROVIDER, "late", "Available"))
    kube.apply("endpoint.yaml", name="late", namespace=OTHER, service_name=recovered["serviceName"])
    wait_for("the endpoint Accepted", phase_is(kube, "vpce", OTHER, "late", "Accepted"))

    kube.delete("service", PROVIDER, "late-backend", wait=True)
    gone = wait_for("late Failed again", phase_is(kube, "vpces", PROVIDER, "late", "Failed"))
    assert gone["reason"] == "BackendNotFound"


def test_a_pod_backend_appearing_later_recovers_its_service(kube: Cluster, namespaces: None) -> None:
    """R1 with a Pod backend and a cluster-wide operator: the metadata-only Pod watch alone (no re-list for
    minutes) brings the service from BackendNotFound to Available once the Pod exists with an IP."""
    kube.delete("vpces", PROVIDER, "svc-03", wait=True)  # stay within the 20-service quota of this account
    kube.apply(
        "pod-endpoint-service.yaml", name="worker", namespace=PROVIDER, backend="worker", server_port="9000"
    )
    failed = wait_for("worker Failed", phase_is(kube, "vpces", PROVIDER, "worker", "Failed"))
    assert failed["reason"] == "BackendNotFound"
    kube.apply("backend-pod.yaml", name="worker", namespace=PROVIDER)
    pod_running_at(kube, PROVIDER, "worker", "10.244.2.9")
    wait_for("worker Available", phase_is(kube, "vpces", PROVIDER, "worker", "Available"), timeout=20)
