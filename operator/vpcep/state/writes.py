"""The write ledger: what this process applied and what the API server answered, ahead of the watch.

A child object the operator applies reaches its cache only when the watch delivers it; until then a reconcile
that runs again must neither apply it a second time nor decide as if it were missing. The ledger remembers,
per child, the content hash last applied (forgotten once the watch shows that content, or when the child is
deleted), and two answers the endpoint decision reads before the watch catches up: its route ConfigMap's
resourceVersion (what the gateways must report having applied, R30) and its consumer Service's ClusterIP (the
node IP, R18).
"""

from __future__ import annotations

from vpcep.builders.meta import Manifest, spec_hash_of
from vpcep.k8s.client import KubeApi
from vpcep.k8s.resources import ResourceKind

ChildKey = tuple[str, str, str]  # (kind, namespace, name)


class WriteLedger:
    def __init__(self, api: KubeApi) -> None:
        self._api = api
        self._applied: dict[ChildKey, str] = {}
        self._route_versions: dict[str, int] = {}  # endpoint id -> resourceVersion of our route write
        self._cluster_ips: dict[tuple[str, str], str] = {}  # (namespace, Service name) -> ClusterIP

    async def ensure(self, manifest: Manifest, observed_hash: str | None) -> Manifest | None:
        """Apply unless the object already has this content; returns the API answer when it applied."""
        meta = manifest["metadata"]
        key = (manifest["kind"], meta.get("namespace", ""), meta["name"])
        desired = spec_hash_of(manifest)
        if desired is not None and desired == observed_hash:
            self._applied.pop(key, None)  # the watch shows it now: no need to remember the write any longer
            return None
        if desired is not None and desired == self._applied.get(key):
            return None
        answer = await self._api.apply(manifest)
        if desired is not None:
            self._applied[key] = desired
        return answer

    async def remove(self, kind: ResourceKind, namespace: str, name: str, known: bool) -> bool:
        """Delete a child when it exists (as far as this process knows); True if a delete was sent."""
        key = (kind.kind, namespace, name)
        if not known and key not in self._applied:
            return False
        self._applied.pop(key, None)
        await self._api.delete(kind, namespace, name)
        return True

    def applied(self, kind: str, namespace: str, name: str) -> bool:
        return (kind, namespace, name) in self._applied

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """The child is gone (someone deleted it): the next reconcile applies it again."""
        self._applied.pop((kind, namespace, name), None)

    # --- answers the endpoint decision reads before the watch delivers them
    def route_version(self, endpoint_id: str) -> int | None:
        return self._route_versions.get(endpoint_id)

    def wrote_route(self, endpoint_id: str, resource_version: int) -> None:
        self._route_versions[endpoint_id] = resource_version

    def forget_route(self, endpoint_id: str) -> None:
        self._route_versions.pop(endpoint_id, None)

    def cluster_ip(self, namespace: str, service: str) -> str | None:
        return self._cluster_ips.get((namespace, service))

    def wrote_cluster_ip(self, namespace: str, service: str, cluster_ip: str) -> None:
        self._cluster_ips[(namespace, service)] = cluster_ip

    def forget_cluster_ip(self, namespace: str, service: str) -> None:
        self._cluster_ips.pop((namespace, service), None)
