"""Endpoint decisions: phases (R17), lookup (R15, R40), permission (R12-R14), approval (R10, R10a, R11),
quota (R22), service deletion (R7), data path readiness (R18, R30, R32), Gateway-type services (R38).

`decide_endpoint(EndpointFacts) -> EndpointDecision` is the reconcile policy; `check_endpoint_admission`
is the webhook policy. Order of checks: deleting, spec, target, quota, permission, acceptance, data path.
"Established" endpoints (status.phase Creating or Accepted) were permitted and accepted before; they keep
going when their account leaves the whitelists (R14 choice) and when approval is switched on.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from vpcep.api.endpoint import EndpointPhase, EndpointSpec, EndpointStatus, GatewayPort
from vpcep.api.endpoint_connection import DecidedBy, Decision, EndpointConnectionStatus
from vpcep.api.endpoint_service import ServicePhase, ServiceType
from vpcep.domain.allocation import PortRange, allocate_gateway_ports, allocate_marker_id
from vpcep.domain.approval import AcceptanceState, decide_acceptance
from vpcep.domain.conditions import ConditionSpec, ConditionType, common_status_fields, condition
from vpcep.domain.facts import Frozen, ObjectRef, Refusal, ServiceView, WhitelistView
from vpcep.domain.lookup import requested_target
from vpcep.domain.naming import service_not_found_message
from vpcep.domain.permission import check_permission
from vpcep.domain.quota import QuotaStanding, check_quota_admission, quota_exceeded_message
from vpcep.domain.reasons import Reason
from vpcep.domain.redaction import without_addresses
from vpcep.domain.service import Operation
from vpcep.domain.validation import endpoint_spec_problems

ESTABLISHED_PHASES = frozenset({EndpointPhase.CREATING, EndpointPhase.ACCEPTED})


class DataPathAction(StrEnum):
    ENSURE = (
        "Ensure"  # allocate/keep ports, consumer Service + EndpointSlice (or egress policy), route ConfigMap
    )
    KEEP = "Keep"  # leave whatever exists untouched (waiting on something outside the endpoint)
    REMOVE = "Remove"  # tear down consumer Service, EndpointSlice, egress policy and route
    # Keep node IP, DNS name and ports, remove the route: the backend is gone or is not the provider's own
    # (R45, R52), so no gateway may dial its old address, which may already be someone else's.
    WITHDRAW = "Withdraw"


# A service Failed for one of these has no backend the gateways may dial.
BACKEND_GONE_REASONS = frozenset(
    {
        Reason.BACKEND_NOT_FOUND,
        Reason.BACKEND_EXTERNAL_NAME,
        Reason.BACKEND_WITHOUT_SELECTOR,
        Reason.BACKEND_POD_NOT_RUNNING,
        Reason.BACKEND_HOST_NETWORK,
    }
)


class AllocationFacts(Frozen):
    """What other endpoints hold, so this one's marker id and gateway ports never collide."""

    held_marker_id: int | None = Field(
        default=None,
        description="The marker id already handed to this endpoint, also when its status does not show it "
        "yet (decided in an earlier pass whose status write is still to come): kept, not replaced.",
    )
    taken_marker_ids: frozenset[int] = Field(
        default=frozenset(), description="Marker ids of the target service's other endpoints."
    )
    marker_high_water: int = Field(default=0, description="The target service's status.lastMarkerId.")
    taken_gateway_ports: frozenset[int] = Field(
        default=frozenset(), description="Gateway ports held by all other endpoints."
    )
    free_gateway_ports: tuple[int, ...] | None = Field(
        default=None,
        description="The lowest ports of the range no other endpoint holds (the ledger's answer); None: scan "
        "the range past taken_gateway_ports.",
    )
    port_range: PortRange = PortRange()


class DataPathFacts(Frozen):
    """The observed data path of this endpoint."""

    ready_gateways: int = Field(default=0, description="Gateways with a fresh heartbeat.")
    route_applied: bool = Field(
        default=False,
        description="Every ready gateway's appliedResourceVersion covers this route's ConfigMap.",
    )
    route_rejected: str | None = Field(default=None, description="A gateway's reason for refusing the route.")
    gateway_error: str | None = Field(
        default=None,
        description="A gateway-wide error of a ready gateway that has not applied the route yet "
        "('gateway <name>: <error>').",
    )
    node_ip: str | None = Field(default=None, description="ClusterIP of the consumer-namespace Service.")
    dns_name: str | None = None
    egress_ready: bool = Field(
        default=False, description="Gateway-type: the egress NetworkPolicy exists (R38)."
    )
    backend_unreachable: str | None = Field(
        default=None, description="A gateway reports the backend unreachable, and why (R32)."
    )
    ingress_isolation: bool = Field(
        default=True,
        description="Gateway ingress NetworkPolicies are on (R42): no endpoint is Accepted before the policy "
        "of its namespace admits it on all its gateway ports.",
    )
    admitted_ports: frozenset[int] = Field(
        default=frozenset(),
        description="Gateway ports the consumer namespace's gateway ingress policy admits, as stored (R42).",
    )
    ingress_policy: str = Field(
        default="", description="Namespace/name of that policy, for the waiting message."
    )


class EndpointFacts(Frozen):
    namespace: str
    name: str
    uid: str
    generation: int | None = None
    account: str
    region: str
    spec: EndpointSpec
    status: EndpointStatus | None = None
    deleting: bool = False
    service: ServiceView | None = Field(
        default=None, description="Result of lookup_service (None: not found)."
    )
    whitelists: tuple[WhitelistView, ...] = Field(default=(), description="Whitelists of the target service.")
    decision: Decision | None = Field(default=None, description="Its EndpointConnection's spec.decision.")
    quota: QuotaStanding
    allocation: AllocationFacts = AllocationFacts()
    data_path: DataPathFacts = DataPathFacts()

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(namespace=self.namespace, name=self.name)

    @property
    def established(self) -> bool:
        return self.status is not None and self.status.phase in ESTABLISHED_PHASES


class EndpointDecision(Frozen):
    phase: EndpointPhase
    reason: Reason
    message: str
    endpoint_id: str
    service_name: str | None = Field(default=None, description="Resolved target's published name.")
    service_type: ServiceType | None = None
    service: ObjectRef | None = Field(default=None, description="The resolved EndpointService.")
    marker_id: int | None = None
    gateway_ports: tuple[GatewayPort, ...] = ()
    node_ip: str | None = None
    dns_name: str | None = None
    conditions: tuple[ConditionSpec, ...] = ()
    data_path: DataPathAction
    keep_connection: bool = Field(
        description="An EndpointConnection should exist in the service's namespace (else delete it)."
    )
    may_finalize: bool = Field(default=False, description="Deleting: remove the finalizer once torn down.")
    connection_decision: Decision | None = Field(
        default=None,
        description="The effective decision for the EndpointConnection's status (None: not reached).",
    )
    decided_by: DecidedBy | None = Field(default=None, description="Who made connection_decision.")

    @property
    def ready(self) -> bool:
        return self.phase is EndpointPhase.ACCEPTED


def _ready(phase: EndpointPhase, reason: Reason, message: str) -> ConditionSpec:
    return condition(ConditionType.READY, phase is EndpointPhase.ACCEPTED, reason, message)


def decide_endpoint(facts: EndpointFacts) -> EndpointDecision:
    label = f"Endpoint {facts.ref}"
    previous = facts.status
    current_marker = (previous.markerId if previous else None) or facts.allocation.held_marker_id
    base: dict[str, object] = {
        "endpoint_id": (previous.endpointId if previous and previous.endpointId else facts.uid),
        "marker_id": current_marker,
    }

    def finish(
        phase: EndpointPhase,
        reason: Reason,
        message: str,
        data_path: DataPathAction,
        *extra: ConditionSpec,
        **fields: object,
    ) -> EndpointDecision:
        values = {**base, **fields}
        if data_path in (DataPathAction.KEEP, DataPathAction.WITHDRAW) and previous is not None:
            values.setdefault("gateway_ports", tuple(previous.gatewayPorts))
            values.setdefault("node_ip", previous.nodeIP)
            values.setdefault("dns_name", previous.dnsName)
        full = message if message.startswith(label) else f"{label}: {message}"
        return EndpointDecision.model_validate(
            {
                "phase": phase,
                "reason": reason,
                "message": full,
                "data_path": data_path,
                "keep_connection": phase
                in (
                    EndpointPhase.PENDING_ACCEPTANCE,
                    EndpointPhase.CREATING,
                    EndpointPhase.ACCEPTED,
                    EndpointPhase.REJECTED,
                ),
                "conditions": (_ready(phase, reason, full), *extra),
                **values,
            }
        )

    if facts.deleting:
        return finish(
            EndpointPhase.DELETING, Reason.DELETING, "being deleted", DataPathAction.REMOVE, may_finalize=True
        )

    problems = endpoint_spec_problems(facts.spec)
    if problems:
        return finish(EndpointPhase.FAILED, Reason.INVALID_SPEC, problems[0].message, DataPathAction.REMOVE)

    service = facts.service
    if service is None:
        was_resolved = previous is not None and previous.serviceName is not None
        if was_resolved and facts.spec.serviceName in (None, previous.serviceName if previous else None):
            return finish(
                EndpointPhase.FAILED,
                Reason.SERVICE_DELETED,
                f"its {requested_target(facts.spec)} was deleted; delete this Endpoint, or re-create it "
                "against another service",
                DataPathAction.REMOVE,
            )
        if facts.spec.serviceName is not None:
            message = service_not_found_message(facts.spec.serviceName, facts.region)
        else:
            message = (
                f"{requested_target(facts.spec)} not found: check the name and the region; "
                "`kubectl get vpces -A -l vpcep.io/system=true` lists the cloud services"
            )
        return finish(EndpointPhase.FAILED, Reason.SERVICE_NOT_FOUND, message, DataPathAction.REMOVE)

    resolved: dict[str, object] = {
        "service_name": service.service_name,
        "service_type": service.service_type,
        "service": service.ref,
        "marker_id": allocate_marker_id(
            current_marker,
            facts.allocation.taken_marker_ids,
            facts.allocation.marker_high_water,
        ),
    }
    service_label = f"EndpointService {service.service_name or service.ref}"

    if service.deleting and not facts.established:
        return finish(
            EndpointPhase.FAILED,
            Reason.SERVICE_DELETED,
            f"{service_label} is being deleted; delete this Endpoint",
            DataPathAction.REMOVE,
            **resolved,
        )

    if not facts.quota.within:
        message = quota_exceeded_message("Endpoint", facts.account, facts.quota.rank, facts.quota.limit)
        return finish(
            EndpointPhase.FAILED,
            Reason.QUOTA_EXCEEDED,
            message,
            DataPathAction.REMOVE,
            condition(ConditionType.WITHIN_QUOTA, False, Reason.QUOTA_EXCEEDED, message),
            **resolved,
        )

    permission = check_permission(
        facts.account, service.account, service_label, facts.whitelists, system=service.system
    )
    if not permission.permitted and not facts.established:
        return finish(
            EndpointPhase.FAILED,
            Reason.NOT_PERMITTED,
            permission.message,
            DataPathAction.REMOVE,
            condition(ConditionType.PERMITTED, False, Reason.NOT_PERMITTED, permission.message),
            **resolved,
        )
    permitted = condition(
        ConditionType.PERMITTED,
        True,
        Reason.PERMITTED,
        permission.message if permission.permitted else "established before the account left the whitelists",
    )

    acceptance = decide_acceptance(
        service.spec, facts.account, facts.decision, already_accepted=facts.established
    )
    resolved["connection_decision"] = acceptance.decision
    resolved["decided_by"] = acceptance.decided_by
    accepted_condition = condition(
        ConditionType.ACCEPTED,
        acceptance.state is AcceptanceState.ACCEPTED,
        acceptance.reason,
        acceptance.message,
    )
    if acceptance.state is AcceptanceState.REJECTED:
        return finish(
            EndpointPhase.REJECTED,
            Reason.REJECTED,
            acceptance.message,
            DataPathAction.REMOVE,
            permitted,
            accepted_condition,
            **resolved,
        )
    if acceptance.state is AcceptanceState.PENDING:
        return finish(
            EndpointPhase.PENDING_ACCEPTANCE,
            Reason.PENDING_ACCEPTANCE,
            acceptance.message,
            DataPathAction.REMOVE,
            permitted,
            accepted_condition,
            **resolved,
        )

    # R7: a deleting service whose finalizer is held by established endpoints is held precisely so that they
    # keep working: for them it still serves (its phase says Deleting, not that it stopped working).
    held_for_us = service.deleting and facts.established
    held_note = (
        f"; the provider is deleting {service_label}: it is kept, and this endpoint keeps working, "
        "until this Endpoint is deleted"
        if held_for_us
        else ""
    )
    if service.phase is not ServicePhase.AVAILABLE and not held_for_us:
        message = (
            f"{service_label} is {service.phase or 'not yet reconciled'}"
            + (f" ({service.reason})" if service.reason else "")
            + "; the endpoint is set up when the service is Available: ask the provider to check "
            "`kubectl describe vpces` for it"
        )
        backend_gone = service.phase is ServicePhase.FAILED and service.reason in BACKEND_GONE_REASONS
        return finish(
            EndpointPhase.CREATING,
            Reason.SERVICE_NOT_AVAILABLE,
            message,
            DataPathAction.WITHDRAW if backend_gone else DataPathAction.KEEP,
            permitted,
            accepted_condition,
            **resolved,
        )

    path = facts.data_path
    reachability = (
        condition(
            # R46: the gateway's text names the backend's address; the consumer learns only that it is down.
            ConditionType.BACKEND_REACHABLE,
            False,
            Reason.BACKEND_UNREACHABLE,
            without_addresses(path.backend_unreachable),
        )
        if path.backend_unreachable
        else condition(
            ConditionType.BACKEND_REACHABLE,
            None if path.ready_gateways == 0 else True,
            Reason.BACKEND_REACHABLE,
            "",
        )
    )
    conditions = (permitted, accepted_condition)

    if service.service_type is ServiceType.GATEWAY:  # R38: no node IP, an egress policy instead
        if not path.egress_ready:
            return finish(
                EndpointPhase.CREATING,
                Reason.CREATING,
                "opening egress from this namespace to the gateway service",
                DataPathAction.ENSURE,
                *conditions,
                **resolved,
            )
        return finish(
            EndpointPhase.ACCEPTED,
            Reason.ACCEPTED,
            f"connected to {service_label}{held_note}",
            DataPathAction.ENSURE,
            *conditions,
            **resolved,
        )

    allocation = allocate_gateway_ports(
        [p.clientPort for p in service.spec.ports],
        previous.gatewayPorts if previous else (),
        facts.allocation.taken_gateway_ports,
        facts.allocation.port_range,
        facts.allocation.free_gateway_ports,
    )
    if not allocation.complete:
        port_range = facts.allocation.port_range
        message = (
            f"no free gateway port in {port_range.first}-{port_range.last} for clientPort(s) "
            f"{', '.join(map(str, allocation.unallocated))}: the cluster operator must widen the Helm value "
            "gateway.portRange; this recovers by itself when ports are freed"
        )
        return finish(
            EndpointPhase.FAILED,
            Reason.PORTS_EXHAUSTED,
            message,
            DataPathAction.REMOVE,
            *conditions,
            **resolved,
        )

    data: dict[str, object] = {
        **resolved,
        "gateway_ports": allocation.ports,
        "node_ip": path.node_ip,
        "dns_name": path.dns_name,
    }
    if path.ready_gateways == 0:
        return finish(
            EndpointPhase.CREATING,
            Reason.GATEWAY_NOT_READY,
            "no gateway is ready (no fresh heartbeat); check the vpcep-gateway pods in the "
            "operator's namespace",
            DataPathAction.ENSURE,
            *conditions,
            reachability,
            **data,
        )
    if path.route_rejected:
        return finish(
            EndpointPhase.CREATING,
            Reason.ROUTE_REJECTED,
            f"a gateway refused this endpoint's route: {path.route_rejected}; the cluster operator "
            "should check the gateway logs",
            DataPathAction.ENSURE,
            *conditions,
            reachability,
            **data,
        )
    if path.node_ip is None:
        return finish(
            EndpointPhase.CREATING,
            Reason.NODE_IP_PENDING,
            "waiting for the node IP (ClusterIP of the endpoint's Service)",
            DataPathAction.ENSURE,
            *conditions,
            reachability,
            **data,
        )
    if not path.route_applied:
        gateway_error = without_addresses(path.gateway_error) if path.gateway_error else None
        blocked = (
            f"; {gateway_error}: the cluster operator should check that gateway's logs"
            if gateway_error
            else ""
        )
        return finish(
            EndpointPhase.CREATING,
            Reason.ROUTE_PENDING,
            f"waiting for {path.ready_gateways} ready gateway(s) to apply the route{blocked}",
            DataPathAction.ENSURE,
            *conditions,
            reachability,
            **data,
        )
    not_admitted = sorted(
        {p.gatewayPort for p in allocation.ports} - path.admitted_ports if path.ingress_isolation else ()
    )
    if not_admitted:  # R42: only this namespace's pods may reach the ports before anyone is told to use them
        return finish(
            EndpointPhase.CREATING,
            Reason.INGRESS_POLICY_PENDING,
            f"waiting for the gateway ingress NetworkPolicy {path.ingress_policy or '(not written yet)'} to "
            f"admit this namespace on gateway port(s) {', '.join(map(str, not_admitted))}",
            DataPathAction.ENSURE,
            *conditions,
            reachability,
            **data,
        )
    return finish(
        EndpointPhase.ACCEPTED,
        Reason.ACCEPTED,
        f"connected to {service_label} at {path.node_ip} ({path.dns_name or 'no DNS name'}){held_note}",
        DataPathAction.ENSURE,
        *conditions,
        reachability,
        **data,
    )


def endpoint_status(
    decision: EndpointDecision,
    *,
    previous: EndpointStatus | None,
    now: str,
    generation: int | None,
) -> EndpointStatus:
    """The full status to write for a decision (conditions merged so unchanged ones keep their times)."""
    return EndpointStatus(
        **common_status_fields(
            previous, decision.conditions, decision.reason, decision.message, now=now, generation=generation
        ),
        phase=decision.phase,
        serviceName=decision.service_name,
        endpointId=decision.endpoint_id,
        markerId=decision.marker_id,
        nodeIP=decision.node_ip,
        dnsName=decision.dns_name,
        serviceType=decision.service_type,
        gatewayPorts=list(decision.gateway_ports),
    )


def provider_message(endpoint: EndpointStatus) -> str | None:
    """The provider must not learn the consumer's namespace or object names: a phase-level message only."""
    if endpoint.phase is EndpointPhase.PENDING_ACCEPTANCE:
        return "waiting for your decision: set spec.decision to Accept or Reject"
    if endpoint.phase is EndpointPhase.REJECTED:
        return "rejected by spec.decision"
    if endpoint.phase is EndpointPhase.ACCEPTED:
        return "connected"
    return f"{endpoint.phase}: {endpoint.reason}" if endpoint.phase else None


def connection_status(
    decision: EndpointDecision, endpoint: EndpointStatus, *, owner_account: str
) -> EndpointConnectionStatus:
    """What the provider sees in the endpoint's EndpointConnection (R10, R11): id, marker, owner, state, the
    effective decision. Every message, the Ready condition's too, is `provider_message`: the endpoint's own
    messages name the consumer's namespace and object.
    """
    message = provider_message(endpoint)
    ready = [
        c.model_copy(update={"message": message or "", "observedGeneration": None})
        for c in endpoint.conditions
        if c.type == ConditionType.READY
    ]
    return EndpointConnectionStatus(
        observedGeneration=None,
        conditions=ready,
        reason=endpoint.reason,
        message=message,
        createdAt=endpoint.createdAt,
        endpointId=decision.endpoint_id,
        markerId=decision.marker_id,
        ownerAccount=owner_account,
        endpointService=decision.service.name if decision.service else None,
        state=endpoint.phase,
        decision=decision.connection_decision,
        decidedBy=decision.decided_by,
    )


# ---- admission (webhook) ----------------------------------------------------------------------------------


class EndpointAdmission(Frozen):
    operation: Operation
    namespace: str
    name: str
    account: str
    region: str
    spec: EndpointSpec | None = None
    old_spec: EndpointSpec | None = None
    service: ServiceView | None = Field(default=None, description="lookup_service result for spec.")
    whitelists: tuple[WhitelistView, ...] = ()
    quota_used: int = Field(default=0, description="Live endpoints of the account, not counting this one.")
    quota_limit: int = 0

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(namespace=self.namespace, name=self.name)


def check_endpoint_admission(request: EndpointAdmission) -> Refusal | None:
    """Policy for CREATE/UPDATE of an Endpoint (R13, R15, R22, R34); DELETE is always allowed (R23)."""
    label = f"Endpoint {request.ref}"
    if request.operation is Operation.DELETE:
        return None
    spec = request.spec
    if spec is None:
        return Refusal(reason=Reason.INVALID_SPEC, message=f"{label}: spec is required", field="spec")
    problems = endpoint_spec_problems(spec)
    if problems:
        first = problems[0]
        return Refusal(reason=first.reason, message=f"{label}: {first.message}", field=first.field)
    if request.operation is Operation.UPDATE:
        old = request.old_spec
        if old is not None and (old.serviceName, old.cloudService) != (spec.serviceName, spec.cloudService):
            return Refusal(
                reason=Reason.TARGET_IMMUTABLE,
                message=f"{label}: spec.serviceName and spec.cloudService cannot change (R16); "
                "create a new Endpoint for the other service",
                field="spec.serviceName",
            )
        return None
    service = request.service
    if service is None:
        message = (
            service_not_found_message(spec.serviceName, request.region)
            if spec.serviceName is not None
            else f"{requested_target(spec)} not found: check the name and the region"
        )
        return Refusal(
            reason=Reason.SERVICE_NOT_FOUND,
            message=f"{label}: {message}",
            field="spec.serviceName" if spec.serviceName is not None else "spec.cloudService",
        )
    service_label = f"EndpointService {service.service_name or service.ref}"
    if service.deleting:
        return Refusal(
            reason=Reason.SERVICE_DELETED,
            message=f"{label}: {service_label} is being deleted; connect to another service",
        )
    permission = check_permission(
        request.account, service.account, service_label, request.whitelists, system=service.system
    )
    if not permission.permitted:
        return Refusal(reason=Reason.NOT_PERMITTED, message=f"{label}: {permission.message}")
    refusal = check_quota_admission("Endpoint", request.account, request.quota_used, request.quota_limit)
    if refusal:
        return refusal.model_copy(update={"message": f"{label}: {refusal.message}"})
    return None
