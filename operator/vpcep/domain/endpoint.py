"""Endpoint decisions: phases (R17), lookup (R15, R40), permission (R12-R14), approval (R10, R10a, R11),
quota (R22), service deletion (R7), data path readiness (R18, R30, R32, R42), Gateway-type services (R38).

`decide_endpoint(EndpointFacts) -> EndpointDecision` is the reconcile policy: an ordered chain of small
named checks (`ENDPOINT_CHECKS`), each returning a decision or passing on to the next, in the order the
endpoint itself, its target service, its account, the provider's decision, the service's health, the data
path. `check_endpoint_admission` is the webhook policy. "Established" (`facts.is_established`: Creating or
Accepted) endpoints were permitted and accepted before; they keep going when their account leaves the
whitelists (R14 choice) and when approval is switched on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from functools import cached_property

from pydantic import Field

from vpcep.api.endpoint import EndpointPhase, EndpointSpec, EndpointStatus, GatewayPort
from vpcep.api.endpoint_connection import DecidedBy, Decision, EndpointConnectionStatus
from vpcep.api.endpoint_service import ServicePhase, ServiceType
from vpcep.domain.allocation import PortAllocation, PortRange, allocate_gateway_ports, allocate_marker_id
from vpcep.domain.approval import Acceptance, AcceptanceState, decide_acceptance
from vpcep.domain.conditions import ConditionSpec, ConditionType, common_status_fields, condition
from vpcep.domain.facts import (
    ESTABLISHED_PHASES as ESTABLISHED_PHASES,  # re-exported: the phases is_established means
)
from vpcep.domain.facts import (
    Frozen,
    ObjectRef,
    Refusal,
    ServiceView,
    WhitelistView,
    is_established,
)
from vpcep.domain.lookup import requested_target
from vpcep.domain.naming import service_not_found_message
from vpcep.domain.permission import Permission, check_permission
from vpcep.domain.quota import (
    GatewayPortStanding,
    QuotaStanding,
    check_quota_admission,
    quota_exceeded_message,
)
from vpcep.domain.reasons import Reason
from vpcep.domain.redaction import without_addresses
from vpcep.domain.service import Operation
from vpcep.domain.validation import endpoint_spec_problems


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
        Reason.BACKEND_ADDRESS_DENIED,
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
    gateway_port_quota: GatewayPortStanding | None = Field(
        default=None, description="The account's gateway-port quota (R49); None: not limited."
    )
    allocation: AllocationFacts = AllocationFacts()
    data_path: DataPathFacts = DataPathFacts()
    account_problem: str | None = Field(
        default=None, description="Why the namespace's account cannot be trusted (R48); None when it can."
    )

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(namespace=self.namespace, name=self.name)

    @property
    def established(self) -> bool:
        return self.status is not None and is_established(self.status.phase)


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
    may_finalize: bool = Field(
        default=False,
        description="Deleting: once this decision's teardown is applied (data_path Remove, keep_connection "
        "False), remove the finalizer. False while the service has not recorded the endpoint's marker id "
        "(R33: afterwards nothing else remembers it), and whenever the endpoint is not being deleted.",
    )
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


class EndpointContext:
    """What the checks of the chain share: the facts, and what earlier checks derived from them.

    Every derived value is computed once, on first use, from the facts alone: a check that reads one may
    rely on the checks before it having passed (e.g. `service` is set once `service_is_not_found` passed).
    """

    def __init__(self, facts: EndpointFacts) -> None:
        self.facts = facts
        self.previous = facts.status
        self.label = f"Endpoint {facts.ref}"
        self.established = facts.established

    @cached_property
    def current_marker(self) -> int | None:
        return (self.previous.markerId if self.previous else None) or self.facts.allocation.held_marker_id

    @cached_property
    def identity_fields(self) -> dict[str, object]:
        """What every decision carries: the endpoint id (kept as status recorded it) and its marker id."""
        previous = self.previous
        return {
            "endpoint_id": (previous.endpointId if previous and previous.endpointId else self.facts.uid),
            "marker_id": self.current_marker,
        }

    @property
    def service(self) -> ServiceView:
        if self.facts.service is None:
            raise LookupError("no target service: this check belongs after service_is_not_found")
        return self.facts.service

    @cached_property
    def service_label(self) -> str:
        return f"EndpointService {self.service.service_name or self.service.ref}"

    @cached_property
    def resolved_fields(self) -> dict[str, object]:
        """Once the target is known: its names and type, and this endpoint's marker id for it (R33)."""
        allocation = self.facts.allocation
        return {
            "service_name": self.service.service_name,
            "service_type": self.service.service_type,
            "service": self.service.ref,
            "marker_id": allocate_marker_id(
                self.current_marker, allocation.taken_marker_ids, allocation.marker_high_water
            ),
        }

    @cached_property
    def permission(self) -> Permission:
        facts = self.facts
        return check_permission(
            facts.account,
            self.service.account,
            self.service_label,
            facts.whitelists,
            system=self.service.system,
        )

    @cached_property
    def permitted_condition(self) -> ConditionSpec:
        permission = self.permission
        return condition(
            ConditionType.PERMITTED,
            True,
            Reason.PERMITTED,
            permission.message
            if permission.permitted
            else "established before the account left the whitelists",
        )

    @cached_property
    def acceptance(self) -> Acceptance:
        facts = self.facts
        return decide_acceptance(
            self.service.spec, facts.account, facts.decision, already_accepted=self.established
        )

    @cached_property
    def accepted_condition(self) -> ConditionSpec:
        acceptance = self.acceptance
        return condition(
            ConditionType.ACCEPTED,
            acceptance.state is AcceptanceState.ACCEPTED,
            acceptance.reason,
            acceptance.message,
        )

    @cached_property
    def decided_fields(self) -> dict[str, object]:
        """Once permission is settled: the effective decision the provider sees, and who made it."""
        return {
            **self.resolved_fields,
            "connection_decision": self.acceptance.decision,
            "decided_by": self.acceptance.decided_by,
        }

    @cached_property
    def agreed_conditions(self) -> tuple[ConditionSpec, ...]:
        return (self.permitted_condition, self.accepted_condition)

    @cached_property
    def held_for_us(self) -> bool:
        """R7: a deleting service whose finalizer established endpoints hold is held precisely so that they
        keep working: for them it still serves (its phase says Deleting, not that it stopped working)."""
        return self.service.deleting and self.established

    @cached_property
    def held_note(self) -> str:
        if not self.held_for_us:
            return ""
        return (
            f"; the provider is deleting {self.service_label}: it is kept, and this endpoint keeps working, "
            "until this Endpoint is deleted"
        )

    @cached_property
    def port_allocation(self) -> PortAllocation:
        allocation = self.facts.allocation
        return allocate_gateway_ports(
            [p.clientPort for p in self.service.spec.ports],
            self.previous.gatewayPorts if self.previous else (),
            allocation.taken_gateway_ports,
            allocation.port_range,
            allocation.free_gateway_ports,
        )

    @cached_property
    def data_path_fields(self) -> dict[str, object]:
        """Once gateway ports are allocated: the ports, and the node IP and DNS name as observed."""
        path = self.facts.data_path
        return {
            **self.decided_fields,
            "gateway_ports": self.port_allocation.ports,
            "node_ip": path.node_ip,
            "dns_name": path.dns_name,
        }

    @cached_property
    def path_conditions(self) -> tuple[ConditionSpec, ...]:
        """The agreed conditions and whether the gateways reach the backend (R32)."""
        path = self.facts.data_path
        if path.backend_unreachable:
            # R46: the gateway's text names the backend's address; the consumer learns only that it is down.
            reachability = condition(
                ConditionType.BACKEND_REACHABLE,
                False,
                Reason.BACKEND_UNREACHABLE,
                without_addresses(path.backend_unreachable),
            )
        else:
            reachability = condition(
                ConditionType.BACKEND_REACHABLE,
                None if path.ready_gateways == 0 else True,
                Reason.BACKEND_REACHABLE,
                "",
            )
        return (*self.agreed_conditions, reachability)

    def verdict(
        self,
        phase: EndpointPhase,
        reason: Reason,
        message: str,
        data_path: DataPathAction,
        conditions: tuple[ConditionSpec, ...] = (),
        fields: Mapping[str, object] | None = None,
        **extra: object,
    ) -> EndpointDecision:
        """The decision: the message prefixed with the endpoint, the Ready condition first, and what exists
        of the data path kept in the answer while it is kept or withdrawn (its ports and node IP stay)."""
        values = {**self.identity_fields, **(fields or {}), **extra}
        previous = self.previous
        if data_path in (DataPathAction.KEEP, DataPathAction.WITHDRAW) and previous is not None:
            values.setdefault("gateway_ports", tuple(previous.gatewayPorts))
            values.setdefault("node_ip", previous.nodeIP)
            values.setdefault("dns_name", previous.dnsName)
        full = message if message.startswith(self.label) else f"{self.label}: {message}"
        return EndpointDecision.model_validate(
            {
                "phase": phase,
                "reason": reason,
                "message": full,
                "data_path": data_path,
                "keep_connection": phase in CONNECTED_PHASES,
                "conditions": (_ready(phase, reason, full), *conditions),
                **values,
            }
        )


# An EndpointConnection exists for the endpoint in these phases (the provider sees it, and may decide).
CONNECTED_PHASES = frozenset(
    {EndpointPhase.PENDING_ACCEPTANCE, EndpointPhase.CREATING, EndpointPhase.ACCEPTED, EndpointPhase.REJECTED}
)

# A check of the chain: a decision ends the chain; None passes on to the next check.
EndpointCheck = Callable[[EndpointContext], EndpointDecision | None]


# ---- the endpoint itself ---------------------------------------------------------------------------------


def endpoint_is_deleting(context: EndpointContext) -> EndpointDecision | None:
    """R23: everything goes with the endpoint. The finalizer may go once this decision's teardown is applied
    and the service has the endpoint's marker id on record (R33: afterwards only the service remembers it,
    and a marker id is never handed out twice)."""
    facts = context.facts
    if not facts.deleting:
        return None
    marker = context.current_marker
    recorded = marker is None or facts.service is None or facts.service.last_marker_id >= marker
    message = (
        "being deleted"
        if recorded
        else f"being deleted; waiting for its EndpointService to record marker id {marker}, so it is never "
        "handed out again"
    )
    return context.verdict(
        EndpointPhase.DELETING, Reason.DELETING, message, DataPathAction.REMOVE, may_finalize=recorded
    )


def spec_is_invalid(context: EndpointContext) -> EndpointDecision | None:
    """What admission refuses (R15, R34), should it have slipped past (webhook off)."""
    problems = endpoint_spec_problems(context.facts.spec)
    if not problems:
        return None
    return context.verdict(
        EndpointPhase.FAILED, Reason.INVALID_SPEC, problems[0].message, DataPathAction.REMOVE
    )


def account_is_unclear(context: EndpointContext) -> EndpointDecision | None:
    """R48: an account that is not the namespace's own (an unlabelled namespace named like an account claimed
    by label, or no label where one is required) permits nothing, established or not: permissions, acceptance
    and quota all hang on it."""
    problem = context.facts.account_problem
    if problem is None:
        return None
    return context.verdict(EndpointPhase.FAILED, Reason.ACCOUNT_UNCLEAR, problem, DataPathAction.REMOVE)


# ---- its target service ----------------------------------------------------------------------------------


def service_was_deleted(context: EndpointContext) -> EndpointDecision | None:
    """R7: the service this endpoint had resolved is gone (its name is unchanged, so it is not a typo)."""
    facts, previous = context.facts, context.previous
    if facts.service is not None or previous is None or previous.serviceName is None:
        return None
    if facts.spec.serviceName not in (None, previous.serviceName):
        return None
    return context.verdict(
        EndpointPhase.FAILED,
        Reason.SERVICE_DELETED,
        f"its {requested_target(facts.spec)} was deleted; delete this Endpoint, or re-create it against "
        "another service",
        DataPathAction.REMOVE,
        # Kept, so the next reconcile still knows it was resolved once (else it reads as a typo: NotFound).
        fields={"service_name": previous.serviceName},
    )


def service_is_not_found(context: EndpointContext) -> EndpointDecision | None:
    """R15, R40: no service by that name in this region (or no cloud service by that short name)."""
    facts = context.facts
    if facts.service is not None:
        return None
    if facts.spec.serviceName is not None:
        message = service_not_found_message(facts.spec.serviceName, facts.region)
    else:
        message = (
            f"{requested_target(facts.spec)} not found: check the name and the region; "
            "`kubectl get vpces -A -l vpcep.io/system=true` lists the cloud services"
        )
    return context.verdict(EndpointPhase.FAILED, Reason.SERVICE_NOT_FOUND, message, DataPathAction.REMOVE)


def service_is_being_deleted(context: EndpointContext) -> EndpointDecision | None:
    """R7: a deleting service takes no new endpoints; established ones keep it (and keep working)."""
    if not context.service.deleting or context.established:
        return None
    return context.verdict(
        EndpointPhase.FAILED,
        Reason.SERVICE_DELETED,
        f"{context.service_label} is being deleted; delete this Endpoint",
        DataPathAction.REMOVE,
        fields=context.resolved_fields,
    )


# ---- its account -----------------------------------------------------------------------------------------


def quota_is_exceeded(context: EndpointContext) -> EndpointDecision | None:
    """R22: past the account's endpoint quota (in creation order), an endpoint holds nothing."""
    facts = context.facts
    if facts.quota.within:
        return None
    message = quota_exceeded_message("Endpoint", facts.account, facts.quota.rank, facts.quota.limit)
    return context.verdict(
        EndpointPhase.FAILED,
        Reason.QUOTA_EXCEEDED,
        message,
        DataPathAction.REMOVE,
        (condition(ConditionType.WITHIN_QUOTA, False, Reason.QUOTA_EXCEEDED, message),),
        context.resolved_fields,
    )


def account_is_not_permitted(context: EndpointContext) -> EndpointDecision | None:
    """R12, R13: only permitted accounts connect; R14: an established endpoint stays when its account
    leaves the whitelists (the documented choice)."""
    permission = context.permission
    if permission.permitted or context.established:
        return None
    return context.verdict(
        EndpointPhase.FAILED,
        Reason.NOT_PERMITTED,
        permission.message,
        DataPathAction.REMOVE,
        (condition(ConditionType.PERMITTED, False, Reason.NOT_PERMITTED, permission.message),),
        context.resolved_fields,
    )


# ---- the provider's decision -----------------------------------------------------------------------------


def connection_is_rejected(context: EndpointContext) -> EndpointDecision | None:
    """R11: a rejected endpoint loses its data path; an explicit Reject wins over everything (R10a)."""
    acceptance = context.acceptance
    if acceptance.state is not AcceptanceState.REJECTED:
        return None
    return context.verdict(
        EndpointPhase.REJECTED,
        Reason.REJECTED,
        acceptance.message,
        DataPathAction.REMOVE,
        context.agreed_conditions,
        context.decided_fields,
    )


def connection_is_pending(context: EndpointContext) -> EndpointDecision | None:
    """R10: with approval required, the endpoint waits for the provider (unless auto-accepted, R10a)."""
    acceptance = context.acceptance
    if acceptance.state is not AcceptanceState.PENDING:
        return None
    return context.verdict(
        EndpointPhase.PENDING_ACCEPTANCE,
        Reason.PENDING_ACCEPTANCE,
        acceptance.message,
        DataPathAction.REMOVE,
        context.agreed_conditions,
        context.decided_fields,
    )


# ---- the service's health --------------------------------------------------------------------------------


def service_is_not_available(context: EndpointContext) -> EndpointDecision | None:
    """The endpoint is set up when its service is Available. Meanwhile what exists is kept, except the
    route when the backend is gone or not the provider's own (R45, R52): no gateway may dial its old
    address."""
    service = context.service
    if service.phase is ServicePhase.AVAILABLE or context.held_for_us:
        return None
    message = (
        f"{context.service_label} is {service.phase or 'not yet reconciled'}"
        + (f" ({service.reason})" if service.reason else "")
        + "; the endpoint is set up when the service is Available: ask the provider to check "
        "`kubectl describe vpces` for it"
    )
    backend_gone = service.phase is ServicePhase.FAILED and service.reason in BACKEND_GONE_REASONS
    return context.verdict(
        EndpointPhase.CREATING,
        Reason.SERVICE_NOT_AVAILABLE,
        message,
        DataPathAction.WITHDRAW if backend_gone else DataPathAction.KEEP,
        context.agreed_conditions,
        context.decided_fields,
    )


# ---- Gateway-type services (R38): no node IP, an egress policy instead ---------------------------------


def gateway_egress_is_closed(context: EndpointContext) -> EndpointDecision | None:
    if context.service.service_type is not ServiceType.GATEWAY or context.facts.data_path.egress_ready:
        return None
    return context.verdict(
        EndpointPhase.CREATING,
        Reason.CREATING,
        "opening egress from this namespace to the gateway service",
        DataPathAction.ENSURE,
        context.agreed_conditions,
        context.decided_fields,
    )


def gateway_service_is_connected(context: EndpointContext) -> EndpointDecision | None:
    if context.service.service_type is not ServiceType.GATEWAY:
        return None
    return context.verdict(
        EndpointPhase.ACCEPTED,
        Reason.ACCEPTED,
        f"connected to {context.service_label}{context.held_note}",
        DataPathAction.ENSURE,
        context.agreed_conditions,
        context.decided_fields,
    )


# ---- Interface-type services: the data path through the gateways (R18, R30, R42) ------------------------


def gateway_port_quota_is_exceeded(context: EndpointContext) -> EndpointDecision | None:
    """R49: an endpoint takes one gateway port per port mapping from its account's quota; one that does not
    fit waits, in creation order, holding nothing (woken when its account frees ports)."""
    standing = context.facts.gateway_port_quota
    wanted = len(context.service.spec.ports)
    if standing is None or standing.admits(wanted):
        return None
    message = standing.refusal_message(wanted)
    return context.verdict(
        EndpointPhase.FAILED,
        Reason.GATEWAY_PORT_QUOTA_EXCEEDED,
        message,
        DataPathAction.REMOVE,
        (
            *context.agreed_conditions,
            condition(ConditionType.WITHIN_QUOTA, False, Reason.GATEWAY_PORT_QUOTA_EXCEEDED, message),
        ),
        context.decided_fields,
    )


def gateway_ports_are_exhausted(context: EndpointContext) -> EndpointDecision | None:
    allocation = context.port_allocation
    if allocation.complete:
        return None
    port_range = context.facts.allocation.port_range
    message = (
        f"no free gateway port in {port_range.first}-{port_range.last} for clientPort(s) "
        f"{', '.join(map(str, allocation.unallocated))}: the cluster operator must widen the Helm value "
        "gateway.ports (operator config gatewayPorts); this recovers by itself when ports are freed"
    )
    return context.verdict(
        EndpointPhase.FAILED,
        Reason.PORTS_EXHAUSTED,
        message,
        DataPathAction.REMOVE,
        context.agreed_conditions,
        context.decided_fields,
    )


def _setting_up(context: EndpointContext, reason: Reason, message: str) -> EndpointDecision:
    """Creating, the data path being ensured: the ports are allocated, something still has to happen."""
    return context.verdict(
        EndpointPhase.CREATING,
        reason,
        message,
        DataPathAction.ENSURE,
        context.path_conditions,
        context.data_path_fields,
    )


def no_gateway_is_ready(context: EndpointContext) -> EndpointDecision | None:
    if context.facts.data_path.ready_gateways > 0:
        return None
    return _setting_up(
        context,
        Reason.GATEWAY_NOT_READY,
        "no gateway is ready (no fresh heartbeat); check the vpcep-gateway pods in the operator's namespace",
    )


def route_is_rejected(context: EndpointContext) -> EndpointDecision | None:
    rejected = context.facts.data_path.route_rejected
    if not rejected:
        return None
    return _setting_up(
        context,
        Reason.ROUTE_REJECTED,
        f"a gateway refused this endpoint's route: {without_addresses(rejected)}; the cluster operator "
        "should check the gateway logs",
    )


def node_ip_is_pending(context: EndpointContext) -> EndpointDecision | None:
    if context.facts.data_path.node_ip is not None:
        return None
    return _setting_up(
        context, Reason.NODE_IP_PENDING, "waiting for the node IP (ClusterIP of the endpoint's Service)"
    )


def route_is_pending(context: EndpointContext) -> EndpointDecision | None:
    """R30: Accepted only once every ready gateway serves the route. An endpoint already Accepted stays so
    while a rewrite of its route is applied (the gateways serve the previous version meanwhile): a change of
    the fleet rewrites every route (R21's share of the cap, R49) and must not flip thousands of endpoints to
    Creating and back; a refused rewrite still says so (route_is_rejected)."""
    path = context.facts.data_path
    if path.route_applied:
        return None
    previous = context.previous
    if previous is not None and previous.phase is EndpointPhase.ACCEPTED and path.ready_gateways > 0:
        return None
    gateway_error = without_addresses(path.gateway_error) if path.gateway_error else None
    blocked = (
        f"; {gateway_error}: the cluster operator should check that gateway's logs" if gateway_error else ""
    )
    return _setting_up(
        context,
        Reason.ROUTE_PENDING,
        f"waiting for {path.ready_gateways} ready gateway(s) to apply the route{blocked}",
    )


def ingress_policy_is_pending(context: EndpointContext) -> EndpointDecision | None:
    """R42: only this namespace's pods may reach the ports before anyone is told to use them."""
    path = context.facts.data_path
    if not path.ingress_isolation:
        return None
    not_admitted = sorted({p.gatewayPort for p in context.port_allocation.ports} - path.admitted_ports)
    if not not_admitted:
        return None
    return _setting_up(
        context,
        Reason.INGRESS_POLICY_PENDING,
        f"waiting for the gateway ingress NetworkPolicy {path.ingress_policy or '(not written yet)'} to "
        f"admit this namespace on gateway port(s) {', '.join(map(str, not_admitted))}",
    )


def interface_service_is_connected(context: EndpointContext) -> EndpointDecision:
    """R18: nothing stands in the way: the endpoint is Accepted, reachable at its node IP and DNS name."""
    path = context.facts.data_path
    return context.verdict(
        EndpointPhase.ACCEPTED,
        Reason.ACCEPTED,
        f"connected to {context.service_label} at {path.node_ip} ({path.dns_name or 'no DNS name'})"
        f"{context.held_note}",
        DataPathAction.ENSURE,
        context.path_conditions,
        context.data_path_fields,
    )


# The reconcile policy, in order: the first check with a verdict decides. Each check may rely on those
# before it having passed (the target exists after service_is_not_found, ports exist after
# gateway_ports_are_exhausted, ...).
ENDPOINT_CHECKS: tuple[EndpointCheck, ...] = (
    endpoint_is_deleting,
    spec_is_invalid,
    account_is_unclear,
    service_was_deleted,
    service_is_not_found,
    service_is_being_deleted,
    quota_is_exceeded,
    account_is_not_permitted,
    connection_is_rejected,
    connection_is_pending,
    service_is_not_available,
    gateway_egress_is_closed,
    gateway_service_is_connected,
    gateway_port_quota_is_exceeded,
    gateway_ports_are_exhausted,
    no_gateway_is_ready,
    route_is_rejected,
    node_ip_is_pending,
    route_is_pending,
    ingress_policy_is_pending,
)


def decide_endpoint(facts: EndpointFacts) -> EndpointDecision:
    """The reconcile policy: the first check of ENDPOINT_CHECKS with a verdict decides; past them all the
    endpoint is connected."""
    context = EndpointContext(facts)
    for check in ENDPOINT_CHECKS:
        decision = check(context)
        if decision is not None:
            return decision
    return interface_service_is_connected(context)


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
    account_problem: str | None = Field(default=None, description="See EndpointFacts.account_problem (R48).")

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
                message=f"{label}: spec.serviceName and spec.cloudService cannot change "
                "(see docs/rules.md#r16); create a new Endpoint for the other service",
                field="spec.serviceName",
            )
        return None
    if request.account_problem is not None:
        return Refusal(reason=Reason.ACCOUNT_UNCLEAR, message=f"{label}: {request.account_problem}")
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
