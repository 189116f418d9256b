"""Small projections of what the operator watches, one record per object (never whole bodies).

Each `index_*` function is pure (body in, {key: projection} out); vpcep.runtime.cache stores what it returns
(filled by each kind's watch, vpcep.controllers.sources; no reconcile runs before every kind has listed).
Keys are tuples whose first item names the lookup they serve.
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from vpcep.api.endpoint import EndpointSpec, EndpointStatus
from vpcep.api.endpoint_connection import Decision
from vpcep.api.endpoint_service import BackendKind, EndpointServiceSpec, EndpointServiceStatus
from vpcep.api.routing import (
    GATEWAY_STATUS_DATA_KEY,
    GATEWAY_STATUS_LABEL,
    ROUTE_DATA_KEY,
    ROUTE_LABEL,
    GatewayStatus,
)
from vpcep.api.whitelist import WhitelistSpec
from vpcep.builders.connection import connection_name
from vpcep.builders.consumer import SERVICE_NAME_LABEL
from vpcep.builders.meta import (
    ENDPOINT_ID_LABEL,
    ENDPOINT_UID_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    spec_hash_of,
)
from vpcep.domain.accounts import ACCOUNT_LABEL, account_of_namespace

SYSTEM_LABEL = "vpcep.io/system"
OWNED_SLICE_FOR = "owned-slice-for"
SERVICE_TYPE_ANNOTATION = "vpcep.io/service-type"
BACKEND_NAMESPACE_ANNOTATION = "vpcep.io/backend-namespace"
EGRESS_CIDRS_ANNOTATION = "vpcep.io/egress-cidrs"

Body = dict[str, Any]


def _problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "spec"
    return f"spec.{where}: {first.get('msg', 'invalid')}"


def _meta(body: Body) -> dict[str, Any]:
    return dict(body.get("metadata") or {})


@dataclass(frozen=True, slots=True)
class ObjectRecord:
    namespace: str
    name: str
    uid: str
    generation: int | None
    created: str
    deleting: bool
    finalizers: tuple[str, ...]
    resource_version: str = ""


def _record(body: Body) -> ObjectRecord:
    meta = _meta(body)
    return ObjectRecord(
        namespace=sys.intern(str(meta.get("namespace", ""))),  # one copy per namespace, not per object
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        generation=meta.get("generation"),
        created=str(meta.get("creationTimestamp", "")),
        deleting=bool(meta.get("deletionTimestamp")),
        finalizers=tuple(meta.get("finalizers") or ()),
        resource_version=str(meta.get("resourceVersion") or ""),
    )


def compact_json(value: Any) -> str | None:
    """A status kept as canonical JSON text: about a sixth of the memory of its parsed models (10,000
    endpoints within SPEC §6's 300 MB), parsed again only when a reconcile reads it."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True) if value else None


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    meta: ObjectRecord
    spec: EndpointSpec | None
    spec_error: str | None
    status_json: str | None

    @property
    def status(self) -> EndpointStatus | None:
        return _endpoint_status_of(self.status_json) if self.status_json else None

    @property
    def target(self) -> str | None:
        if self.spec is None:
            return None
        if self.spec.cloudService is not None:
            return f"cloud:{self.spec.cloudService}"
        if self.spec.serviceName is not None:
            return f"name:{self.spec.serviceName}"
        return None


@functools.lru_cache(maxsize=1024)
def _endpoint_status_of(status_json: str) -> EndpointStatus | None:
    """Parsed once per distinct status while it is being worked on (a reconcile reads it several times);
    models are frozen, so sharing one is safe."""
    status: EndpointStatus | None = _parse_status(EndpointStatus, json.loads(status_json))
    return status


def _parse_status(model: Any, status: Any) -> Any:
    if not status:
        return None
    try:
        return model.model_validate(status)
    except ValidationError:
        return None  # a status we cannot read is rewritten from scratch on the next reconcile


def index_endpoints(body: Body, **_: Any) -> dict[tuple[str, ...], Any]:
    meta = _record(body)
    try:
        spec: EndpointSpec | None = EndpointSpec.model_validate(body.get("spec") or {})
        error = None
    except ValidationError as failure:
        spec, error = None, _problem(failure)
    raw_status = body.get("status") or {}
    record = EndpointRecord(meta, spec, error, compact_json(raw_status))
    keys: dict[tuple[str, ...], Any] = {
        ("ep", meta.namespace, meta.name): record,
        ("ns", meta.namespace): meta.name,
        ("uid", meta.uid): (meta.namespace, meta.name),
    }
    endpoint_id = raw_status.get("endpointId") if isinstance(raw_status, dict) else None
    if isinstance(endpoint_id, str) and endpoint_id and endpoint_id != meta.uid:
        keys[("uid", endpoint_id)] = (meta.namespace, meta.name)
    if record.target is not None:
        keys[("target", record.target)] = (meta.namespace, meta.name)
    return keys


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    meta: ObjectRecord
    spec: EndpointServiceSpec | None
    spec_error: str | None
    status: EndpointServiceStatus | None
    system_label: bool
    declared_type: str | None
    backend_namespace: str | None
    egress_cidrs: tuple[str, ...]


def index_endpoint_services(body: Body, **_: Any) -> dict[tuple[str, ...], Any]:
    meta = _record(body)
    raw_meta = _meta(body)
    labels = raw_meta.get("labels") or {}
    annotations = raw_meta.get("annotations") or {}
    try:
        spec: EndpointServiceSpec | None = EndpointServiceSpec.model_validate(body.get("spec") or {})
        error = None
    except ValidationError as failure:
        spec, error = None, _problem(failure)
    egress = annotations.get(EGRESS_CIDRS_ANNOTATION, "")
    record = ServiceRecord(
        meta=meta,
        spec=spec,
        spec_error=error,
        status=_parse_status(EndpointServiceStatus, body.get("status")),
        system_label=labels.get(SYSTEM_LABEL) == "true",
        declared_type=annotations.get(SERVICE_TYPE_ANNOTATION),
        backend_namespace=annotations.get(BACKEND_NAMESPACE_ANNOTATION),
        egress_cidrs=tuple(c for c in egress.split(",") if c),
    )
    keys: dict[tuple[str, ...], Any] = {
        ("es", meta.namespace, meta.name): record,
        ("ns", meta.namespace): meta.name,
    }
    if record.status is not None and record.status.serviceName:
        keys[("name", record.status.serviceName)] = (meta.namespace, meta.name)
    if spec is not None:
        backend_ns = record.backend_namespace if record.system_label else None
        keys[("backend", backend_ns or meta.namespace, spec.backend.kind.value, spec.backend.name)] = (
            meta.namespace,
            meta.name,
        )
    return keys


@dataclass(frozen=True, slots=True)
class WhitelistRecord:
    meta: ObjectRecord
    spec: WhitelistSpec | None
    spec_error: str | None
    status_phase: str | None
    status_reason: str | None
    observed_generation: int | None


def index_whitelists(body: Body, **_: Any) -> dict[tuple[str, ...], Any]:
    meta = _record(body)
    status = body.get("status") or {}
    try:
        spec: WhitelistSpec | None = WhitelistSpec.model_validate(body.get("spec") or {})
        error = None
    except ValidationError as failure:
        spec, error = None, _problem(failure)
    record = WhitelistRecord(
        meta, spec, error, status.get("phase"), status.get("reason"), status.get("observedGeneration")
    )
    keys: dict[tuple[str, ...], Any] = {
        ("wl", meta.namespace, meta.name): record,
        ("wns", meta.namespace): meta.name,
    }
    if spec is not None:
        keys[("for", meta.namespace, spec.endpointService)] = record
    return keys


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    namespace: str
    name: str
    uid: str
    endpoint_id: str
    decision: Decision
    status_json: str | None
    deleting: bool
    built_by_operator: bool  # our label and the name we give (R44); who may set them is the chart's policy

    @property
    def forged(self) -> bool:
        return not self.built_by_operator


def connection_record(body: Body) -> ConnectionRecord:
    meta = _meta(body)
    labels = meta.get("labels") or {}
    name = str(meta.get("name", ""))
    endpoint_id = labels.get(ENDPOINT_ID_LABEL) or name
    try:
        decision = Decision((body.get("spec") or {}).get("decision") or Decision.PENDING)
    except ValueError:
        decision = Decision.PENDING  # the CRD enum refuses this; an older CRD may not
    return ConnectionRecord(
        namespace=sys.intern(str(meta.get("namespace", ""))),  # one copy per namespace, not per object
        name=name,
        uid=str(meta.get("uid", "")),
        endpoint_id=endpoint_id,
        decision=decision,
        status_json=compact_json(body.get("status")),
        deleting=bool(meta.get("deletionTimestamp")),
        built_by_operator=labels.get(MANAGED_BY_LABEL) == MANAGED_BY
        and labels.get(ENDPOINT_ID_LABEL) == name
        and name == connection_name(endpoint_id),
    )


def index_connections(body: Body, **_: Any) -> dict[tuple[str, ...], Any]:
    """R44: keyed by (namespace, endpoint id), so a connection in another namespace never stands in for the
    one in the service's namespace; ("ec-id", id) finds every copy for clean-up and orphan collection."""
    record = connection_record(body)
    return {("ec", record.namespace, record.endpoint_id): record, ("ec-id", record.endpoint_id): record}


LABELLED = "labelled"  # (LABELLED, account) -> the namespaces whose vpcep.io/account label claims it (R48)


TERMINATING = "terminating"


def index_namespaces(body: Body, **_: Any) -> dict[Any, str]:
    """name -> account, ("account", account) -> name (both directions are O(1) lookups), and for a labelled
    namespace (LABELLED, account) -> name: who claims an account by label (R48); (TERMINATING, name) -> name
    while the namespace is being deleted."""
    meta = _meta(body)
    name = str(meta.get("name", ""))
    labels = meta.get("labels")
    account = account_of_namespace(name, labels)
    index: dict[Any, str] = {name: account, ("account", account): name}
    if (labels or {}).get(ACCOUNT_LABEL, "").strip():
        index[(LABELLED, account)] = name
    if meta.get("deletionTimestamp"):
        index[(TERMINATING, name)] = name
    return index


GATEWAYS_KEY = ("gateways",)


@dataclass(frozen=True, slots=True)
class GatewayRecord:
    status: GatewayStatus | None
    error: str | None
    name: str = ""  # the status ConfigMap's name (R47: it must be vpcep-gateway-<the reporting pod>)
    uid: str = ""
    version: str = ""  # its resourceVersion: a change is a sign of life, timed on the operator's clock (R52)


def index_operator_config_maps(body: Body, **_: Any) -> dict[tuple[str, ...], Any]:
    """Route ConfigMaps (ours) and gateway status ConfigMaps (the agents'), both in the operator namespace."""
    meta = _meta(body)
    labels = meta.get("labels") or {}
    data = body.get("data") or {}
    if labels.get(ROUTE_LABEL) == "true":
        endpoint_id = labels.get(ENDPOINT_ID_LABEL, "")
        return {
            ("route", endpoint_id): RouteRecord(
                name=str(meta.get("name", "")),
                resource_version=int(meta.get("resourceVersion", "0") or 0),
                spec_hash=spec_hash_of(body),
                endpoint_uid=labels.get(ENDPOINT_UID_LABEL, ""),
                gateway_ports=_route_ports(data.get(ROUTE_DATA_KEY, "")),
            )
        }
    if labels.get(GATEWAY_STATUS_LABEL) == "true":
        try:
            status: GatewayStatus | None = GatewayStatus.model_validate(
                json.loads(data.get(GATEWAY_STATUS_DATA_KEY, ""))
            )
            error = None
        except (ValueError, ValidationError) as failure:
            status, error = None, str(failure)[:200]
        record = GatewayRecord(
            status,
            error,
            name=str(meta.get("name", "")),
            uid=str(meta.get("uid", "")),
            version=str(meta.get("resourceVersion", "")),
        )
        # Also under one shared key: every reconcile reads the whole fleet, which must not mean
        # walking every route ConfigMap in the namespace (10,000 at SPEC §6 scale).
        return {("gateway", str(meta.get("name", ""))): record, GATEWAYS_KEY: record}
    return {}


@dataclass(frozen=True, slots=True)
class RouteRecord:
    name: str
    resource_version: int
    spec_hash: str | None
    endpoint_uid: str
    # The ports the route makes the gateways listen on: held by its endpoint while the route exists, even
    # before (or without) a status naming them (a leader killed between the two writes, R50).
    gateway_ports: tuple[int, ...] = ()


def _route_ports(text: str) -> tuple[int, ...]:
    try:
        listeners = json.loads(text).get("listeners") or []
        return tuple(sorted({int(listener["gatewayPort"]) for listener in listeners}))
    except (ValueError, TypeError, KeyError, AttributeError):
        return ()  # an unreadable route holds nothing it could name


@dataclass(frozen=True, slots=True)
class OwnedRecord:
    """An object the operator built: its content hash (to skip no-op applies) and, for Services, the
    ClusterIP.
    """

    spec_hash: str | None
    owner_uid: str
    cluster_ip: str | None = None


def _owned(kind: str, body: Body) -> dict[tuple[str, ...], Any]:
    meta = _meta(body)
    labels = meta.get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
        return {}
    cluster_ip = (body.get("spec") or {}).get("clusterIP") if kind == "Service" else None
    namespace = sys.intern(str(meta.get("namespace", "")))
    projection: dict[tuple[str, ...], Any] = {
        (kind, namespace, str(meta.get("name", ""))): OwnedRecord(
            spec_hash=spec_hash_of(body),
            owner_uid=labels.get(ENDPOINT_UID_LABEL, ""),
            cluster_ip=cluster_ip if cluster_ip and cluster_ip != "None" else None,
        )
    }
    service = labels.get(SERVICE_NAME_LABEL) if kind == "EndpointSlice" else None
    if service:  # R45: found again when that Service turns out to be a backend (vpcep.state.backend_slices)
        projection[(OWNED_SLICE_FOR, namespace, str(service))] = True
    return projection


def index_owned_services(body: Body, **_: Any) -> dict[tuple[str, ...], Any]:
    return _owned("Service", body)


def index_owned_slices(body: Body, **_: Any) -> dict[tuple[str, ...], Any]:
    return _owned("EndpointSlice", body)


def index_owned_policies(body: Body, **_: Any) -> dict[tuple[str, ...], Any]:
    return _owned("NetworkPolicy", body)


def backend_key(kind: BackendKind | str, namespace: str, name: str) -> tuple[str, str, str, str]:
    return ("backend", namespace, str(kind), name)
