"""decide_endpoint: a table of cases named after the SPEC rules (R7, R10-R18, R22, R32, R34, R38, R40)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from domain_factories import (
    CONSUMER,
    LIVE_PATH,
    PROVIDER,
    REGION,
    SERVICE_NAME,
    endpoint_facts,
    service_spec,
    service_view,
    status,
    whitelist,
)

from vpcep.api.endpoint import AccessControl, EndpointPhase, EndpointSpec, GatewayPort
from vpcep.api.endpoint_connection import DecidedBy, Decision
from vpcep.api.endpoint_service import ServicePhase, ServiceType
from vpcep.domain.allocation import PortRange
from vpcep.domain.endpoint import (
    AllocationFacts,
    DataPathAction,
    DataPathFacts,
    connection_status,
    decide_endpoint,
    endpoint_status,
)
from vpcep.domain.quota import QuotaStanding
from vpcep.domain.reasons import Reason

P = EndpointPhase
APPROVAL = service_spec(approvalRequired=True)
HELD_SERVICE = service_view(deleting=True, phase=ServicePhase.DELETING, reason="HasActiveEndpoints")


@dataclass(frozen=True)
class Case:
    id: str
    facts: dict[str, Any]
    phase: EndpointPhase
    reason: Reason
    data_path: DataPathAction
    in_message: tuple[str, ...] = field(default=())


CASES = [
    # R10: no approval -> accepted automatically; R18: node IP and DNS name once every ready gateway serves it
    Case("R10-no-approval-accepted", {}, P.ACCEPTED, Reason.ACCEPTED, DataPathAction.ENSURE, ("10.96.0.10",)),
    Case(
        "R10-approval-required-waits",
        {"service": service_view(spec=APPROVAL)},
        P.PENDING_ACCEPTANCE,
        Reason.PENDING_ACCEPTANCE,
        DataPathAction.REMOVE,
        ("EndpointConnection", "Accept"),
    ),
    Case(
        "R10-accept-decision",
        {"service": service_view(spec=APPROVAL), "decision": Decision.ACCEPT},
        P.ACCEPTED,
        Reason.ACCEPTED,
        DataPathAction.ENSURE,
    ),
    Case(
        "R10a-auto-accept-account",
        {
            "service": service_view(
                spec=service_spec(approvalRequired=True, autoAcceptAccounts=[f"iam:domain::{CONSUMER}"])
            )
        },
        P.ACCEPTED,
        Reason.ACCEPTED,
        DataPathAction.ENSURE,
    ),
    Case(
        "R10a-auto-accept-wildcard",
        {"service": service_view(spec=service_spec(approvalRequired=True, autoAcceptAccounts=["*"]))},
        P.ACCEPTED,
        Reason.ACCEPTED,
        DataPathAction.ENSURE,
    ),
    Case(
        "R10a-explicit-reject-wins-over-auto-accept",
        {
            "service": service_view(spec=service_spec(approvalRequired=True, autoAcceptAccounts=["*"])),
            "decision": Decision.REJECT,
        },
        P.REJECTED,
        Reason.REJECTED,
        DataPathAction.REMOVE,
    ),
    Case(
        "R11-reject-tears-down-an-accepted-endpoint",
        {"status": status(P.ACCEPTED), "decision": Decision.REJECT},
        P.REJECTED,
        Reason.REJECTED,
        DataPathAction.REMOVE,
    ),
    Case(
        "R11-reject-wins-without-approval-too",
        {"decision": Decision.REJECT},
        P.REJECTED,
        Reason.REJECTED,
        DataPathAction.REMOVE,
    ),
    Case(
        "R11-turning-approval-off-accepts-what-was-pending",
        {"status": status(P.PENDING_ACCEPTANCE), "decision": Decision.PENDING},
        P.ACCEPTED,
        Reason.ACCEPTED,
        DataPathAction.ENSURE,
    ),
    Case(
        "R11-turning-approval-on-keeps-accepted-connections",
        {"service": service_view(spec=APPROVAL), "status": status(P.ACCEPTED), "decision": Decision.PENDING},
        P.ACCEPTED,
        Reason.ACCEPTED,
        DataPathAction.ENSURE,
    ),
    Case(
        "R11-rejected-then-accepted-again",
        {"service": service_view(spec=APPROVAL), "status": status(P.REJECTED), "decision": Decision.ACCEPT},
        P.ACCEPTED,
        Reason.ACCEPTED,
        DataPathAction.ENSURE,
    ),
    Case(
        "R11-accepted-goes-through-creating-until-gateways-serve-it",
        {"data_path": DataPathFacts(ready_gateways=2, node_ip="10.96.0.10", route_applied=False)},
        P.CREATING,
        Reason.ROUTE_PENDING,
        DataPathAction.ENSURE,
        ("2 ready gateway",),
    ),
    # R12, R13: permission.
    Case(
        "R12-own-account-needs-no-whitelist",
        {"account": PROVIDER, "whitelists": ()},
        P.ACCEPTED,
        Reason.ACCEPTED,
        DataPathAction.ENSURE,
    ),
    Case(
        "R12-empty-whitelist-permits-no-other-account",
        {"whitelists": (whitelist(),)},
        P.FAILED,
        Reason.NOT_PERMITTED,
        DataPathAction.REMOVE,
        (f"iam:domain::{CONSUMER}", "Whitelist"),
    ),
    Case(
        "R12-wildcard", {"whitelists": (whitelist("*"),)}, P.ACCEPTED, Reason.ACCEPTED, DataPathAction.ENSURE
    ),
    Case(
        "R12-several-whitelists-add-up",
        {
            "whitelists": (
                whitelist("iam:domain::other", name="a"),
                whitelist(f"iam:domain::{CONSUMER}", name="b"),
            )
        },
        P.ACCEPTED,
        Reason.ACCEPTED,
        DataPathAction.ENSURE,
    ),
    Case(
        "R12-malformed-entry-permits-nobody",
        {"whitelists": (whitelist(CONSUMER),)},
        P.FAILED,
        Reason.NOT_PERMITTED,
        DataPathAction.REMOVE,
    ),
    Case(
        "R13-not-permitted-recovers-when-added",
        {"status": status(P.FAILED, reason="NotPermitted", serviceName=SERVICE_NAME)},
        P.ACCEPTED,
        Reason.ACCEPTED,
        DataPathAction.ENSURE,
    ),
    Case(
        "R13-not-permitted-does-not-reach-the-provider",
        {"whitelists": ()},
        P.FAILED,
        Reason.NOT_PERMITTED,
        DataPathAction.REMOVE,
    ),
    # R14 choice: existing endpoints keep working; pending ones and new ones stop.
    Case(
        "R14-removed-account-keeps-accepted-endpoint",
        {"whitelists": (), "status": status(P.ACCEPTED)},
        P.ACCEPTED,
        Reason.ACCEPTED,
        DataPathAction.ENSURE,
    ),
    Case(
        "R14-removed-account-pending-endpoint-fails",
        {"whitelists": (), "service": service_view(spec=APPROVAL), "status": status(P.PENDING_ACCEPTANCE)},
        P.FAILED,
        Reason.NOT_PERMITTED,
        DataPathAction.REMOVE,
    ),
    # R15, R40: lookup.
    Case(
        "R15-unknown-name",
        {
            "service": None,
            "spec": EndpointSpec(serviceName=f"{REGION}.nope.{'0' * 8}-0000-0000-0000-{'0' * 12}"),
        },
        P.FAILED,
        Reason.SERVICE_NOT_FOUND,
        DataPathAction.REMOVE,
        ("not found: check the name and the region",),
    ),
    Case(
        "R40-other-region-is-not-found",
        {"service": None, "spec": EndpointSpec(serviceName=SERVICE_NAME.replace(REGION, "eu-west-0", 1))},
        P.FAILED,
        Reason.SERVICE_NOT_FOUND,
        DataPathAction.REMOVE,
        ("not found: check the name and the region", "eu-west-0", "cross-region"),
    ),
    Case(
        "R15-garbled-name",
        {"service": None, "spec": EndpointSpec(serviceName="web")},
        P.FAILED,
        Reason.SERVICE_NOT_FOUND,
        DataPathAction.REMOVE,
        ("<region>.<name>.<serviceId>",),
    ),
    Case(
        "R15-unknown-cloud-service",
        {"service": None, "spec": EndpointSpec(cloudService="ntp")},
        P.FAILED,
        Reason.SERVICE_NOT_FOUND,
        DataPathAction.REMOVE,
        ("'ntp'",),
    ),
    Case(
        "R15-both-targets-is-invalid",
        {"spec": EndpointSpec(serviceName=SERVICE_NAME, cloudService="dns")},
        P.FAILED,
        Reason.INVALID_SPEC,
        DataPathAction.REMOVE,
        ("exactly one",),
    ),
    Case(
        "R34-bad-cidr-is-invalid",
        {
            "spec": EndpointSpec(
                serviceName=SERVICE_NAME, accessControl=AccessControl(sourceCIDRs=["10.0.0.300/8"])
            )
        },
        P.FAILED,
        Reason.INVALID_SPEC,
        DataPathAction.REMOVE,
        ("sourceCIDRs", "10.0.0.300/8"),
    ),
    # R37: cloud services are open to every account.
    Case(
        "R37-cloud-service-permits-everyone",
        {"spec": EndpointSpec(cloudService="dns"), "whitelists": (), "service": service_view(system=True)},
        P.ACCEPTED,
        Reason.ACCEPTED,
        DataPathAction.ENSURE,
    ),
    # R38: Gateway-type endpoints get no node IP; accepted when the egress policy is in place.
    Case(
        "R38-gateway-type-waits-for-egress",
        {
            "service": service_view(system=True, service_type=ServiceType.GATEWAY),
            "data_path": DataPathFacts(),
        },
        P.CREATING,
        Reason.CREATING,
        DataPathAction.ENSURE,
    ),
    Case(
        "R38-gateway-type-accepted-without-node-ip",
        {
            "service": service_view(system=True, service_type=ServiceType.GATEWAY),
            "data_path": DataPathFacts(egress_ready=True),
        },
        P.ACCEPTED,
        Reason.ACCEPTED,
        DataPathAction.ENSURE,
    ),
    # R30/R39: a gateway-wide error (HAProxy refused the whole configuration) is named while the route waits.
    Case(
        "R30-gateway-wide-error-is-named-while-the-route-waits",
        {
            "data_path": LIVE_PATH.model_copy(
                update={
                    "route_applied": False,
                    "gateway_error": "gateway gw-1: gateway configuration is invalid: bad nbthread",
                }
            )
        },
        P.CREATING,
        Reason.ROUTE_PENDING,
        DataPathAction.ENSURE,
        ("gateway gw-1: gateway configuration is invalid", "nbthread", "logs"),
    ),
    # R7: the service goes away.
    Case(
        "R7-pending-endpoint-fails-when-service-is-deleted",
        {"service": service_view(spec=APPROVAL, deleting=True), "status": status(P.PENDING_ACCEPTANCE)},
        P.FAILED,
        Reason.SERVICE_DELETED,
        DataPathAction.REMOVE,
    ),
    Case(
        "R7-rejected-endpoint-fails-when-service-is-deleted",
        {"service": service_view(deleting=True), "status": status(P.REJECTED), "decision": Decision.REJECT},
        P.FAILED,
        Reason.SERVICE_DELETED,
        DataPathAction.REMOVE,
    ),
    Case(
        "R7-accepted-endpoint-holds-the-service",
        {"service": service_view(deleting=True), "status": status(P.ACCEPTED)},
        P.ACCEPTED,
        Reason.ACCEPTED,
        DataPathAction.ENSURE,
    ),
    # R7 as the service really looks while its finalizer holds it: phase Deleting, reason HasActiveEndpoints.
    # The service is held precisely so that this endpoint keeps working: it stays Accepted, and says why.
    Case(
        "R7-accepted-endpoint-stays-accepted-while-it-holds-the-deleting-service",
        {"service": HELD_SERVICE, "status": status(P.ACCEPTED)},
        P.ACCEPTED,
        Reason.ACCEPTED,
        DataPathAction.ENSURE,
        ("10.96.0.10", "provider is deleting", "until this Endpoint is deleted"),
    ),
    Case(
        "R7-creating-endpoint-keeps-going-while-it-holds-the-deleting-service",
        {"service": HELD_SERVICE, "status": status(P.CREATING), "data_path": DataPathFacts(ready_gateways=2)},
        P.CREATING,
        Reason.NODE_IP_PENDING,
        DataPathAction.ENSURE,
    ),
    Case(
        "R7-pending-endpoint-fails-when-the-held-service-is-deleting",
        {"service": HELD_SERVICE, "status": status(P.PENDING_ACCEPTANCE)},
        P.FAILED,
        Reason.SERVICE_DELETED,
        DataPathAction.REMOVE,
    ),
    Case(
        "R7-service-gone-after-resolution-is-service-deleted",
        {"service": None, "status": status(P.PENDING_ACCEPTANCE, serviceName=SERVICE_NAME)},
        P.FAILED,
        Reason.SERVICE_DELETED,
        DataPathAction.REMOVE,
    ),
    # R1 seen from the consumer: the service is not Available.
    # R52: a deleted backend stops its routes at once (node IP and ports are kept for its return).
    Case(
        "R1-R52-service-backend-missing-waits-without-a-route",
        {"service": service_view(phase=ServicePhase.FAILED, reason="BackendNotFound")},
        P.CREATING,
        Reason.SERVICE_NOT_AVAILABLE,
        DataPathAction.WITHDRAW,
        ("BackendNotFound",),
    ),
    Case(
        "R9-service-over-quota-keeps-waiting",
        {"service": service_view(phase=ServicePhase.FAILED, reason="QuotaExceeded")},
        P.CREATING,
        Reason.SERVICE_NOT_AVAILABLE,
        DataPathAction.KEEP,
        ("QuotaExceeded",),
    ),
    # R22: quota.
    Case(
        "R22-over-quota-fails",
        {"quota": QuotaStanding(rank=50, limit=50)},
        P.FAILED,
        Reason.QUOTA_EXCEEDED,
        DataPathAction.REMOVE,
        ("50", "quota"),
    ),
    Case(
        "R22-last-place-within-quota",
        {"quota": QuotaStanding(rank=49, limit=50)},
        P.ACCEPTED,
        Reason.ACCEPTED,
        DataPathAction.ENSURE,
    ),
    # R30: gateways.
    Case(
        "R30-no-ready-gateway",
        {"data_path": DataPathFacts(node_ip="10.96.0.10")},
        P.CREATING,
        Reason.GATEWAY_NOT_READY,
        DataPathAction.ENSURE,
        ("vpcep-gateway",),
    ),
    Case(
        "R18-node-ip-pending",
        {"data_path": DataPathFacts(ready_gateways=1, route_applied=True)},
        P.CREATING,
        Reason.NODE_IP_PENDING,
        DataPathAction.ENSURE,
    ),
    Case(
        "R30-route-rejected-by-a-gateway",
        {"data_path": LIVE_PATH.model_copy(update={"route_rejected": "cannot bind 20000"})},
        P.CREATING,
        Reason.ROUTE_REJECTED,
        DataPathAction.ENSURE,
        ("cannot bind 20000",),
    ),
    # R42: not Accepted before the namespace's gateway ingress policy admits every gateway port.
    Case(
        "R42-waits-for-the-ingress-policy",
        {"data_path": LIVE_PATH.model_copy(update={"admitted_ports": frozenset(), "ingress_policy": "gw/p"})},
        P.CREATING,
        Reason.INGRESS_POLICY_PENDING,
        DataPathAction.ENSURE,
        ("gw/p", "20000"),
    ),
    Case(
        "R42-a-policy-with-other-ports-does-not-count",
        {"data_path": LIVE_PATH.model_copy(update={"admitted_ports": frozenset({20001, 20002})})},
        P.CREATING,
        Reason.INGRESS_POLICY_PENDING,
        DataPathAction.ENSURE,
        ("20000",),
    ),
    Case(
        "R42-isolation-switched-off-does-not-wait",
        {
            "data_path": LIVE_PATH.model_copy(
                update={"admitted_ports": frozenset(), "ingress_isolation": False}
            )
        },
        P.ACCEPTED,
        Reason.ACCEPTED,
        DataPathAction.ENSURE,
    ),
    Case(
        "R30-gateway-ports-exhausted",
        {
            "allocation": AllocationFacts(
                port_range=PortRange(first=20000, last=20001), taken_gateway_ports=frozenset({20000})
            )
        },
        P.FAILED,
        Reason.PORTS_EXHAUSTED,
        DataPathAction.REMOVE,
        ("20000-20001", "443", "gateway.ports"),
    ),
    # R17/R23: deleting.
    Case(
        "R23-deleting-tears-down",
        {"deleting": True, "status": status(P.ACCEPTED)},
        P.DELETING,
        Reason.DELETING,
        DataPathAction.REMOVE,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decide_endpoint(case: Case) -> None:
    decision = decide_endpoint(endpoint_facts(**case.facts))
    assert (decision.phase, decision.reason, decision.data_path) == (case.phase, case.reason, case.data_path)
    assert decision.message.startswith("Endpoint cons/e1: "), "every message names the object"
    for text in case.in_message:
        assert text in decision.message
    ready = next(c for c in decision.conditions if c.type == "Ready")
    assert ready.status is (case.phase is P.ACCEPTED)
    assert ready.reason == case.reason


def test_r18_accepted_endpoint_has_node_ip_dns_name_and_a_gateway_port_per_mapping() -> None:
    decision = decide_endpoint(endpoint_facts())
    assert (decision.node_ip, decision.dns_name) == ("10.96.0.10", "e1.cons.svc")
    assert [p.clientPort for p in decision.gateway_ports] == [80, 443]
    assert len({p.gatewayPort for p in decision.gateway_ports}) == 2
    assert decision.marker_id == 1
    assert decision.service_name == SERVICE_NAME
    assert decision.keep_connection


def test_gateway_ports_and_marker_are_stable_across_reconciles() -> None:
    first = decide_endpoint(
        endpoint_facts(allocation=AllocationFacts(taken_gateway_ports=frozenset({20000})))
    )
    previous = endpoint_status(first, previous=None, now="2026-01-01T00:00:00Z", generation=1)
    # Another endpoint freed 20000 meanwhile: this one must not move.
    again = decide_endpoint(endpoint_facts(status=previous, allocation=AllocationFacts(marker_high_water=7)))
    assert again.gateway_ports == first.gateway_ports
    assert again.marker_id == first.marker_id


def test_r33_marker_handed_out_in_an_earlier_pass_is_kept_before_the_status_shows_it() -> None:
    """The operator decides again (up to 3 passes) before it writes the status; the id the first pass took
    already raised the high-water mark. Taking the next one would start a service's ids at 3 and skip."""
    first = decide_endpoint(endpoint_facts())
    assert first.marker_id == 1
    again = decide_endpoint(endpoint_facts(allocation=AllocationFacts(held_marker_id=1, marker_high_water=1)))
    assert again.marker_id == 1
    clashing = decide_endpoint(
        endpoint_facts(
            allocation=AllocationFacts(held_marker_id=1, taken_marker_ids=frozenset({1}), marker_high_water=1)
        )
    )
    assert clashing.marker_id == 2, "a held id another endpoint also holds is replaced by a fresh one"


def test_r11_rejected_endpoint_frees_its_gateway_ports() -> None:
    accepted = decide_endpoint(endpoint_facts())
    previous = endpoint_status(accepted, previous=None, now="t0", generation=1)
    rejected = decide_endpoint(endpoint_facts(status=previous, decision=Decision.REJECT))
    assert rejected.gateway_ports == ()
    assert rejected.node_ip is None
    assert rejected.keep_connection, "the provider still sees the connection and may accept it again"


def test_keep_leaves_the_existing_data_path_alone() -> None:
    accepted = decide_endpoint(endpoint_facts())
    previous = endpoint_status(accepted, previous=None, now="t0", generation=1)
    waiting = decide_endpoint(
        endpoint_facts(
            status=previous, service=service_view(phase=ServicePhase.FAILED, reason="QuotaExceeded")
        )
    )
    assert waiting.data_path is DataPathAction.KEEP
    assert (waiting.gateway_ports, waiting.node_ip) == (accepted.gateway_ports, accepted.node_ip)


@pytest.mark.parametrize(
    ("facts", "effective", "decided_by"),
    [
        ({}, Decision.ACCEPT, DecidedBy.APPROVAL_NOT_REQUIRED),
        ({"status": status(P.ACCEPTED)}, Decision.ACCEPT, DecidedBy.APPROVAL_NOT_REQUIRED),
        (
            {"service": service_view(spec=service_spec(approvalRequired=True, autoAcceptAccounts=["*"]))},
            Decision.ACCEPT,
            DecidedBy.AUTO_ACCEPT_ACCOUNTS,
        ),
        (
            {"service": service_view(spec=APPROVAL), "decision": Decision.ACCEPT},
            Decision.ACCEPT,
            DecidedBy.PROVIDER,
        ),
        ({"service": service_view(spec=APPROVAL)}, Decision.PENDING, None),
        ({"decision": Decision.REJECT}, Decision.REJECT, DecidedBy.PROVIDER),
    ],
)
def test_r10_connection_status_shows_the_effective_decision(
    facts: dict[str, Any], effective: Decision, decided_by: DecidedBy | None
) -> None:
    decision = decide_endpoint(endpoint_facts(**facts))
    endpoint = endpoint_status(decision, previous=None, now="t0", generation=1)
    conn = connection_status(decision, endpoint, owner_account=CONSUMER)
    assert (conn.decision, conn.decidedBy) == (effective, decided_by)
    assert conn.state is decision.phase


def test_r32_unreachable_backend_is_a_condition_not_a_phase() -> None:
    facts = endpoint_facts(
        data_path=LIVE_PATH.model_copy(update={"backend_unreachable": "connection refused"})
    )
    decision = decide_endpoint(facts)
    assert decision.phase is P.ACCEPTED
    reachable = next(c for c in decision.conditions if c.type == "BackendReachable")
    assert (reachable.status, reachable.reason, reachable.message) == (
        False,
        Reason.BACKEND_UNREACHABLE,
        "connection refused",
    )


def test_marker_id_is_not_one_another_endpoint_of_the_service_holds() -> None:
    previous = status(P.ACCEPTED, markerId=3)
    decision = decide_endpoint(
        endpoint_facts(
            status=previous, allocation=AllocationFacts(taken_marker_ids=frozenset({3}), marker_high_water=5)
        )
    )
    assert decision.marker_id == 6


def test_existing_gateway_ports_survive_a_port_taken_check() -> None:
    held = status(P.ACCEPTED, gatewayPorts=[GatewayPort(clientPort=80, gatewayPort=20005)])
    decision = decide_endpoint(endpoint_facts(status=held))
    assert GatewayPort(clientPort=80, gatewayPort=20005) in decision.gateway_ports


def test_status_keeps_transition_times_when_nothing_changes() -> None:
    decision = decide_endpoint(endpoint_facts())
    first = endpoint_status(decision, previous=None, now="2026-01-01T00:00:00Z", generation=1)
    second = endpoint_status(decision, previous=first, now="2026-01-01T00:05:00Z", generation=1)
    assert second == first, "a reconcile that changes nothing writes nothing new"
    assert first.createdAt == "2026-01-01T00:00:00Z"
    assert first.observedGeneration == 1


def test_connection_status_mirrors_the_endpoint_for_the_provider() -> None:
    decision = decide_endpoint(endpoint_facts(service=service_view(spec=APPROVAL)))
    endpoint = endpoint_status(decision, previous=None, now="t0", generation=1)
    conn = connection_status(decision, endpoint, owner_account=CONSUMER)
    assert conn.state is P.PENDING_ACCEPTANCE
    assert conn.ownerAccount == CONSUMER
    assert conn.endpointId == decision.endpoint_id
    assert conn.markerId == decision.marker_id
    assert conn.endpointService == "web"
    assert conn.createdAt == endpoint.createdAt


@pytest.mark.parametrize(
    "facts",
    [
        {},
        {"service": service_view(spec=APPROVAL)},
        {"decision": Decision.REJECT},
        {"data_path": DataPathFacts()},
    ],
    ids=["accepted", "pending", "rejected", "creating"],
)
def test_the_provider_never_sees_the_consumers_namespace_or_endpoint_name(facts: dict[str, Any]) -> None:
    """The connection lives in the provider's namespace; the cloud console shows the provider ids, not the
    consumer's resource names. The endpoint's own messages (its Ready condition's too) name "cons/e1"."""
    decision = decide_endpoint(endpoint_facts(**facts))
    endpoint = endpoint_status(decision, previous=None, now="t0", generation=1)
    assert "cons/e1" in (endpoint.message or "")
    conn = connection_status(decision, endpoint, owner_account=CONSUMER)
    written = conn.model_dump_json()
    assert "cons/e1" not in written and "cons" not in (conn.message or "")
    assert [c.type for c in conn.conditions] == ["Ready"]
    assert conn.conditions[0].status == ("True" if decision.phase is P.ACCEPTED else "False")


def test_endpoint_id_is_the_uid_and_stays_what_status_recorded() -> None:
    assert decide_endpoint(endpoint_facts()).endpoint_id == "11111111-2222-3333-4444-555555555555"
    recorded = status(P.ACCEPTED, endpointId="recorded-id")
    assert decide_endpoint(endpoint_facts(status=recorded)).endpoint_id == "recorded-id"


def test_deleting_may_finalize() -> None:
    decision = decide_endpoint(endpoint_facts(deleting=True))
    assert decision.may_finalize and not decision.keep_connection
