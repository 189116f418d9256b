"""The Endpoint controller: observe, let the domain decide, apply the data path, write status (R10-R23, R38).

What wakes an endpoint is declared once, in CONTROLLER at the end of this module.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from vpcep.api.endpoint import EndpointPhase, EndpointStatus
from vpcep.api.endpoint_service import ServiceType
from vpcep.api.routing import GATEWAY_STATUS_LABEL, ROUTE_LABEL, Listener, Route
from vpcep.builders.connection import build_connection, build_connection_status, connection_name
from vpcep.builders.consumer import (
    build_consumer_service,
    build_endpoint_slice,
    build_gateway_egress_policy,
    consumer_service_name,
    dns_name,
    endpoint_slice_name,
    gateway_egress_policy_name,
)
from vpcep.builders.gateway_ingress import gateway_ingress_policy_name
from vpcep.builders.meta import (
    ENDPOINT_ID_LABEL,
    ENDPOINT_UID_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    Owner,
    status_patch,
)
from vpcep.builders.route import build_route_config_map, route_config_map_name
from vpcep.controllers.context import FINALIZER, Operator, involved, rfc3339, utc_now
from vpcep.controllers.gateway_ingress import admit_namespace, wake_gateway_ingress
from vpcep.controllers.keys import EndpointKey, ServiceKey
from vpcep.controllers.quota_view import refresh_quota_views_of
from vpcep.controllers.service import backend_for
from vpcep.controllers.sources import (
    CONNECTIONS,
    ENDPOINTS,
    NAMESPACES,
    OPERATOR_CONFIG_MAPS,
    OWNED_POLICIES,
    OWNED_SERVICES,
    OWNED_SLICES,
    SERVICES,
    WHITELISTS,
)
from vpcep.controllers.whitelist import permitting_whitelists
from vpcep.domain.connection_cap import per_gateway_cap
from vpcep.domain.endpoint import (
    ESTABLISHED_PHASES,
    AllocationFacts,
    DataPathAction,
    DataPathFacts,
    EndpointDecision,
    EndpointFacts,
    connection_status,
    decide_endpoint,
    endpoint_status,
)
from vpcep.domain.lookup import lookup_service
from vpcep.domain.quota import GatewayPortStanding
from vpcep.domain.reasons import Reason
from vpcep.k8s.client import ApiError
from vpcep.k8s.resources import (
    CONFIG_MAP,
    ENDPOINT,
    ENDPOINT_CONNECTION,
    ENDPOINT_SLICE,
    NETWORK_POLICY,
    SERVICE,
    VPCEP_API,
)
from vpcep.runtime.controller import Controller, Watches
from vpcep.runtime.source import Event
from vpcep.runtime.together import together
from vpcep.runtime.workqueue import RetryLater
from vpcep.state.fleet import FleetView
from vpcep.state.observed import account_changed, claims_changed, service_changed_for_readers
from vpcep.state.records import EndpointRecord, ServiceRecord, WhitelistRecord, compact_json

logger = logging.getLogger(__name__)
WAITING_REASONS = frozenset(
    {
        Reason.GATEWAY_NOT_READY,
        Reason.ROUTE_PENDING,
        Reason.NODE_IP_PENDING,
        Reason.ROUTE_REJECTED,
        Reason.CREATING,
    }
)
WARNING_PHASES = frozenset({EndpointPhase.FAILED, EndpointPhase.REJECTED})
# Allocate and write the data path; wait for the namespace's ingress policy; see the route applied; settle.
MAX_PASSES = 4
SERVICE_COUNTS_DELAY_SECONDS = 0.5
FLEET_CHECK_SECONDS = 2.0


def _owner(record: EndpointRecord) -> Owner:
    return Owner(VPCEP_API, "Endpoint", record.meta.namespace, record.meta.name, record.meta.uid)


def _target_service(rt: Operator, record: EndpointRecord) -> ServiceRecord | None:
    if record.spec is None:
        return None
    if record.spec.cloudService is not None:
        return rt.observed.service(rt.config.namespace, record.spec.cloudService)
    if record.spec.serviceName is not None:
        return rt.observed.service_by_published_name(record.spec.serviceName)
    return None


def _quota_order(record: EndpointRecord) -> tuple[str, str, str]:
    return (record.meta.created, record.meta.namespace, record.meta.name)


def _facts(rt: Operator, record: EndpointRecord, fleet: FleetView) -> EndpointFacts:
    """Everything the decision needs, read synchronously from indexes and caches (no await: see
    allocations).
    """
    observed = rt.observed
    namespace, name = record.meta.namespace, record.meta.name
    account = observed.account(namespace)
    status = observed.endpoint_status(record)
    service_record = _target_service(rt, record)
    view = observed.service_view(service_record) if service_record is not None else None
    services_by_name = {view.service_name: view} if view is not None and view.service_name else {}
    cloud = {view.name: view} if view is not None and view.system else {}
    assert record.spec is not None
    service = lookup_service(record.spec, rt.config.region, services_by_name, cloud)

    standing = observed.quota_standing(
        "Endpoint", account, _quota_order(record), rt.quota.endpoint_limit(account)
    )
    ports = rt.gateway_port_quota
    held = ports.held(record.meta.uid)
    gateway_port_quota = GatewayPortStanding(
        account=account,
        held=held,
        held_by_others=ports.held_by_account(account) - held,
        wanted_before=ports.wanted_before(account, _quota_order(record)),
        limit=rt.quota.gateway_port_limit(account),
    )

    target = record.target or ""
    held_marker = rt.allocations.marker_of(record.meta.uid, target)
    marker = (status.markerId if status else None) or held_marker
    service_status = observed.service_status(service_record) if service_record is not None else None
    current_ports = tuple(p.gatewayPort for p in status.gatewayPorts) if status else ()
    mappings = len(service.spec.ports) if service is not None else 0
    port_range = rt.port_range
    allocation = AllocationFacts(
        held_marker_id=held_marker,
        taken_marker_ids=rt.allocations.markers_taken_by_others(record.meta.uid, target, [marker]),
        marker_high_water=max(
            rt.allocations.marker_high_water(target),
            (service_status.lastMarkerId or 0) if service_status else 0,
        ),
        taken_gateway_ports=rt.allocations.ports_taken_by_others(record.meta.uid, current_ports),
        free_gateway_ports=rt.allocations.lowest_free_ports(
            record.meta.uid, mappings + len(current_ports), port_range.first, port_range.last
        ),
        port_range=port_range,
    )

    endpoint_id = status.endpointId if status and status.endpointId else record.meta.uid
    service_name = consumer_service_name(name)
    owned_service = observed.owned("Service", namespace, service_name)
    node_ip = rt.writes.cluster_ip(namespace, service_name) or (
        owned_service.cluster_ip if owned_service else None
    )
    route_version = _route_version(rt, endpoint_id)
    egress_name = gateway_egress_policy_name(name)
    egress_ready = (
        rt.writes.applied("NetworkPolicy", namespace, egress_name)
        or observed.owned("NetworkPolicy", namespace, egress_name) is not None
    )
    data_path = DataPathFacts(
        ready_gateways=len(fleet.ready),
        route_applied=fleet.applied(route_version),
        route_rejected=fleet.rejected(endpoint_id),
        gateway_error=fleet.blocking_error(route_version),
        node_ip=node_ip,
        dns_name=dns_name(service_name, namespace, rt.config.clusterDomain) if node_ip else None,
        egress_ready=egress_ready,
        backend_unreachable=fleet.unreachable(endpoint_id),
        ingress_isolation=rt.config.gatewayIngressPolicy,
        admitted_ports=rt.gateway_ingress.admitted(namespace),
        ingress_policy=f"{rt.config.namespace}/{gateway_ingress_policy_name(namespace)}",
    )
    # R44: only the connection the operator built in the service's namespace carries the provider's decision.
    connection = observed.connection(service.namespace, endpoint_id) if service is not None else None
    return EndpointFacts(
        namespace=namespace,
        name=name,
        uid=record.meta.uid,
        generation=record.meta.generation,
        account=account,
        region=rt.config.region,
        spec=record.spec,
        status=status,
        deleting=record.meta.deleting,
        service=service,
        whitelists=permitting_whitelists(rt, service.namespace, service.name) if service else (),
        decision=connection.decision if connection is not None else None,
        quota=standing,
        gateway_port_quota=gateway_port_quota,
        allocation=allocation,
        data_path=data_path,
        account_problem=observed.account_problem(namespace),
    )


async def _apply_data_path(
    rt: Operator,
    record: EndpointRecord,
    decision: EndpointDecision,
    service_record: ServiceRecord | None,
    fleet: FleetView,
) -> bool:
    """Make the consumer objects and the route match the decision; True when that changed the facts."""
    namespace, name = record.meta.namespace, record.meta.name
    owner = _owner(record)
    service_name = consumer_service_name(name)
    slice_name = endpoint_slice_name(name)
    egress_name = gateway_egress_policy_name(name)
    route_name = route_config_map_name(decision.endpoint_id)
    observed = rt.observed
    changed = False

    if decision.data_path is DataPathAction.KEEP:
        return False
    if decision.data_path is DataPathAction.WITHDRAW:
        await _withdraw_route(rt, decision.endpoint_id)
        return False
    if decision.data_path is DataPathAction.REMOVE or service_record is None:
        await _remove_data_path(rt, record, decision.endpoint_id)
        return False

    if decision.service_type is ServiceType.GATEWAY:
        backend = await backend_for(rt, service_record)
        destinations = list(service_record.egress_cidrs) or ([backend.host] if backend.host else [])
        if destinations and service_record.spec is not None:
            owned = observed.owned("NetworkPolicy", namespace, egress_name)
            answer = await rt.writes.ensure(
                build_gateway_egress_policy(
                    owner, destinations, [p.serverPort for p in service_record.spec.ports]
                ),
                owned.spec_hash if owned else None,
            )
            changed = answer is not None
        return changed

    backend = await backend_for(rt, service_record)
    if backend.host is None or service_record.spec is None:
        return False  # the service reconcile reports BackendNotFound; nothing to route to yet
    by_client_port = {p.clientPort: p for p in service_record.spec.ports}
    route = Route(
        endpointId=decision.endpoint_id,
        markerId=decision.marker_id or 0,
        listeners=[
            Listener(
                gatewayPort=port.gatewayPort,
                clientPort=port.clientPort,
                backendHost=backend.host,
                serverPort=by_client_port[port.clientPort].serverPort,
            )
            for port in decision.gateway_ports
        ],
        proxyProtocolV2=service_record.spec.proxyProtocol.value == "V2",
        sourceCIDRs=list(record.spec.accessControl.sourceCIDRs)
        if record.spec and record.spec.accessControl
        else [],
        maxConnections=per_gateway_cap(rt.config.maxConnectionsPerEndpoint, fleet.cap_sharers),  # R21, R52
        consumerNamespace=namespace,
        endpointName=name,
        serviceName=(service_record.status.serviceName or "") if service_record.status else "",
    )
    existing_route = observed.route(decision.endpoint_id)
    owned_service = observed.owned("Service", namespace, service_name)
    owned_slice = observed.owned("EndpointSlice", namespace, slice_name)
    # Independent objects: one round trip for the three (creation latency, SPEC §6).
    route_answer, service_answer, _ = await together(
        rt.writes.ensure(
            build_route_config_map(route, rt.config.namespace, record.meta.uid),
            existing_route.spec_hash if existing_route else None,
        ),
        rt.writes.ensure(
            build_consumer_service(owner, decision.gateway_ports),
            owned_service.spec_hash if owned_service else None,
        ),
        rt.writes.ensure(
            build_endpoint_slice(owner, decision.gateway_ports, fleet.addresses),
            owned_slice.spec_hash if owned_slice else None,
        ),
    )
    if route_answer is not None:
        rt.writes.wrote_route(decision.endpoint_id, int(route_answer["metadata"]["resourceVersion"]))
        changed = True
    elif rt.writes.route_version(decision.endpoint_id) is None and existing_route is None:
        logger.debug("route %s applied earlier but not yet observed", route_name)
    if service_answer is not None:
        cluster_ip = (service_answer.get("spec") or {}).get("clusterIP")
        if cluster_ip and cluster_ip != "None":
            rt.writes.wrote_cluster_ip(namespace, service_name, cluster_ip)
        changed = True
    return changed


async def _withdraw_route(rt: Operator, endpoint_id: str) -> None:
    route_name = route_config_map_name(endpoint_id)
    known = rt.observed.route(endpoint_id) is not None
    await rt.writes.remove(CONFIG_MAP, rt.config.namespace, route_name, known)
    rt.writes.forget_route(endpoint_id)


async def _remove_data_path(rt: Operator, record: EndpointRecord, endpoint_id: str) -> None:
    namespace, name = record.meta.namespace, record.meta.name
    observed = rt.observed
    service_name = consumer_service_name(name)
    slice_name = endpoint_slice_name(name)
    egress_name = gateway_egress_policy_name(name)
    await _withdraw_route(rt, endpoint_id)
    await rt.writes.remove(
        ENDPOINT_SLICE,
        namespace,
        slice_name,
        observed.owned("EndpointSlice", namespace, slice_name) is not None,
    )
    if await rt.writes.remove(
        SERVICE, namespace, service_name, observed.owned("Service", namespace, service_name) is not None
    ):
        rt.writes.forget_cluster_ip(namespace, service_name)
    await rt.writes.remove(
        NETWORK_POLICY,
        namespace,
        egress_name,
        observed.owned("NetworkPolicy", namespace, egress_name) is not None,
    )


async def _sync_connection(
    rt: Operator, record: EndpointRecord, decision: EndpointDecision, status: EndpointStatus, account: str
) -> None:
    """R10/R23: the provider's EndpointConnection exists while the endpoint targets the service,
    mirrors its state.
    """
    service = decision.service if decision.keep_connection else None
    # Ours elsewhere (the endpoint moved to another service) or no longer wanted: removed.
    await delete_connections(rt, decision.endpoint_id, keep_in=service.namespace if service else None)
    if service is None:
        return
    provider_namespace = service.namespace
    existing = rt.observed.connection(provider_namespace, decision.endpoint_id)
    name = connection_name(decision.endpoint_id)
    if existing is None:
        await rt.writes.ensure(build_connection(decision.endpoint_id, provider_namespace, service.name), None)
    connection = connection_status(decision, status, owner_account=account)
    if existing is None or existing.status_json != compact_json(build_connection_status(connection)):
        await rt.api.patch_status(ENDPOINT_CONNECTION, provider_namespace, name, status_patch(connection))


async def delete_connections(rt: Operator, endpoint_id: str, keep_in: str | None = None) -> None:
    """Delete the connections the operator built for an endpoint, except the one in `keep_in`; connections
    it did not build are never its to delete (R44: they are ignored and reported)."""
    for ours in rt.observed.connections_built_for(endpoint_id):
        if ours.namespace != keep_in and not ours.deleting:
            await rt.api.delete(ENDPOINT_CONNECTION, ours.namespace, ours.name, uid=ours.uid)


def _status_changed(old: EndpointStatus | None, new: EndpointStatus) -> bool:
    return old is None or old.model_dump(mode="json") != new.model_dump(mode="json")


def _admission_changed(old: EndpointStatus | None, new: EndpointStatus) -> bool:
    """What the namespace's gateway ingress policy is computed from: the phase and the gateway ports."""
    before = (old.phase, tuple(old.gatewayPorts)) if old is not None else (None, ())
    return before != (new.phase, tuple(new.gatewayPorts))


async def _finalize(rt: Operator, record: EndpointRecord) -> bool:
    """R23: node IP, DNS name, data path and EndpointConnection go with the endpoint; the quota is freed.
    True once the finalizer is removed."""
    status = rt.observed.endpoint_status(record)
    endpoint_id = status.endpointId if status and status.endpointId else record.meta.uid
    if status is None or status.phase is not EndpointPhase.DELETING:
        deleting = EndpointStatus(
            observedGeneration=record.meta.generation,
            conditions=list(status.conditions) if status else [],
            reason=Reason.DELETING,
            message=f"Endpoint {record.meta.namespace}/{record.meta.name} is being deleted",
            createdAt=status.createdAt if status else None,
            phase=EndpointPhase.DELETING,
            serviceName=status.serviceName if status else None,
            endpointId=endpoint_id,
            markerId=status.markerId if status else None,
            serviceType=status.serviceType if status else None,
            # Held until the route is gone (finalize releases them): a leader taking over mid-deletion seeds
            # its ledger from statuses, and handed a port still in a route to another endpoint (R50, R30).
            gatewayPorts=list(status.gatewayPorts) if status else [],
        )
        await rt.api.patch_status(
            ENDPOINT,
            record.meta.namespace,
            record.meta.name,
            status_patch(deleting),
        )
    await _remove_data_path(rt, record, endpoint_id)
    await delete_connections(rt, endpoint_id)
    _wait_until_marker_is_on_record(rt, record, status.markerId if status else None)
    if not _may_finalize(rt, record):
        return False
    await rt.api.remove_finalizer(ENDPOINT, record.meta.namespace, record.meta.name, FINALIZER)
    rt.allocations.release(record.meta.uid)
    rt.gateway_port_quota.forget(record.meta.uid)
    rt.observed.forget_endpoint_status(record.meta.uid)
    return True


def _may_finalize(rt: Operator, record: EndpointRecord) -> bool:
    """The domain decides when a deleting endpoint lets go (as for services); a spec the model cannot read
    gives it nothing to decide on, and nothing then holds the endpoint."""
    if record.spec is None:
        return True
    return decide_endpoint(_facts(rt, record, rt.fleet_view())).may_finalize


def _wait_until_marker_is_on_record(rt: Operator, record: EndpointRecord, marker: int | None) -> None:
    """R33: once the endpoint is gone, only its service's status.lastMarkerId remembers its marker id (the
    ledger is lost on restart). Let the service record it first, or a restart could hand the id out again."""
    service_record = _target_service(rt, record)
    if marker is None or service_record is None or service_record.spec is None:
        return
    service_status = rt.observed.service_status(service_record)
    if service_status is not None and (service_status.lastMarkerId or 0) >= marker:
        return
    rt.queue.add(ServiceKey(service_record.meta.namespace, service_record.meta.name))
    raise RetryLater(0.2, f"EndpointService status.lastMarkerId does not cover marker {marker} yet")


def wake_after_endpoint_change(rt: Operator, record: EndpointRecord) -> None:
    """Objects whose decision depends on this endpoint: its service (counts, R7), quota holders (R22)."""
    service_record = _target_service(rt, record)
    if service_record is not None:
        # A moment later: a burst of endpoint changes (bulk creates, a restart) is one count update.
        rt.queue.add_after(
            ServiceKey(service_record.meta.namespace, service_record.meta.name), SERVICE_COUNTS_DELAY_SECONDS
        )
    account = rt.observed.account(record.meta.namespace)
    rt.manager.enqueue(rt.quota_waiters.release(account))
    refresh_quota_views_of(rt, account)


async def _decide_and_apply(rt: Operator, record: EndpointRecord) -> EndpointDecision:
    """Decide, apply; decide again when applying changed the facts (node IP, route version), a few passes."""
    service_record = _target_service(rt, record)
    for _ in range(MAX_PASSES):
        fleet = rt.fleet_view()
        decision = decide_endpoint(_facts(rt, record, fleet))
        # Same event-loop step as _facts: the ledger never lags a decision (no duplicate ids or ports).
        held = rt.allocations.ports_of(record.meta.uid)
        rt.allocations.record(record.meta.uid, record.target, decision.marker_id, decision.gateway_ports)
        route = rt.observed.route(decision.endpoint_id)
        if route is not None:
            # R30: ports its route still names go to no other endpoint before the route is rewritten or
            # removed (its removal wakes this endpoint, which then lets them go; found by bench/chaos.py).
            rt.allocations.hold_ports(record.meta.uid, route.gateway_ports)
        rt.gateway_port_quota.hold(
            record.meta.uid, rt.observed.account(record.meta.namespace), len(decision.gateway_ports)
        )
        if rt.allocations.ports_of(record.meta.uid) != held:  # R42: the policy follows at once, in parallel
            wake_gateway_ingress(rt, record.meta.namespace)
        changed = await _apply_data_path(rt, record, decision, service_record, fleet)
        if decision.reason == Reason.INGRESS_POLICY_PENDING:
            try:  # then decide again: admitted, most likely
                await admit_namespace(rt, record.meta.namespace)
            except ApiError as error:  # the policy's own reconcile retries; this endpoint says it waits
                logger.info("gateway ingress policy of %s not written yet: %s", record.meta.namespace, error)
                break
        elif not changed:
            break
    return decision


async def reconcile_endpoint(rt: Operator, key: EndpointKey) -> None:
    """Converges from any state and may run any number of times; writes only what differs."""
    namespace, name = key.namespace, key.name
    ref = (namespace, name)
    record = rt.observed.endpoint(namespace, name)
    if record is None:
        rt.fleet.forget(ref)
        rt.gateway_ingress.track_waiting(namespace, name, False)
        return
    target = involved(ENDPOINT, namespace, name, record.meta.uid)
    if record.meta.deleting:
        wake_gateway_ingress(rt, namespace)  # R42: its ports leave the namespace's policy at once
        if FINALIZER in record.meta.finalizers and await _finalize(rt, record):
            rt.event(target, False, Reason.DELETING, "data path, node IP and EndpointConnection removed")
        rt.fleet.forget(ref)
        wake_after_endpoint_change(rt, record)
        return
    if FINALIZER not in record.meta.finalizers:
        await rt.api.ensure_finalizer(
            ENDPOINT, namespace, name, FINALIZER, known=(record.meta.finalizers, record.meta.resource_version)
        )

    previous = rt.observed.endpoint_status(record)
    decision: EndpointDecision | None = None
    if record.spec is None:
        status = _invalid_status(record, previous)
    else:
        decision = await _decide_and_apply(rt, record)
        status = endpoint_status(
            decision, previous=previous, now=rfc3339(utc_now()), generation=record.meta.generation
        )

    if _status_changed(previous, status):
        answer = await rt.api.patch_status(ENDPOINT, namespace, name, status_patch(status))
        if answer is None:
            return
        rt.observed.wrote_endpoint_status(record.meta.uid, answer, status)
        if _admission_changed(previous, status):
            wake_gateway_ingress(rt, namespace)  # R42: the namespace's policy follows phase and ports
        if previous is None or (previous.phase, previous.reason) != (status.phase, status.reason):
            rt.event(target, status.phase in WARNING_PHASES, status.reason or "", status.message or "")
            wake_after_endpoint_change(rt, record)
    if decision is not None:
        await _sync_connection(rt, record, decision, status, rt.observed.account(namespace))
    _track(rt, key, status)


def _track(rt: Operator, key: EndpointKey, status: EndpointStatus) -> None:
    """Remember who waits for gateways (woken by gateway reports), for its namespace's ingress policy, and
    for quota (woken on frees). What it waits for may have happened while this reconcile awaited its writes,
    after the wake-up went out to those registered: then it runs again at once instead of waiting for an
    unrelated event (seen: 16 s for one endpoint of a thousand)."""
    waiting = status.phase is EndpointPhase.CREATING and status.reason in WAITING_REASONS
    awaited_route = (
        _route_version(rt, status.endpointId or "")
        if waiting and status.reason == Reason.ROUTE_PENDING
        else None
    )
    rt.fleet.track(
        (key.namespace, key.name),
        waiting=waiting,
        awaited_version=awaited_route,
        established=status.phase in ESTABLISHED_PHASES,
    )
    awaits_policy = status.reason == Reason.INGRESS_POLICY_PENDING
    rt.gateway_ingress.track_waiting(key.namespace, key.name, awaits_policy)
    if status.reason in (Reason.QUOTA_EXCEEDED, Reason.GATEWAY_PORT_QUOTA_EXCEEDED):
        rt.quota_waiters.wait(rt.observed.account(key.namespace), key)
    record = rt.observed.endpoint(key.namespace, key.name)
    if record is not None:
        track_port_waiter(rt, record, status)
    if (awaited_route is not None and rt.fleet_view().applied(awaited_route)) or (
        awaits_policy
        and {port.gatewayPort for port in status.gatewayPorts} <= rt.gateway_ingress.admitted(key.namespace)
    ):
        rt.queue.add(key)


def track_port_waiter(rt: Operator, record: EndpointRecord, status: EndpointStatus) -> None:
    """R49: an endpoint waiting for gateway ports keeps its place; the account's younger ones queue behind
    (also after a restart: the operator seeds this from the statuses)."""
    uid = record.meta.uid
    service_record = (
        _target_service(rt, record) if status.reason == Reason.GATEWAY_PORT_QUOTA_EXCEEDED else None
    )
    if service_record is None or service_record.spec is None:
        rt.gateway_port_quota.stop_waiting(uid)
        return
    account = rt.observed.account(record.meta.namespace)
    rt.gateway_port_quota.wait(uid, account, _quota_order(record), len(service_record.spec.ports))


def _route_version(rt: Operator, endpoint_id: str) -> int | None:
    """The resourceVersion of the endpoint's route ConfigMap: this process's own write, else the cache's."""
    route = rt.observed.route(endpoint_id)
    return rt.writes.route_version(endpoint_id) or (route.resource_version if route else None)


def _invalid_status(record: EndpointRecord, previous: EndpointStatus | None) -> EndpointStatus:
    """A spec the API server let through but the model refuses (older CRD): Failed with the field named."""
    message = f"Endpoint {record.meta.namespace}/{record.meta.name}: {record.spec_error}; fix the spec"
    now = rfc3339(utc_now())
    return EndpointStatus(
        observedGeneration=record.meta.generation,
        reason=Reason.INVALID_SPEC,
        message=message,
        createdAt=previous.createdAt if previous and previous.createdAt else now,
        phase=EndpointPhase.FAILED,
        endpointId=previous.endpointId if previous and previous.endpointId else record.meta.uid,
    )


# --- what wakes an endpoint


def _itself(rt: Operator, event: Event) -> list[EndpointKey]:
    return [EndpointKey(event.namespace, event.name)]


def _of_connection(rt: Operator, event: Event) -> list[EndpointKey]:
    """The provider's decision (R10) or the connection's status changed: its endpoint decides again."""
    ref = rt.observed.endpoint_by_uid(event.labels.get(ENDPOINT_ID_LABEL) or event.name)
    return [EndpointKey(*ref)] if ref is not None else []


def _of_service(rt: Operator, event: Event) -> list[EndpointKey]:
    """Endpoints reading the service: woken when what they read changes (vpcep.state.observed), not on every
    status count update; a deleted service's endpoints learn it is gone."""
    if not service_changed_for_readers(event):
        return []
    if event.deleted:
        old: ServiceRecord | None = (event.old or {}).get(("es", event.namespace, event.name))
        targets = rt.observed.service_targets(old) if old is not None else []
        return [EndpointKey(*ref) for target in targets for ref in rt.observed.endpoints_targeting(target)]
    record = rt.observed.service(event.namespace, event.name)
    return endpoints_of(rt, record) if record is not None else []


def endpoints_of(rt: Operator, record: ServiceRecord) -> list[EndpointKey]:
    return [EndpointKey(e.meta.namespace, e.meta.name) for e in rt.observed.endpoints_of_service(record)]


def _of_whitelist(rt: Operator, event: Event) -> list[EndpointKey]:
    """Permission may have changed (R13 recovery, R14)."""
    key = ("wl", event.namespace, event.name)
    whitelist: WhitelistRecord | None = (event.new or {}).get(key) or (event.old or {}).get(key)
    if whitelist is None or whitelist.spec is None:
        return []
    record = rt.observed.service(event.namespace, whitelist.spec.endpointService)
    return endpoints_of(rt, record) if record is not None else []


def _of_relabelled_namespace(rt: Operator, event: Event) -> list[EndpointKey]:
    """The namespace moved to another account: permission and quota of its endpoints, and of the endpoints
    of its services (their provider account changed). A label claim that came or went: the same for the
    unlabelled namespace named like that account, which gains or loses a conflict (R48)."""
    touched = [event.name] if account_changed(event) else []
    keys: list[EndpointKey] = []
    for namespace in [*touched, *claims_changed(event)]:
        keys.extend(EndpointKey(namespace, name) for name in rt.observed.endpoint_names_in(namespace))
        for service in rt.observed.service_names_in(namespace):
            record = rt.observed.service(namespace, service)
            if record is not None:
                keys.extend(endpoints_of(rt, record))
    return keys


def _of_gateway_report(rt: Operator, event: Event) -> list[EndpointKey]:
    """A gateway status ConfigMap changed (R30, R32): the endpoints that report concerns (vpcep.state.fleet).
    A route ConfigMap someone deleted while its endpoint lives (drift): the endpoint writes it again."""
    if event.labels.get(GATEWAY_STATUS_LABEL) == "true":
        fleet = rt.fleet.concerned(rt.fleet_view(), rt.observed.endpoint_by_uid)
        return [EndpointKey(*ref) for ref in fleet]
    if event.labels.get(ROUTE_LABEL) == "true" and event.deleted:
        ref = rt.observed.endpoint_by_uid(event.labels.get(ENDPOINT_UID_LABEL, ""))
        if ref is not None:
            rt.writes.forget("ConfigMap", event.namespace, event.name)
            rt.writes.forget_route(event.labels.get(ENDPOINT_ID_LABEL, ""))
            return [EndpointKey(*ref)]
    return []


def _of_deleted_child(kind: str) -> Callable[[Operator, Event], list[EndpointKey]]:
    """Drift: someone deleted a `kind` the operator built for an endpoint; it is forgotten and built again."""

    def woken(rt: Operator, event: Event) -> list[EndpointKey]:
        if not event.deleted or event.labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
            return []
        rt.writes.forget(kind, event.namespace, event.name)
        ref = rt.observed.endpoint_by_uid(event.labels.get(ENDPOINT_UID_LABEL, ""))
        return [EndpointKey(*ref)] if ref is not None else []

    return woken


async def watch_fleet_freshness(rt: Operator) -> None:
    """Heartbeats age without any event: one task (not one per object) notices a gateway going stale, and
    reports the gateway statuses it does not believe (R47)."""
    while True:
        await asyncio.sleep(FLEET_CHECK_SECONDS)
        fleet = rt.fleet_view()
        rt.report_distrusted_gateways(fleet)
        if rt.fleet.moved(fleet):
            concerned = rt.fleet.concerned(fleet, rt.observed.endpoint_by_uid)
            rt.manager.enqueue(EndpointKey(*ref) for ref in concerned)


CONTROLLER = Controller(
    name="Endpoint",
    key=EndpointKey,
    reconcile=reconcile_endpoint,
    watches=(
        Watches(ENDPOINTS, _itself),
        Watches(CONNECTIONS, _of_connection),
        Watches(SERVICES, _of_service),
        Watches(WHITELISTS, _of_whitelist),
        Watches(NAMESPACES, _of_relabelled_namespace),
        Watches(OPERATOR_CONFIG_MAPS, _of_gateway_report),
        Watches(OWNED_SERVICES, _of_deleted_child("Service")),
        Watches(OWNED_SLICES, _of_deleted_child("EndpointSlice")),
        Watches(OWNED_POLICIES, _of_deleted_child("NetworkPolicy")),
    ),
    tasks=(watch_fleet_freshness,),
)
