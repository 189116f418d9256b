"""EndpointService decisions: phases (R6), naming (R5), backend (R1), quota (R9), deletion (R7), system (R8).

`decide_service(ServiceFacts) -> ServiceDecision` is the reconcile policy; `check_service_admission` and
`check_service_deletion` are the admission policies the webhook reuses (R3, R4, R7, R8, R9).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from pydantic import Field

from vpcep.api.endpoint import EndpointPhase
from vpcep.api.endpoint_service import EndpointServiceSpec, EndpointServiceStatus, ServicePhase, ServiceType
from vpcep.domain.backend import BackendRefusal
from vpcep.domain.conditions import ConditionSpec, ConditionType, common_status_fields, condition
from vpcep.domain.facts import EndpointView, Frozen, ObjectRef, Refusal
from vpcep.domain.naming import build_service_name, service_id_for
from vpcep.domain.quota import QuotaStanding, check_quota_admission, quota_exceeded_message
from vpcep.domain.reasons import Reason
from vpcep.domain.validation import service_spec_problems


class ServiceFacts(Frozen):
    namespace: str
    name: str
    uid: str
    generation: int | None = None
    account: str
    region: str
    spec: EndpointServiceSpec
    deleting: bool = False
    namespace_terminating: bool = Field(
        default=False,
        description="The service's namespace is being deleted: its backend goes with it, so R7's hold on "
        "active endpoints yields (else the namespace never goes); the endpoints say ServiceDeleted.",
    )
    system: bool = Field(default=False, description="Declared by the operator (Helm cloudServices), R8/R37.")
    declared_type: ServiceType = Field(
        default=ServiceType.INTERFACE, description="Gateway is only honoured for system services (R37)."
    )
    backend_exists: bool
    backend_refusal: BackendRefusal | None = Field(
        default=None, description="Why the backend is not the provider's own (R45); None when it is."
    )
    data_plane_ready: bool = Field(
        default=True, description="The provider-side objects (NetworkPolicy R31) are in place."
    )
    quota: QuotaStanding
    endpoints: tuple[EndpointView, ...] = Field(default=(), description="Endpoints that target this service.")
    recorded_service_id: str | None = Field(default=None, description="status.serviceId, if already written.")
    last_marker_id: int = Field(default=0, description="status.lastMarkerId.")
    account_problem: str | None = Field(
        default=None, description="Why the namespace's account cannot be trusted (R48); None when it can."
    )

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(namespace=self.namespace, name=self.name)


class ServiceDecision(Frozen):
    phase: ServicePhase
    reason: Reason
    message: str
    service_name: str
    service_id: str
    service_type: ServiceType
    conditions: tuple[ConditionSpec, ...]
    connection_count: int
    accepted_count: int
    pending_count: int
    last_marker_id: int
    may_finalize: bool = Field(description="Deleting and nothing blocks: remove the finalizer.")
    blocking_endpoints: tuple[ObjectRef, ...] = Field(
        default=(), description="Accepted/Creating endpoints that hold the delete (R7)."
    )
    endpoints_to_fail: tuple[ObjectRef, ...] = Field(
        default=(),
        description="Pending/rejected endpoints to wake so they move to Failed/ServiceDeleted (R7).",
    )

    @property
    def ready(self) -> bool:
        return self.phase is ServicePhase.AVAILABLE


def _active(endpoints: Sequence[EndpointView]) -> list[EndpointView]:
    """Established endpoints hold a live (or starting) data path: the service waits for them (R7)."""
    return [e for e in endpoints if not e.deleting and e.established]


def active_endpoints_message(service: ObjectRef, active: Sequence[EndpointView]) -> str:
    """Read by the provider: endpoints by id and owner account, as its EndpointConnections show them --
    never the consumer's namespace or Endpoint name (R46)."""

    def endpoint_id(e: EndpointView) -> str:
        return e.endpoint_id or e.uid

    listed = ", ".join(
        f"{endpoint_id(e)} (account {e.account}, {e.phase})"
        for e in sorted(active, key=lambda e: (e.account, endpoint_id(e)))
    )
    return (
        f"EndpointService {service} still has {len(active)} active endpoint(s): {listed}. "
        "To delete the service, reject them in their EndpointConnections (named after the endpoint ids) or "
        "ask their owners to delete them, then delete it again."
    )


def decide_service(facts: ServiceFacts) -> ServiceDecision:
    service_id = service_id_for(facts.uid, facts.recorded_service_id)
    live = [e for e in facts.endpoints if not e.deleting]
    counts = {
        "connection_count": len(live),
        "accepted_count": sum(1 for e in live if e.phase is EndpointPhase.ACCEPTED),
        "pending_count": sum(1 for e in live if e.phase is EndpointPhase.PENDING_ACCEPTANCE),
    }
    last_marker_id = max([facts.last_marker_id, *(e.marker_id or 0 for e in facts.endpoints)])
    common = {
        "service_name": build_service_name(facts.region, facts.name, service_id),
        "service_id": service_id,
        "service_type": facts.declared_type if facts.system else ServiceType.INTERFACE,
        "last_marker_id": last_marker_id,
        **counts,
    }
    label = f"EndpointService {facts.ref}"

    if facts.deleting:
        active = _active(facts.endpoints)
        waiting = tuple(e.ref for e in live if not e.established)
        if facts.namespace_terminating:
            waiting = tuple(e.ref for e in live)  # every endpoint follows: the service and backend are going
        if active and not facts.namespace_terminating:
            message = active_endpoints_message(facts.ref, active)
            return ServiceDecision(
                phase=ServicePhase.DELETING,
                reason=Reason.HAS_ACTIVE_ENDPOINTS,
                message=message,
                conditions=(condition(ConditionType.READY, False, Reason.HAS_ACTIVE_ENDPOINTS, message),),
                may_finalize=False,
                blocking_endpoints=tuple(e.ref for e in active),
                endpoints_to_fail=waiting,
                **common,
            )
        message = f"{label} is being deleted"
        return ServiceDecision(
            phase=ServicePhase.DELETING,
            reason=Reason.DELETING,
            message=message,
            conditions=(condition(ConditionType.READY, False, Reason.DELETING, message),),
            may_finalize=True,
            endpoints_to_fail=waiting,
            **common,
        )

    if facts.account_problem is not None and not facts.system:
        # R48: whitelists, quota and "same account" acceptance would judge a borrowed account.
        return _failed(Reason.ACCOUNT_UNCLEAR, f"{label}: {facts.account_problem}", common, extra=())

    quota_condition = condition(ConditionType.WITHIN_QUOTA, True, Reason.AVAILABLE, "")
    if not facts.quota.within:
        message = f"{label}: " + quota_exceeded_message(
            "EndpointService", facts.account, facts.quota.rank, facts.quota.limit
        )
        return _failed(
            Reason.QUOTA_EXCEEDED,
            message,
            common,
            extra=(condition(ConditionType.WITHIN_QUOTA, False, Reason.QUOTA_EXCEEDED, message),),
        )

    backend = facts.spec.backend
    if not facts.backend_exists:
        message = (
            f"{label}: backend {backend.kind} {facts.namespace}/{backend.name} not found: create it, or fix "
            "spec.backend by re-creating the service (the backend cannot change); this recovers by itself"
        )
        return _failed(
            Reason.BACKEND_NOT_FOUND,
            message,
            common,
            extra=(
                quota_condition,
                condition(ConditionType.BACKEND_FOUND, False, Reason.BACKEND_NOT_FOUND, message),
            ),
        )
    if facts.backend_refusal is not None:
        refusal = facts.backend_refusal
        message = f"{label}: {refusal.message}"
        return _failed(
            refusal.reason,
            message,
            common,
            extra=(quota_condition, condition(ConditionType.BACKEND_FOUND, False, refusal.reason, message)),
        )
    backend_found = condition(ConditionType.BACKEND_FOUND, True, Reason.AVAILABLE, "")

    if not facts.data_plane_ready:
        message = (
            f"{label}: setting up access for the gateways to the backend (a NetworkPolicy in this namespace)"
        )
        return ServiceDecision(
            phase=ServicePhase.CREATING,
            reason=Reason.DATA_PLANE_NOT_READY,
            message=message,
            conditions=(
                condition(ConditionType.READY, False, Reason.DATA_PLANE_NOT_READY, message),
                quota_condition,
                backend_found,
            ),
            may_finalize=False,
            **common,
        )

    message = f"{label} is available as {common['service_name']}"
    return ServiceDecision(
        phase=ServicePhase.AVAILABLE,
        reason=Reason.AVAILABLE,
        message=message,
        conditions=(
            condition(ConditionType.READY, True, Reason.AVAILABLE, message),
            quota_condition,
            backend_found,
        ),
        may_finalize=False,
        **common,
    )


def _failed(
    reason: Reason, message: str, common: dict[str, object], extra: tuple[ConditionSpec, ...]
) -> ServiceDecision:
    return ServiceDecision.model_validate(
        {
            "phase": ServicePhase.FAILED,
            "reason": reason,
            "message": message,
            "conditions": (condition(ConditionType.READY, False, reason, message), *extra),
            "may_finalize": False,
            **common,
        }
    )


def service_status(
    decision: ServiceDecision,
    *,
    previous: EndpointServiceStatus | None,
    now: str,
    generation: int | None,
) -> EndpointServiceStatus:
    """The full status to write for a decision (conditions merged so unchanged ones keep their times)."""
    return EndpointServiceStatus(
        **common_status_fields(
            previous, decision.conditions, decision.reason, decision.message, now=now, generation=generation
        ),
        phase=decision.phase,
        serviceName=decision.service_name,
        serviceId=decision.service_id,
        serviceType=decision.service_type,
        connectionCount=decision.connection_count,
        acceptedCount=decision.accepted_count,
        pendingCount=decision.pending_count,
        lastMarkerId=decision.last_marker_id,
    )


# ---- admission (webhook) ----------------------------------------------------------------------------------


class Operation(StrEnum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


class ServiceAdmission(Frozen):
    operation: Operation
    namespace: str
    name: str
    account: str
    spec: EndpointServiceSpec | None = Field(default=None, description="The new spec (CREATE, UPDATE).")
    old_spec: EndpointServiceSpec | None = Field(
        default=None, description="The stored spec (UPDATE, DELETE)."
    )
    system: bool = Field(default=False, description="The object is (or claims to be) a system cloud service.")
    privileged: bool = Field(default=False, description="The requester is the operator or a cluster admin.")
    quota_used: int = Field(default=0, description="Live services of the account, not counting this one.")
    quota_limit: int = 0
    endpoints: tuple[EndpointView, ...] = Field(default=(), description="Endpoints targeting it (DELETE).")
    account_problem: str | None = Field(default=None, description="See ServiceFacts.account_problem (R48).")

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(namespace=self.namespace, name=self.name)


def check_service_deletion(
    service: ObjectRef, endpoints: Sequence[EndpointView], *, system: bool = False, privileged: bool = False
) -> Refusal | None:
    """R8: tenants cannot delete system services; R7: nor a service with Accepted/Creating endpoints."""
    if system and not privileged:
        return Refusal(
            reason=Reason.SYSTEM_SERVICE,
            message=f"EndpointService {service} is a cloud service managed by the operator: "
            "it cannot be deleted by tenants; change the operator's Helm values (cloudServices) instead",
        )
    active = _active(endpoints)
    if active:
        return Refusal(reason=Reason.HAS_ACTIVE_ENDPOINTS, message=active_endpoints_message(service, active))
    return None


def check_service_admission(request: ServiceAdmission) -> Refusal | None:
    """Policy for CREATE/UPDATE/DELETE of an EndpointService; None means allowed."""
    label = f"EndpointService {request.ref}"
    if request.operation is Operation.DELETE:
        return check_service_deletion(
            request.ref, request.endpoints, system=request.system, privileged=request.privileged
        )
    if request.system and not request.privileged:
        verb = "created" if request.operation is Operation.CREATE else "changed"
        return Refusal(
            reason=Reason.SYSTEM_SERVICE,
            message=f"{label} is a cloud service managed by the operator: it cannot be {verb} by tenants; "
            "change the operator's Helm values (cloudServices) instead",
        )
    if request.spec is None:
        return Refusal(reason=Reason.INVALID_SPEC, message=f"{label}: spec is required", field="spec")
    problems = service_spec_problems(request.spec)
    if problems:
        first = problems[0]
        return Refusal(reason=first.reason, message=f"{label}: {first.message}", field=first.field)
    if request.operation is Operation.CREATE:
        if request.account_problem is not None and not request.system:
            return Refusal(reason=Reason.ACCOUNT_UNCLEAR, message=f"{label}: {request.account_problem}")
        refusal = check_quota_admission(
            "EndpointService", request.account, request.quota_used, request.quota_limit
        )
        if refusal:
            return refusal.model_copy(update={"message": f"{label}: {refusal.message}"})
        return None
    old = request.old_spec
    if old is not None:
        if old.ports != request.spec.ports:
            return Refusal(
                reason=Reason.PORTS_IMMUTABLE,
                message=f"{label}: spec.ports cannot change after creation (see docs/rules.md#r4); "
                "create a new EndpointService with the new ports and move the endpoints to it",
                field="spec.ports",
            )
        if old.backend != request.spec.backend:
            return Refusal(
                reason=Reason.BACKEND_IMMUTABLE,
                message=f"{label}: spec.backend cannot change after creation (see docs/rules.md#r2); "
                "create a new EndpointService for the other backend",
                field="spec.backend",
            )
    return None
