"""R45: a backend is something the provider owns -- the check, the service decision, and the endpoint's route.

Also how observe_backend projects a GET into the check's facts (what is kept per service: a refusal, no body).
"""

from __future__ import annotations

from typing import Any

import pytest
from domain_factories import endpoint_facts, service_facts, service_view, status

from vpcep.api.endpoint import EndpointPhase
from vpcep.api.endpoint_service import BackendKind, ServicePhase
from vpcep.domain.backend import BackendFacts, check_backend
from vpcep.domain.endpoint import DataPathAction, decide_endpoint
from vpcep.domain.reasons import Reason
from vpcep.domain.service import decide_service
from vpcep.state.backends import observe_backend

SERVICE, POD = BackendKind.SERVICE, BackendKind.POD


def facts(kind: BackendKind, **fields: Any) -> BackendFacts:
    return BackendFacts(kind=kind, namespace="prov", name="web", **fields)


CASES = [
    # (facts, selector-less allowed here, expected reason or None)
    (facts(SERVICE), False, None),
    (facts(SERVICE, service_type="ClusterIP"), False, None),
    (facts(SERVICE, service_type="ExternalName", has_selector=False), False, Reason.BACKEND_EXTERNAL_NAME),
    (facts(SERVICE, service_type="ExternalName", has_selector=False), True, Reason.BACKEND_EXTERNAL_NAME),
    (facts(SERVICE, has_selector=False), False, Reason.BACKEND_WITHOUT_SELECTOR),
    (facts(SERVICE, has_selector=False), True, None),  # the cluster admin opted this namespace in
    (facts(POD, pod_phase="Running"), False, None),
    (facts(POD, pod_phase="Pending"), False, Reason.BACKEND_POD_NOT_RUNNING),
    (facts(POD, pod_phase="Succeeded"), False, Reason.BACKEND_POD_NOT_RUNNING),
    (facts(POD, pod_phase="Failed"), False, Reason.BACKEND_POD_NOT_RUNNING),
    (facts(POD), False, Reason.BACKEND_POD_NOT_RUNNING),
    (facts(POD, pod_phase="Running", host_network=True), False, Reason.BACKEND_HOST_NETWORK),
]


@pytest.mark.parametrize(("backend", "allowed", "reason"), CASES)
def test_r45_what_a_backend_may_be(backend: BackendFacts, allowed: bool, reason: Reason | None) -> None:
    refusal = check_backend(backend, allowed)
    assert (refusal.reason if refusal else None) == reason
    if refusal is not None:
        # The message names the object and a fix, and cites the rule.
        assert (
            f"{backend.kind.value} prov/web" in refusal.message
            and "(see docs/rules.md#r45)" in refusal.message
        )
        assert any(word in refusal.message for word in ("selector", "without hostNetwork", "runs"))


def test_r45_a_refused_backend_fails_the_service_with_its_own_reason() -> None:
    refusal = check_backend(facts(SERVICE, service_type="ExternalName"), False)
    decision = decide_service(service_facts(backend_refusal=refusal))
    assert (decision.phase, decision.reason) == (ServicePhase.FAILED, Reason.BACKEND_EXTERNAL_NAME)
    assert decision.message.startswith(
        "EndpointService prov/web: backend Service prov/web is an ExternalName"
    )
    found = {c.type: c for c in decision.conditions}["BackendFound"]
    assert (found.status, found.reason) == (False, Reason.BACKEND_EXTERNAL_NAME)


@pytest.mark.parametrize(
    "reason", [Reason.BACKEND_POD_NOT_RUNNING, Reason.BACKEND_WITHOUT_SELECTOR, Reason.BACKEND_NOT_FOUND]
)
def test_r45_r52_an_accepted_endpoint_loses_its_route_but_keeps_its_node_ip(reason: Reason) -> None:
    """A finished Pod's address may be reused: no gateway may dial it. The node IP and ports stay, so the
    endpoint comes back as it was when the backend does."""
    previous = status(EndpointPhase.ACCEPTED, endpointId="e", nodeIP="10.96.0.10", dnsName="e1.cons.svc")
    decision = decide_endpoint(
        endpoint_facts(status=previous, service=service_view(phase=ServicePhase.FAILED, reason=reason.value))
    )
    assert decision.data_path is DataPathAction.WITHDRAW
    assert decision.phase is EndpointPhase.CREATING and decision.node_ip == "10.96.0.10"
    assert reason.value in decision.message


def test_a_service_waiting_for_other_reasons_keeps_the_route() -> None:
    decision = decide_endpoint(
        endpoint_facts(
            status=status(EndpointPhase.ACCEPTED, endpointId="e"),
            service=service_view(phase=ServicePhase.FAILED, reason=Reason.QUOTA_EXCEEDED.value),
        )
    )
    assert decision.data_path is DataPathAction.KEEP


def _pod(phase: str, host_network: bool = False) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "prov", "labels": {"app": "web"}},
        "spec": {"hostNetwork": host_network},
        "status": {"phase": phase, "podIP": "10.244.0.9"},
    }


def test_observe_backend_keeps_no_address_of_a_refused_backend() -> None:
    finished = observe_backend(POD, _pod("Succeeded"))
    assert finished.exists and finished.host is None and finished.refusal is not None
    assert observe_backend(POD, _pod("Running")).host == "10.244.0.9"
    assert observe_backend(POD, _pod("Running", host_network=True)).host is None
    external = {"metadata": {"name": "web", "namespace": "prov"}, "spec": {"type": "ExternalName"}}
    assert observe_backend(SERVICE, external).refusal is not None
    selectorless = {"metadata": {"name": "web", "namespace": "prov"}, "spec": {"clusterIP": "10.96.1.1"}}
    assert observe_backend(SERVICE, selectorless).refusal is not None
    assert observe_backend(SERVICE, selectorless, selectorless_allowed=True).host == "10.96.1.1"
    # Cloud services (declared by the cluster admin) are not judged.
    assert observe_backend(SERVICE, external, judged=False).refusal is None


def test_a_headless_backend_is_dialled_by_its_name_in_the_cluster_domain() -> None:
    """Issue 11: the cluster domain is a setting (kubelet --cluster-domain), not cluster.local always."""
    headless = {
        "metadata": {"name": "db", "namespace": "shop"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]},
    }
    assert observe_backend(SERVICE, headless).host == "db.shop.svc.cluster.local"
    observed = observe_backend(SERVICE, headless, cluster_domain="corp.example")
    assert observed.host == "db.shop.svc.corp.example"
