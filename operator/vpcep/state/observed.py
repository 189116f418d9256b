"""Read-only lookups over the caches (one per watched kind) and the domain views built from them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from vpcep.api.endpoint import EndpointStatus
from vpcep.api.endpoint_service import EndpointServiceStatus, ServiceType
from vpcep.domain.accounts import account_problem
from vpcep.domain.facts import EndpointView, ServiceView, WhitelistView
from vpcep.domain.quota import QuotaStanding
from vpcep.runtime.cache import ObjectCache, resource_version
from vpcep.runtime.source import Event
from vpcep.state.quota_order import Member, Order, QuotaQueues
from vpcep.state.records import (
    GATEWAYS_KEY,
    LABELLED,
    OWNED_SLICE_FOR,
    TERMINATING,
    ConnectionRecord,
    EndpointRecord,
    GatewayRecord,
    OwnedRecord,
    RouteRecord,
    ServiceRecord,
    WhitelistRecord,
)

Ref = tuple[str, str]


@dataclass(frozen=True)
class Caches:
    """One cache per watched kind (vpcep.controllers.sources feeds them)."""

    endpoints: ObjectCache
    services: ObjectCache
    whitelists: ObjectCache
    connections: ObjectCache
    namespaces: ObjectCache
    operator_config_maps: ObjectCache
    owned_services: ObjectCache
    owned_slices: ObjectCache
    owned_policies: ObjectCache


def _first(index: ObjectCache, key: Any) -> Any:
    store = index.get(key)
    if store is None:
        return None
    for value in store:
        return value
    return None


def _all(index: ObjectCache, key: Any) -> list[Any]:
    store = index.get(key)
    return list(store) if store is not None else []


def account_changed(event: Event) -> bool:
    """A namespace event that moved it to another account (not its first sighting, not its deletion)."""
    if event.old is None or event.new is None:
        return False
    return event.old.get(event.name) != event.new.get(event.name)


def began_terminating(event: Event) -> bool:
    """A namespace event that marked it for deletion (its contents go next)."""
    key = (TERMINATING, event.name)
    return event.new is not None and key in event.new and (event.old is None or key not in event.old)


def claims_changed(event: Event) -> list[str]:
    """R48: accounts whose label claims a namespace event added or removed (a labelled namespace created,
    relabelled or deleted): an unlabelled namespace named like one of them gains or loses a conflict."""

    def claims(index: dict[Any, Any] | None) -> set[str]:
        return {key[1] for key in (index or {}) if isinstance(key, tuple) and key[0] == LABELLED}

    return sorted(claims(event.old) ^ claims(event.new))


def service_changed_for_readers(event: Event) -> bool:
    """An EndpointService event that changed what its readers (endpoints, whitelists, quota views) read: the
    name they resolve, its phase, reason or type, its generation, a deletion -- not a status count update."""
    key = ("es", event.namespace, event.name)
    old: ServiceRecord | None = (event.old or {}).get(key)
    new: ServiceRecord | None = (event.new or {}).get(key)
    if old is None or new is None:
        return True
    return _what_readers_read(old) != _what_readers_read(new)


def _what_readers_read(record: ServiceRecord) -> tuple[object, ...]:
    status = record.status
    return (
        record.meta.generation,
        record.meta.deleting,
        status.phase if status else None,
        status.reason if status else None,
        status.serviceName if status else None,
        status.serviceType if status else None,
    )


class Observed:
    """What the watches have seen, plus the statuses this process wrote (newer than the watch may show
    yet).
    """

    def __init__(
        self, caches: Caches, operator_namespace: str, *, require_account_label: bool = False
    ) -> None:
        self._c = caches
        self.operator_namespace = operator_namespace
        self.require_account_label = require_account_label
        # uid -> (resourceVersion of our status write, what we wrote): read instead of the cache until the
        # watch delivers that version, then dropped (a copy per object would double the memory).
        self._written_endpoint_status: dict[str, tuple[int, EndpointStatus]] = {}
        self._written_service_status: dict[str, tuple[int, EndpointServiceStatus]] = {}
        self._quota_order = QuotaQueues(self._quota_members)

    # --- upkeep: each watch event of the kinds below, before any controller hears of it
    def follow_endpoint(self, event: Event) -> None:
        self.watch_caught_up(event.uid, event.body)
        self.track_quota("Endpoint", event.uid, self.endpoint(event.namespace, event.name))

    def follow_service(self, event: Event) -> None:
        self.watch_caught_up(event.uid, event.body)
        self.track_quota("EndpointService", event.uid, self.service(event.namespace, event.name))

    def follow_namespace(self, event: Event) -> None:
        """A namespace's account changed: every account's quota order is rebuilt on the next lookup."""
        if account_changed(event) or claims_changed(event):  # a claim: who is unclear changed (R48)
            self.forget_quota_order()

    # --- quota order (R9, R22): the account's live objects by (creationTimestamp, namespace, name)
    def forget_quota_order(self) -> None:
        """An account label changed or a fresh LIST arrived: the next lookup rebuilds the order."""
        self._quota_order.forget()

    def track_quota(self, kind: str, uid: str, record: EndpointRecord | ServiceRecord | None) -> None:
        """After a watch event: keep the order current in O(log n) (record None = the object is gone)."""
        if record is not None and record.meta.uid != uid:
            record = None  # a newer object of the same name: this uid is the one that went
        self._quota_order.update(kind, uid, self._quota_member(record))

    def quota_standing(self, kind: str, account: str, me: Order, limit: int) -> QuotaStanding:
        """The same count as vpcep.domain.quota.quota_standing (objects ordered before `me`), in O(log n)
        instead of O(n) models per reconcile (10,000 endpoints, SPEC §6)."""
        return QuotaStanding(rank=self._quota_order.rank(kind, account, me), limit=limit)

    def quota_used(self, kind: str, account: str) -> int:
        return self._quota_order.used(kind, account)

    def _quota_member(self, record: EndpointRecord | ServiceRecord | None) -> Member | None:
        if record is None or record.meta.deleting:
            return None
        meta = record.meta
        if self.account_problem(meta.namespace) is not None:
            return None  # R48: a namespace with no account to trust holds none of the account's quota
        return (self.account(meta.namespace), (meta.created, meta.namespace, meta.name))

    def _quota_members(self, kind: str) -> Iterator[tuple[str, Member]]:
        cache, tag = (self._c.endpoints, "ep") if kind == "Endpoint" else (self._c.services, "es")
        records = [_first(cache, key) for key in cache if key[0] == tag]
        for record in records:
            member = self._quota_member(record)
            if member is not None:
                yield record.meta.uid, member

    def records(self, cache_name: str, tag: str) -> list[Any]:
        """Every record of one kind (``tag``: "ep", "es", "ec"), for counts such as the metrics' phases."""
        cache: ObjectCache = getattr(self._c, cache_name)
        return [record for key in cache if key[0] == tag and (record := _first(cache, key)) is not None]

    # --- namespaces and accounts
    def account(self, namespace: str) -> str:
        value = _first(self._c.namespaces, namespace)
        return str(value) if value else namespace

    def namespace_terminating(self, namespace: str) -> bool:
        return _first(self._c.namespaces, (TERMINATING, namespace)) is not None

    def account_problem(self, namespace: str) -> str | None:
        """R48: why the namespace's account cannot be trusted (vpcep.domain.accounts.account_problem)."""
        labelled_as_named = _all(self._c.namespaces, (LABELLED, namespace))
        return account_problem(
            namespace,
            labelled=namespace in _all(self._c.namespaces, (LABELLED, self.account(namespace))),
            labelled_elsewhere=any(other != namespace for other in labelled_as_named),
            require_label=self.require_account_label,
        )

    def namespaces_of(self, account: str) -> list[str]:
        """The account's namespaces, without any it cannot be trusted with (R48: an unlabelled namespace named
        like an account others hold by label takes no part in its quota or its views)."""
        found = _all(self._c.namespaces, ("account", account))
        if not found:
            return [account]
        return sorted(namespace for namespace in found if self.account_problem(namespace) is None)

    # --- endpoints
    def endpoint(self, namespace: str, name: str) -> EndpointRecord | None:
        record: EndpointRecord | None = _first(self._c.endpoints, ("ep", namespace, name))
        return record

    def endpoint_names_in(self, namespace: str) -> list[str]:
        return _all(self._c.endpoints, ("ns", namespace))

    def endpoint_by_uid(self, uid: str) -> Ref | None:
        ref: Ref | None = _first(self._c.endpoints, ("uid", uid))
        return ref

    def endpoints_targeting(self, target: str) -> list[Ref]:
        return _all(self._c.endpoints, ("target", target))

    def all_endpoint_refs(self) -> Iterator[Ref]:
        for key in list(self._c.endpoints.keys()):
            if key[0] == "ep":
                yield (key[1], key[2])

    def endpoint_status(self, record: EndpointRecord) -> EndpointStatus | None:
        written = self._written_endpoint_status.get(record.meta.uid)
        return written[1] if written is not None else record.status

    def wrote_endpoint_status(self, uid: str, answer: Mapping[str, Any], status: EndpointStatus) -> None:
        self._written_endpoint_status[uid] = (resource_version(answer), status)

    def forget_endpoint_status(self, uid: str) -> None:
        self._written_endpoint_status.pop(uid, None)

    def watch_caught_up(self, uid: str, body: Mapping[str, Any]) -> None:
        """A watch event for `uid`: our own status writes up to its resourceVersion are in the cache now."""
        version = resource_version(body)
        for written in (self._written_endpoint_status, self._written_service_status):
            entry = written.get(uid)
            if entry is not None and version >= entry[0]:
                del written[uid]

    def endpoint_view(self, record: EndpointRecord) -> EndpointView:
        status = self.endpoint_status(record)
        return EndpointView(
            namespace=record.meta.namespace,
            name=record.meta.name,
            uid=record.meta.uid,
            account=self.account(record.meta.namespace),
            created=record.meta.created,
            phase=status.phase if status else None,
            endpoint_id=status.endpointId if status else None,
            marker_id=status.markerId if status else None,
            gateway_ports=tuple(status.gatewayPorts) if status else (),
            deleting=record.meta.deleting,
        )

    def account_endpoints(self, account: str) -> list[EndpointRecord]:
        records = []
        for namespace in self.namespaces_of(account):
            for name in self.endpoint_names_in(namespace):
                record = self.endpoint(namespace, name)
                if record is not None:
                    records.append(record)
        return records

    # --- endpoint services
    def service(self, namespace: str, name: str) -> ServiceRecord | None:
        record: ServiceRecord | None = _first(self._c.services, ("es", namespace, name))
        return record

    def service_names_in(self, namespace: str) -> list[str]:
        return _all(self._c.services, ("ns", namespace))

    def service_by_published_name(self, service_name: str) -> ServiceRecord | None:
        ref = _first(self._c.services, ("name", service_name))
        return self.service(*ref) if ref else None

    def services_with_backend(self, namespace: str, kind: str, name: str) -> list[Ref]:
        return _all(self._c.services, ("backend", namespace, kind, name))

    def account_services(self, account: str) -> list[ServiceRecord]:
        records = []
        for namespace in self.namespaces_of(account):
            for name in self.service_names_in(namespace):
                record = self.service(namespace, name)
                if record is not None:
                    records.append(record)
        return records

    def is_system(self, record: ServiceRecord) -> bool:
        """System services live in the operator namespace and carry the system label (R8, R37)."""
        return record.system_label and record.meta.namespace == self.operator_namespace

    def service_status(self, record: ServiceRecord) -> EndpointServiceStatus | None:
        written = self._written_service_status.get(record.meta.uid)
        return written[1] if written is not None else record.status

    def wrote_service_status(
        self, uid: str, answer: Mapping[str, Any], status: EndpointServiceStatus
    ) -> None:
        self._written_service_status[uid] = (resource_version(answer), status)

    def service_view(self, record: ServiceRecord) -> ServiceView | None:
        if record.spec is None:
            return None
        status = self.service_status(record)
        return ServiceView(
            namespace=record.meta.namespace,
            name=record.meta.name,
            uid=record.meta.uid,
            account=self.account(record.meta.namespace),
            spec=record.spec,
            service_name=status.serviceName if status else None,
            service_id=status.serviceId if status else None,
            phase=status.phase if status else None,
            reason=status.reason if status else None,
            system=self.is_system(record),
            service_type=(status.serviceType if status and status.serviceType else ServiceType.INTERFACE),
            deleting=record.meta.deleting,
            last_marker_id=(status.lastMarkerId or 0) if status else 0,
        )

    def service_targets(self, record: ServiceRecord) -> list[str]:
        """The Endpoint target keys that can resolve to this service."""
        targets = []
        status = self.service_status(record)
        if status is not None and status.serviceName:
            targets.append(f"name:{status.serviceName}")
        if self.is_system(record):
            targets.append(f"cloud:{record.meta.name}")
        return targets

    def endpoints_of_service(self, record: ServiceRecord) -> list[EndpointRecord]:
        found: dict[Ref, EndpointRecord] = {}
        for target in self.service_targets(record):
            for ref in self.endpoints_targeting(target):
                endpoint = self.endpoint(*ref)
                if endpoint is not None:
                    found[ref] = endpoint
        return list(found.values())

    # --- whitelists
    def whitelist(self, namespace: str, name: str) -> WhitelistRecord | None:
        record: WhitelistRecord | None = _first(self._c.whitelists, ("wl", namespace, name))
        return record

    def whitelist_keys_in(self, namespace: str) -> list[str]:
        return _all(self._c.whitelists, ("wns", namespace))

    def whitelists_for(self, namespace: str, service_name: str) -> list[WhitelistRecord]:
        return _all(self._c.whitelists, ("for", namespace, service_name))

    def whitelist_views(self, namespace: str, service_name: str) -> tuple[WhitelistView, ...]:
        return tuple(
            WhitelistView(
                namespace=record.meta.namespace,
                name=record.meta.name,
                endpoint_service=service_name,
                accounts=tuple(record.spec.accounts),
            )
            for record in self.whitelists_for(namespace, service_name)
            if record.spec is not None and not record.meta.deleting
        )

    # --- connections, routes, gateways, owned children
    def connection(self, service_namespace: str, endpoint_id: str) -> ConnectionRecord | None:
        """R44: the provider's decision is the connection the operator built, in the service's namespace;
        anything else named like it (another namespace, no managed-by label, another name) is not."""
        key = ("ec", service_namespace, endpoint_id)
        records: list[ConnectionRecord] = _all(self._c.connections, key)
        return next((record for record in records if record.built_by_operator), None)

    def connections_built_for(self, endpoint_id: str) -> list[ConnectionRecord]:
        """Every connection the operator built for an endpoint, in any namespace (clean-up, orphans)."""
        return [r for r in _all(self._c.connections, ("ec-id", endpoint_id)) if r.built_by_operator]

    def endpoint_ids_with_children(self) -> set[str]:
        """Every endpoint id an EndpointConnection or a route ConfigMap names (orphan collection)."""
        ids = {key[1] for key in self._c.connections if key[0] == "ec-id"}
        ids |= {key[1] for key in self._c.operator_config_maps if key[0] == "route"}
        return ids

    def route(self, endpoint_id: str) -> RouteRecord | None:
        record: RouteRecord | None = _first(self._c.operator_config_maps, ("route", endpoint_id))
        return record

    def routes(self) -> Iterator[RouteRecord]:
        for key in list(self._c.operator_config_maps.keys()):
            if key[0] == "route":
                yield from _all(self._c.operator_config_maps, key)

    def gateways(self) -> list[GatewayRecord]:
        return _all(self._c.operator_config_maps, GATEWAYS_KEY)

    def owned_slice_labelled_for(self, namespace: str, service: str) -> bool:
        """An EndpointSlice carrying the operator's label names `service` in `namespace` (R45: for a backend
        Service, a forgery; vpcep.state.backend_slices)."""
        return _first(self._c.owned_slices, (OWNED_SLICE_FOR, namespace, service)) is not None

    def owned(self, kind: str, namespace: str, name: str) -> OwnedRecord | None:
        cache = {
            "Service": self._c.owned_services,
            "EndpointSlice": self._c.owned_slices,
            "NetworkPolicy": self._c.owned_policies,
        }[kind]
        record: OwnedRecord | None = _first(cache, (kind, namespace, name))
        return record
