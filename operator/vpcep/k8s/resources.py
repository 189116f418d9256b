"""The API resources the operator touches: kind -> URL pieces (one table instead of per-kind client
classes).
"""

from __future__ import annotations

from dataclasses import dataclass

from vpcep import API_VERSION


@dataclass(frozen=True)
class ResourceKind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def collection_path(self, namespace: str | None) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace is not None:
            return f"{prefix}/namespaces/{namespace}/{self.plural}"
        return f"{prefix}/{self.plural}"

    def object_path(self, namespace: str | None, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"


VPCEP_API = API_VERSION

NAMESPACE = ResourceKind("v1", "Namespace", "namespaces", namespaced=False)
SERVICE = ResourceKind("v1", "Service", "services")
POD = ResourceKind("v1", "Pod", "pods")
CONFIG_MAP = ResourceKind("v1", "ConfigMap", "configmaps")
EVENT = ResourceKind("v1", "Event", "events")
ENDPOINT_SLICE = ResourceKind("discovery.k8s.io/v1", "EndpointSlice", "endpointslices")
NETWORK_POLICY = ResourceKind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies")
ENDPOINT_SERVICE = ResourceKind(VPCEP_API, "EndpointService", "endpointservices")
ENDPOINT = ResourceKind(VPCEP_API, "Endpoint", "endpoints")
WHITELIST = ResourceKind(VPCEP_API, "Whitelist", "whitelists")
ENDPOINT_CONNECTION = ResourceKind(VPCEP_API, "EndpointConnection", "endpointconnections")

ALL_KINDS = (
    NAMESPACE,
    SERVICE,
    POD,
    CONFIG_MAP,
    EVENT,
    ENDPOINT_SLICE,
    NETWORK_POLICY,
    ENDPOINT_SERVICE,
    ENDPOINT,
    WHITELIST,
    ENDPOINT_CONNECTION,
)
_BY_API_KIND = {(kind.api_version, kind.kind): kind for kind in ALL_KINDS}


def kind_of(manifest: dict) -> ResourceKind:
    """The table entry for a manifest's apiVersion/kind; KeyError names what is missing from the table."""
    key = (manifest["apiVersion"], manifest["kind"])
    try:
        return _BY_API_KIND[key]
    except KeyError:
        raise KeyError(
            f"vpcep.k8s does not know {key[0]} {key[1]}; add it to vpcep/k8s/resources.py"
        ) from None
