"""Reconcile one EndpointService: backend (R1), provider NetworkPolicy (R31), quota (R9), name (R5),
deletion guard (R7), counts; endpoints that depend on it are woken when what they read changes."""

from __future__ import annotations

from vpcep.api.endpoint_service import BackendKind, EndpointServiceStatus, ServicePhase, ServiceType
from vpcep.builders.meta import Owner, status_patch
from vpcep.builders.provider_policy import build_provider_policy, provider_policy_name
from vpcep.domain.reasons import Reason
from vpcep.domain.service import ServiceFacts, decide_service, service_status
from vpcep.handlers.backends import BackendObservation, observe_backend
from vpcep.handlers.observed import ServiceRecord
from vpcep.handlers.runtime import (
    ENDPOINT_KEY,
    FINALIZER,
    SERVICE_KEY,
    WHITELIST_KEY,
    Runtime,
    involved,
    rfc3339,
    utc_now,
)
from vpcep.k8s.resources import ENDPOINT_SERVICE, NETWORK_POLICY, POD, SERVICE, VPCEP_API


def backend_namespace(rt: Runtime, record: ServiceRecord) -> str:
    """System services may name a backend elsewhere (e.g. kube-system/kube-dns, R37); tenants' never
    can (R1).
    """
    if rt.observed.is_system(record) and record.backend_namespace:
        return record.backend_namespace
    return record.meta.namespace


async def backend_for(rt: Runtime, record: ServiceRecord, *, refresh: bool = False) -> BackendObservation:
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
    observation = observe_backend(
        kind,
        body,
        judged=not rt.observed.is_system(record),
        selectorless_allowed=namespace in rt.config.selectorlessBackendNamespaces,
    )
    rt.backends[key] = observation
    return observation


async def _ensure_policy(rt: Runtime, record: ServiceRecord, backend: BackendObservation) -> bool:
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
    await rt.ensure(manifest, owned.spec_hash if owned else None)
    return True


async def reconcile_service(rt: Runtime, namespace: str, name: str) -> None:
    record = rt.observed.service(namespace, name)
    if record is None:
        rt.backends.pop((namespace, name), None)
        return
    if record.meta.deleting and FINALIZER not in record.meta.finalizers:
        return
    if not record.meta.deleting and FINALIZER not in record.meta.finalizers:
        await rt.api.ensure_finalizer(ENDPOINT_SERVICE, namespace, name, FINALIZER)
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
        rt.quota_blocked.setdefault(account, set()).add((SERVICE_KEY, namespace, name))

    if decision is not None:
        for ref in decision.endpoints_to_fail:
            rt.queue.add((ENDPOINT_KEY, ref.namespace, ref.name))
        if record.meta.deleting and decision.may_finalize:
            await rt.api.remove_finalizer(ENDPOINT_SERVICE, namespace, name, FINALIZER)
            rt.backends.pop((namespace, name), None)
            wake_endpoints_of(rt, record)
            for key in rt.quota_blocked.pop(account, set()):
                rt.queue.add(key)
            for ns in rt.observed.namespaces_of(account):
                rt.refresh_quota_view(ns)


def _endpoint_visible_change(old: EndpointServiceStatus | None, new: EndpointServiceStatus) -> bool:
    if old is None:
        return True
    return (old.phase, old.reason, old.serviceName, old.serviceType) != (
        new.phase,
        new.reason,
        new.serviceName,
        new.serviceType,
    )


def wake_endpoints_of(rt: Runtime, record: ServiceRecord) -> None:
    for endpoint in rt.observed.endpoints_of_service(record):
        rt.queue.add((ENDPOINT_KEY, endpoint.meta.namespace, endpoint.meta.name))


def wake_service_dependents(rt: Runtime, record: ServiceRecord) -> None:
    """After any change of the service object: its endpoints, its whitelists' status, its account's
    quota view.
    """
    wake_endpoints_of(rt, record)
    namespace = record.meta.namespace
    for key in rt.observed.whitelist_keys_in(namespace):
        rt.queue.add((WHITELIST_KEY, namespace, key))
    for ns in rt.observed.namespaces_of(rt.observed.account(namespace)):
        rt.refresh_quota_view(ns)


__all__ = ["NETWORK_POLICY", "backend_for", "reconcile_service", "wake_endpoints_of"]
