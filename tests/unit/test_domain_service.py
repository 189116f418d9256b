"""decide_service and the service admission checks (R1, R2, R4, R5, R6, R7, R8, R9)."""

from __future__ import annotations

import pytest
from domain_factories import PROVIDER, REGION, SERVICE_UID, endpoint_view, service_facts, service_spec

from vpcep.api.endpoint import EndpointPhase
from vpcep.api.endpoint_service import EndpointServiceStatus, ServicePhase, ServiceType
from vpcep.domain.facts import ObjectRef
from vpcep.domain.naming import parse_service_name
from vpcep.domain.quota import QuotaStanding
from vpcep.domain.reasons import Reason
from vpcep.domain.service import (
    Operation,
    ServiceAdmission,
    check_service_admission,
    check_service_deletion,
    decide_service,
    service_status,
)

P = EndpointPhase


def test_r5_r6_available_with_a_generated_name() -> None:
    decision = decide_service(service_facts())
    assert decision.phase is ServicePhase.AVAILABLE
    assert decision.service_name == f"{REGION}.web.{SERVICE_UID}"
    assert decision.service_id == SERVICE_UID
    assert decision.service_type is ServiceType.INTERFACE
    assert decision.ready


def test_r5_name_is_stable_once_recorded() -> None:
    decision = decide_service(service_facts(uid="other-uid", recorded_service_id=SERVICE_UID))
    assert decision.service_id == SERVICE_UID
    parts = parse_service_name(decision.service_name)
    assert parts is not None and (parts.region, parts.name, parts.service_id) == (REGION, "web", SERVICE_UID)


def test_r1_backend_missing_is_failed_and_says_what_to_create() -> None:
    decision = decide_service(service_facts(backend_exists=False))
    assert (decision.phase, decision.reason) == (ServicePhase.FAILED, Reason.BACKEND_NOT_FOUND)
    assert "Service prov/web" in decision.message and decision.message.startswith("EndpointService prov/web")
    assert not decision.ready


def test_r1_recovers_when_the_backend_appears() -> None:
    assert decide_service(service_facts(backend_exists=False)).phase is ServicePhase.FAILED
    assert decide_service(service_facts(backend_exists=True)).phase is ServicePhase.AVAILABLE


def test_r6_creating_until_the_data_plane_side_is_ready() -> None:
    decision = decide_service(service_facts(data_plane_ready=False))
    assert (decision.phase, decision.reason) == (ServicePhase.CREATING, Reason.DATA_PLANE_NOT_READY)


def test_r9_over_quota_fails() -> None:
    decision = decide_service(service_facts(quota=QuotaStanding(rank=20, limit=20)))
    assert (decision.phase, decision.reason) == (ServicePhase.FAILED, Reason.QUOTA_EXCEEDED)
    assert "20" in decision.message


def test_r37_system_services_may_be_gateway_type_user_services_may_not() -> None:
    assert decide_service(service_facts(system=True, declared_type=ServiceType.GATEWAY)).service_type is (
        ServiceType.GATEWAY
    )
    assert (
        decide_service(service_facts(declared_type=ServiceType.GATEWAY)).service_type is ServiceType.INTERFACE
    )


def test_connection_counts_and_marker_high_water() -> None:
    endpoints = (
        endpoint_view("a", P.ACCEPTED, marker_id=4),
        endpoint_view("b", P.PENDING_ACCEPTANCE, marker_id=9),
        endpoint_view("c", P.REJECTED),
        endpoint_view("d", P.ACCEPTED, deleting=True, marker_id=2),
    )
    decision = decide_service(service_facts(endpoints=endpoints, last_marker_id=5))
    assert (decision.connection_count, decision.accepted_count, decision.pending_count) == (3, 1, 1)
    assert decision.last_marker_id == 9


def test_marker_high_water_never_goes_down_when_endpoints_leave() -> None:
    assert decide_service(service_facts(endpoints=(), last_marker_id=12)).last_marker_id == 12


def test_r7_yields_when_the_services_namespace_is_being_deleted_R52() -> None:
    """The backend goes with the namespace: holding the service would only keep the namespace Terminating
    forever; every endpoint is told (ServiceDeleted) instead."""
    endpoints = (endpoint_view("a", P.ACCEPTED), endpoint_view("b", P.PENDING_ACCEPTANCE))
    decision = decide_service(service_facts(deleting=True, namespace_terminating=True, endpoints=endpoints))
    assert decision.may_finalize and decision.reason is Reason.DELETING
    assert {ref.name for ref in decision.endpoints_to_fail} == {"a", "b"}


def test_r7_finalizer_holds_while_accepted_or_creating_endpoints_exist() -> None:
    endpoints = (
        endpoint_view("a", P.ACCEPTED),
        endpoint_view("b", P.CREATING),
        endpoint_view("c", P.PENDING_ACCEPTANCE),
        endpoint_view("d", P.REJECTED),
    )
    decision = decide_service(service_facts(deleting=True, endpoints=endpoints))
    assert (decision.phase, decision.reason) == (ServicePhase.DELETING, Reason.HAS_ACTIVE_ENDPOINTS)
    assert not decision.may_finalize
    assert decision.blocking_endpoints == (
        ObjectRef(namespace="cons", name="a"),
        ObjectRef(namespace="cons", name="b"),
    )
    # R46: by endpoint id and account, as the provider's EndpointConnections show them.
    assert "uid-a (account consumer, Accepted)" in decision.message
    assert "uid-b (account consumer, Creating)" in decision.message
    assert "cons" not in decision.message.replace("consumer", "")
    assert set(decision.endpoints_to_fail) == {
        ObjectRef(namespace="cons", name="c"),
        ObjectRef(namespace="cons", name="d"),
    }


def test_r7_finalizer_releases_when_only_pending_or_rejected_remain() -> None:
    endpoints = (endpoint_view("c", P.PENDING_ACCEPTANCE), endpoint_view("a", P.ACCEPTED, deleting=True))
    decision = decide_service(service_facts(deleting=True, endpoints=endpoints))
    assert decision.may_finalize
    assert decision.endpoints_to_fail == (ObjectRef(namespace="cons", name="c"),)


def test_status_carries_every_decided_field() -> None:
    decision = decide_service(service_facts())
    status = service_status(decision, previous=None, now="2026-01-01T00:00:00Z", generation=3)
    assert isinstance(status, EndpointServiceStatus)
    assert (status.phase, status.serviceName, status.observedGeneration) == (
        ServicePhase.AVAILABLE,
        decision.service_name,
        3,
    )
    again = service_status(decision, previous=status, now="2026-01-01T01:00:00Z", generation=3)
    assert again == status


# ---- admission ---------------------------------------------------------------------------------------


def admission(operation: Operation, **overrides: object) -> ServiceAdmission:
    data: dict[str, object] = {
        "operation": operation,
        "namespace": "prov",
        "name": "web",
        "account": PROVIDER,
        "spec": service_spec(),
        "quota_limit": 20,
    }
    data.update(overrides)
    return ServiceAdmission.model_validate(data)


def test_r3_duplicate_client_port_refused_naming_the_field() -> None:
    spec = service_spec(ports=[{"serverPort": 1, "clientPort": 80}, {"serverPort": 2, "clientPort": 80}])
    refusal = check_service_admission(admission(Operation.CREATE, spec=spec))
    assert refusal is not None
    assert refusal.field == "spec.ports" and "clientPort 80" in refusal.message


def test_r10a_bad_auto_accept_entry_refused_naming_the_entry() -> None:
    spec = service_spec(autoAcceptAccounts=["*", "team-b"])
    refusal = check_service_admission(admission(Operation.CREATE, spec=spec))
    assert (
        refusal is not None
        and "spec.autoAcceptAccounts[1]" in refusal.message
        and "'team-b'" in refusal.message
    )


def test_r4_ports_cannot_change() -> None:
    changed = service_spec(ports=[{"serverPort": 8080, "clientPort": 8080}])
    refusal = check_service_admission(admission(Operation.UPDATE, spec=changed, old_spec=service_spec()))
    assert refusal is not None and refusal.reason is Reason.PORTS_IMMUTABLE and refusal.field == "spec.ports"


def test_r2_backend_cannot_change() -> None:
    changed = service_spec(backend={"kind": "Pod", "name": "web-0"})
    refusal = check_service_admission(admission(Operation.UPDATE, spec=changed, old_spec=service_spec()))
    assert refusal is not None and refusal.reason is Reason.BACKEND_IMMUTABLE


def test_description_and_approval_may_change() -> None:
    changed = service_spec(description="new text", approvalRequired=True)
    assert check_service_admission(admission(Operation.UPDATE, spec=changed, old_spec=service_spec())) is None


@pytest.mark.parametrize(("used", "refused"), [(0, False), (19, False), (20, True), (25, True)])
def test_r9_quota_at_admission(used: int, refused: bool) -> None:
    refusal = check_service_admission(admission(Operation.CREATE, quota_used=used))
    assert (refusal is not None) is refused
    if refusal:
        assert refusal.reason is Reason.QUOTA_EXCEEDED and PROVIDER in refusal.message


def test_r9_per_account_override_is_what_the_caller_passes() -> None:
    assert check_service_admission(admission(Operation.CREATE, quota_used=20, quota_limit=30)) is None


@pytest.mark.parametrize("operation", [Operation.CREATE, Operation.UPDATE, Operation.DELETE])
def test_r8_tenants_cannot_touch_system_services(operation: Operation) -> None:
    refusal = check_service_admission(admission(operation, system=True, old_spec=service_spec()))
    assert refusal is not None and refusal.reason is Reason.SYSTEM_SERVICE
    assert (
        check_service_admission(admission(operation, system=True, privileged=True, old_spec=service_spec()))
        is None
    )


def test_r7_delete_refused_listing_active_endpoints() -> None:
    endpoints = (endpoint_view("a", P.ACCEPTED), endpoint_view("b", P.PENDING_ACCEPTANCE))
    refusal = check_service_deletion(ObjectRef(namespace="prov", name="web"), endpoints)
    assert refusal is not None and refusal.reason is Reason.HAS_ACTIVE_ENDPOINTS
    assert "uid-a (account consumer, Accepted)" in refusal.message and "uid-b" not in refusal.message
    assert "cons/" not in refusal.message  # R46
    assert "reject" in refusal.message


def test_r7_delete_allowed_with_only_pending_rejected_or_failed_endpoints() -> None:
    endpoints = (
        endpoint_view("b", P.PENDING_ACCEPTANCE),
        endpoint_view("c", P.REJECTED),
        endpoint_view("d", P.FAILED),
    )
    assert check_service_deletion(ObjectRef(namespace="prov", name="web"), endpoints) is None
