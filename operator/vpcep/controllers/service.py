"""The EndpointService controller: backend (R1, R45), provider NetworkPolicy (R31), quota (R9), name (R5),
deletion guard (R7), counts. What wakes a service is declared once, in CONTROLLER at the end of this module.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from vpcep.api.endpoint_service import BackendKind, EndpointServiceStatus, ServicePhase, ServiceType
from vpcep.builders.meta import MANAGED_BY, MANAGED_BY_LABEL, Owner, status_patch
from vpcep.builders.provider_policy import build_provider_policy, provider_policy_name
from vpcep.controllers.context import FINALIZER, Operator, involved, rfc3339, utc_now
from vpcep.controllers.keys import EndpointKey, ServiceKey
from vpcep.controllers.quota_view import refresh_quota_views_of
from vpcep.controllers.sources import (
    API_SERVER,
    BACKEND_PODS,
    BACKEND_SERVICES,
    BACKEND_SLICES,
    NAMESPACES,
    OWNED_POLICIES,
    OWNED_SLICES,
    SERVICES,
)
from vpcep.domain.reasons import Reason
from vpcep.domain.service import ServiceFacts, decide_service, service_status
from vpcep.k8s.resources import ENDPOINT_SERVICE, ENDPOINT_SLICE, POD, SERVICE, VPCEP_API
from vpcep.runtime.controller import Controller, Watches
from vpcep.runtime.source import RELISTED, Event
from vpcep.state.backend_slices import SERVICE_NAME_LABEL
from vpcep.state.backends import BackendObservation, observe_backend
from vpcep.state.observed import account_changed, began_terminating, claims_changed
from vpcep.state.records import ServiceRecord


def backend_namespace(rt: Operator, record: ServiceRecord) -> str:
    """System services may name a backend elsewhere (e.g. kube-system/kube-dns, R37); tenants' never
    can (R1).
    """
    if rt.observed.is_system(record) and record.backend_namespace:
        return record.backend_namespace
    return record.meta.namespace


async def backend_for(rt: Operator, record: ServiceRecord, *, refresh: bool = False) -> BackendObservation:
    key = (record.meta.namespace, record.meta.name)
    cached = rt.backends.get(key)
    if cached is not None and not refresh:
        return cached
    assert record.spec is not None
    kind = record.spec.backend.kind
    body = await rt.api.get(
        SERVICE if kind is BackendKind.SERVICE else POD,
        backend_namespace(rt, record),
        record.spec.backend.name,
    )
    namespace = backend_namespace(rt, record)
    judged = not rt.observed.is_system(record)
    selectorless_allowed = namespace in rt.config.selectorlessBackendNamespaces
    slices = []
    if judged and kind is BackendKind.SERVICE and body is not None:
        name = record.spec.backend.name
        selectorless = not (body.get("spec") or {}).get("selector")
        if (
            (selectorless and selectorless_allowed)
            or rt.hand_written_slices.has(namespace, name)
            or rt.observed.owned_slice_labelled_for(namespace, name)
        ):
            # R45: whoever writes this Service's EndpointSlices chooses where the gateway's packets go.
            selector = f"{SERVICE_NAME_LABEL}={name}"
            slices = await rt.api.list(ENDPOINT_SLICE, namespace, label_selector=selector)
    observation = observe_backend(
        kind,
        body,
        judged=judged,
        selectorless_allowed=selectorless_allowed,
        cluster_domain=rt.config.clusterDomain,
        slices=slices,
        api_server=rt.api_server.addresses,
        admin_denied=rt.config.denied_networks,
    )
    rt.backends.put(key, observation)
    return observation


async def _ensure_policy(rt: Operator, record: ServiceRecord, backend: BackendObservation) -> bool:
    """R31: admit the gateway pods to the backend's ports; True when the data plane may use the backend."""
    if (
        not rt.config.networkPolicy
        or record.spec is None
        or backend_namespace(rt, record) != record.meta.namespace
    ):
        return True
    if not backend.pod_labels:
        return True  # a selector-less Service: nothing to select; the provider manages its own policy
    owner = Owner(VPCEP_API, "EndpointService", record.meta.namespace, record.meta.name, record.meta.uid)
    manifest = build_provider_policy(
        owner,
        backend.pod_labels,
        [backend.target_port(port.serverPort) for port in record.spec.ports],
        rt.config.namespace,
        rt.config.gatewayPodLabels,
    )
    owned = rt.observed.owned("NetworkPolicy", record.meta.namespace, provider_policy_name(record.meta.name))
    await rt.writes.ensure(manifest, owned.spec_hash if owned else None)
    return True


async def reconcile_service(rt: Operator, key: ServiceKey) -> None:
    """Converges from any state and may run any number of times; writes only what differs."""
    namespace, name = key.namespace, key.name
    record = rt.observed.service(namespace, name)
    if record is None:
        rt.backends.forget((namespace, name))
        return
    if record.meta.deleting and FINALIZER not in record.meta.finalizers:
        return
    if not record.meta.deleting and FINALIZER not in record.meta.finalizers:
        await rt.api.ensure_finalizer(
            ENDPOINT_SERVICE,
            namespace,
            name,
            FINALIZER,
            known=(record.meta.finalizers, record.meta.resource_version),
        )
    target = involved(ENDPOINT_SERVICE, namespace, name, record.meta.uid)
    previous = rt.observed.service_status(record)
    account = rt.observed.account(namespace)

    if record.spec is None:
        status = EndpointServiceStatus(
            observedGeneration=record.meta.generation,
            reason=Reason.INVALID_SPEC,
            message=f"EndpointService {namespace}/{name}: {record.spec_error}; fix the spec",
            createdAt=previous.createdAt if previous and previous.createdAt else rfc3339(utc_now()),
            phase=ServicePhase.FAILED,
        )
        decision = None
    else:
        backend = (
            await backend_for(rt, record) if not record.meta.deleting else BackendObservation(exists=True)
        )
        system = rt.observed.is_system(record)
        data_plane_ready = True
        if backend.exists and backend.host and not record.meta.deleting:
            data_plane_ready = await _ensure_policy(rt, record, backend)
        facts = ServiceFacts(
            namespace=namespace,
            name=name,
            uid=record.meta.uid,
            generation=record.meta.generation,
            account=account,
            region=rt.config.region,
            spec=record.spec,
            deleting=record.meta.deleting,
            namespace_terminating=rt.observed.namespace_terminating(namespace),
            system=system,
            declared_type=ServiceType(record.declared_type)
            if system and record.declared_type in (ServiceType.GATEWAY.value, ServiceType.INTERFACE.value)
            else ServiceType.INTERFACE,
            backend_exists=backend.exists and (backend.host is not None or backend.refusal is not None),
            backend_refusal=backend.refusal,
            data_plane_ready=data_plane_ready,
            quota=rt.observed.quota_standing(
                "EndpointService",
                account,
                (record.meta.created, namespace, name),
                rt.quota.service_limit(account),
            ),
            endpoints=tuple(rt.observed.endpoint_view(e) for e in rt.observed.endpoints_of_service(record)),
            recorded_service_id=previous.serviceId if previous else None,
            last_marker_id=(previous.lastMarkerId or 0) if previous else 0,
            account_problem=rt.observed.account_problem(namespace),
        )
        decision = decide_service(facts)
        status = service_status(
            decision, previous=previous, now=rfc3339(utc_now()), generation=record.meta.generation
        )

    changed = previous is None or previous.model_dump(mode="json") != status.model_dump(mode="json")
    if changed:
        answer = await rt.api.patch_status(ENDPOINT_SERVICE, namespace, name, status_patch(status))
        if answer is None:
            return
        rt.observed.wrote_service_status(record.meta.uid, answer, status)
        if previous is None or (previous.phase, previous.reason) != (status.phase, status.reason):
            rt.event(
                target,
                status.phase is ServicePhase.FAILED or status.reason == Reason.HAS_ACTIVE_ENDPOINTS,
                status.reason or "",
                status.message or f"EndpointService {namespace}/{name} is {status.phase}",
            )
        if _endpoint_visible_change(previous, status):
            wake_endpoints_of(rt, record)
    if status.reason == Reason.QUOTA_EXCEEDED:
        rt.quota_waiters.wait(account, key)

    if decision is not None:
        rt.manager.enqueue(EndpointKey(ref.namespace, ref.name) for ref in decision.endpoints_to_fail)
        if record.meta.deleting and decision.may_finalize:
            await rt.api.remove_finalizer(ENDPOINT_SERVICE, namespace, name, FINALIZER)
            rt.backends.forget((namespace, name))
            wake_endpoints_of(rt, record)
            rt.manager.enqueue(rt.quota_waiters.release(account))
            refresh_quota_views_of(rt, account)


def _endpoint_visible_change(old: EndpointServiceStatus | None, new: EndpointServiceStatus) -> bool:
    if old is None:
        return True
    return (old.phase, old.reason, old.serviceName, old.serviceType) != (
        new.phase,
        new.reason,
        new.serviceName,
        new.serviceType,
    )


def wake_endpoints_of(rt: Operator, record: ServiceRecord) -> None:
    endpoints = rt.observed.endpoints_of_service(record)
    rt.manager.enqueue(EndpointKey(e.meta.namespace, e.meta.name) for e in endpoints)


# --- what wakes a service


def _itself(rt: Operator, event: Event) -> list[ServiceKey]:
    return [ServiceKey(event.namespace, event.name)]


def _quota_freed(rt: Operator, event: Event) -> list[Hashable]:
    """A deleted service frees its account's quota at once (R9): whatever waited for it is reconciled."""
    return list(rt.quota_waiters.release(rt.observed.account(event.namespace))) if event.deleted else []


def _quota_freed_by_claims(rt: Operator, event: Event) -> list[Hashable]:
    """R48: a label claim that came makes the unlabelled namespace named like that account give up the
    account's quota: what waited for it is reconciled (and, should the claim go, judged again)."""
    return [key for account in claims_changed(event) for key in rt.quota_waiters.release(account)]


def _of_relabelled_namespace(rt: Operator, event: Event) -> list[ServiceKey]:
    """The namespace moved to another account: its services' quota (R9). A label claim that came or went:
    the services of the unlabelled namespace named like that account (R48)."""
    touched = [event.name] if account_changed(event) else []
    return [
        ServiceKey(namespace, name)
        for namespace in [*touched, *claims_changed(event)]
        for name in rt.observed.service_names_in(namespace)
    ]


def _of_terminating_namespace(rt: Operator, event: Event) -> list[ServiceKey]:
    """The namespace is being deleted: its services let go of their endpoints (the namespace would never
    go otherwise), whichever of the two watches tells first."""
    if not began_terminating(event):
        return []
    return [ServiceKey(event.name, name) for name in rt.observed.service_names_in(event.name)]


def _of_backend(kind: BackendKind) -> Callable[[Operator, Event], list[ServiceKey]]:
    """R1: a backend appeared, changed or went: the services naming it read it again. After a re-list nothing
    is known about what changed meanwhile: every service holding an observation reads it again."""

    def woken(rt: Operator, event: Event) -> list[ServiceKey]:
        if event.type == RELISTED:
            return [ServiceKey(*ref) for ref in rt.backends.forget_all()]
        refs = rt.observed.services_with_backend(event.namespace, kind.value, event.name)
        for ref in refs:
            rt.backends.forget(ref)
        return [ServiceKey(*ref) for ref in refs]

    return woken


def _of_backend_slice(rt: Operator, event: Event) -> list[ServiceKey]:
    """R45: an EndpointSlice that no endpoint controller wrote came, changed or went: the services naming its
    Service judge their addresses again (the state of hand-written slices already includes the event)."""
    backend = event.labels.get(SERVICE_NAME_LABEL)
    if not backend:
        return []
    refs = rt.observed.services_with_backend(event.namespace, BackendKind.SERVICE.value, backend)
    for ref in refs:
        rt.backends.forget(ref)
    return [ServiceKey(*ref) for ref in refs]


def _of_api_server(rt: Operator, event: Event) -> list[ServiceKey]:
    """R45: the API server's addresses moved (a replica came or went): every backend is judged again."""
    if not rt.api_server.moved:
        return []
    return [ServiceKey(*ref) for ref in rt.backends.forget_all()]


def _of_deleted_policy(rt: Operator, event: Event) -> list[ServiceKey]:
    """Drift: someone deleted the provider NetworkPolicy a service owns (R31); it is built again."""
    if not event.deleted or event.labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
        return []
    rt.writes.forget("NetworkPolicy", event.namespace, event.name)
    owners = event.meta.get("ownerReferences") or []
    return [
        ServiceKey(event.namespace, owner.get("name", ""))
        for owner in owners
        if owner.get("kind") == "EndpointService"
    ]


CONTROLLER = Controller(
    name="EndpointService",
    key=ServiceKey,
    reconcile=reconcile_service,
    watches=(
        Watches(SERVICES, _itself),
        Watches(SERVICES, _quota_freed),
        Watches(NAMESPACES, _of_relabelled_namespace),
        Watches(NAMESPACES, _quota_freed_by_claims),
        Watches(NAMESPACES, _of_terminating_namespace),
        Watches(BACKEND_SERVICES, _of_backend(BackendKind.SERVICE)),
        Watches(BACKEND_PODS, _of_backend(BackendKind.POD)),
        Watches(BACKEND_SLICES, _of_backend_slice),
        Watches(OWNED_SLICES, _of_backend_slice),  # R45: one claiming to be the operator's, for a backend
        Watches(API_SERVER, _of_api_server),
        Watches(OWNED_POLICIES, _of_deleted_policy),
    ),
)
