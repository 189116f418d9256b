"""Every kind the operator reads, as a source (vpcep.runtime.source): what is watched where, and the
projection its cache keeps. A scoped operator watches each served namespace (SPEC §5, docs/operator.md).

- endpoints, services, whitelists: whole objects, served namespaces (the operator decides on them);
- connections: whole objects, served namespaces (created by the operator; providers set `spec.decision`);
- namespaces: cluster-wide (`vpcep.io/account` labels: accounts, quotas);
- operator config maps: the operator's namespace only (routes, and the gateways' status; no ConfigMap rights
  elsewhere);
- owned services, slices, policies: label-selected `app.kubernetes.io/managed-by=vpcep-operator`, served
  namespaces (drift: rebuild what someone deleted);
- service and pod backends: metadata only, no cache (R1: only *that* a named backend changed; the service
  GETs its one backend);
- the API server's `kubernetes` Service and EndpointSlice in `default`: whole objects, no cache (R45: its
  addresses, vpcep.state.api_server);
- EndpointSlices that no endpoint controller wrote: label-selected, metadata only, served namespaces (R45:
  which backend Services have slices written by hand, vpcep.state.backend_slices);
- gateway pods: label-selected, the operator's namespace, when `verifyGatewayPods` is on (R47: whose status
  reports are believed).
"""

from __future__ import annotations

from vpcep.builders.meta import MANAGED_BY, MANAGED_BY_LABEL
from vpcep.config import OperatorConfig
from vpcep.k8s.resources import (
    CONFIG_MAP,
    ENDPOINT,
    ENDPOINT_CONNECTION,
    ENDPOINT_SERVICE,
    ENDPOINT_SLICE,
    NAMESPACE,
    NETWORK_POLICY,
    POD,
    SERVICE,
    WHITELIST,
    ResourceKind,
)
from vpcep.k8s.watching import WatchTarget
from vpcep.runtime.cache import ObjectCache
from vpcep.runtime.source import Source
from vpcep.state import records
from vpcep.state.api_server import (
    API_SERVER_NAMESPACE,
    API_SERVER_SERVICE_LABELS,
    API_SERVER_SLICE_LABELS,
)
from vpcep.state.backend_slices import HAND_WRITTEN_SLICES
from vpcep.state.fleet import index_gateway_pods
from vpcep.state.observed import Caches

ENDPOINTS = "endpoints"
SERVICES = "services"
WHITELISTS = "whitelists"
CONNECTIONS = "connections"
NAMESPACES = "namespaces"
OPERATOR_CONFIG_MAPS = "operator_config_maps"
OWNED_SERVICES = "owned_services"
OWNED_SLICES = "owned_slices"
OWNED_POLICIES = "owned_policies"
BACKEND_SERVICES = "backend_services"
BACKEND_PODS = "backend_pods"
GATEWAY_PODS = "gateway_pods"
API_SERVER = "api_server"
BACKEND_SLICES = "backend_slices"


def backend_targets(config: OperatorConfig) -> list[WatchTarget]:
    """One metadata-only watch per backend kind: cluster-wide, or per namespace a backend may live in."""
    namespaces: list[str | None] = list(config.backend_namespaces()) if config.scoped else [None]
    return [
        WatchTarget(kind, namespace, metadata_only=True, replay=False)
        for kind in (SERVICE, POD)
        for namespace in namespaces
    ]


def build_sources(config: OperatorConfig) -> dict[str, Source]:
    served: list[str | None] = list(config.served_namespaces()) if config.scoped else [None]
    owned = f"{MANAGED_BY_LABEL}={MANAGED_BY}"

    def everywhere(kind: ResourceKind, selector: str | None = None) -> list[WatchTarget]:
        return [WatchTarget(kind, namespace, label_selector=selector) for namespace in served]

    backends = backend_targets(config)
    gateway_pods = ",".join(f"{key}={value}" for key, value in sorted(config.gatewayPodLabels.items()))
    optional = (
        {
            GATEWAY_PODS: Source(
                GATEWAY_PODS,
                [WatchTarget(POD, config.namespace, label_selector=gateway_pods)],
                index_gateway_pods,
            )
        }
        if config.verifyGatewayPods
        else {}
    )
    return {
        **optional,
        ENDPOINTS: Source(ENDPOINTS, everywhere(ENDPOINT), records.index_endpoints),
        SERVICES: Source(SERVICES, everywhere(ENDPOINT_SERVICE), records.index_endpoint_services),
        WHITELISTS: Source(WHITELISTS, everywhere(WHITELIST), records.index_whitelists),
        CONNECTIONS: Source(CONNECTIONS, everywhere(ENDPOINT_CONNECTION), records.index_connections),
        NAMESPACES: Source(NAMESPACES, [WatchTarget(NAMESPACE, None)], records.index_namespaces),
        OPERATOR_CONFIG_MAPS: Source(
            OPERATOR_CONFIG_MAPS,
            [WatchTarget(CONFIG_MAP, config.namespace)],
            records.index_operator_config_maps,
        ),
        OWNED_SERVICES: Source(OWNED_SERVICES, everywhere(SERVICE, owned), records.index_owned_services),
        OWNED_SLICES: Source(OWNED_SLICES, everywhere(ENDPOINT_SLICE, owned), records.index_owned_slices),
        OWNED_POLICIES: Source(
            OWNED_POLICIES, everywhere(NETWORK_POLICY, owned), records.index_owned_policies
        ),
        BACKEND_SERVICES: Source(BACKEND_SERVICES, [t for t in backends if t.kind == SERVICE]),
        BACKEND_PODS: Source(BACKEND_PODS, [t for t in backends if t.kind == POD]),
        API_SERVER: Source(
            API_SERVER,
            [
                WatchTarget(SERVICE, API_SERVER_NAMESPACE, label_selector=API_SERVER_SERVICE_LABELS),
                WatchTarget(ENDPOINT_SLICE, API_SERVER_NAMESPACE, label_selector=API_SERVER_SLICE_LABELS),
            ],
        ),
        BACKEND_SLICES: Source(
            BACKEND_SLICES,
            [
                WatchTarget(ENDPOINT_SLICE, namespace, label_selector=HAND_WRITTEN_SLICES, metadata_only=True)
                for namespace in served
            ],
        ),
    }


def caches_of(sources: dict[str, Source]) -> Caches:
    def cache(name: str) -> ObjectCache:
        found = sources[name].cache
        assert found is not None, f"source {name} keeps no cache"
        return found

    return Caches(
        endpoints=cache(ENDPOINTS),
        services=cache(SERVICES),
        whitelists=cache(WHITELISTS),
        connections=cache(CONNECTIONS),
        namespaces=cache(NAMESPACES),
        operator_config_maps=cache(OPERATOR_CONFIG_MAPS),
        owned_services=cache(OWNED_SERVICES),
        owned_slices=cache(OWNED_SLICES),
        owned_policies=cache(OWNED_POLICIES),
    )
