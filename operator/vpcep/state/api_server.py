"""The API server's addresses, as the cluster publishes them (R45: no backend may resolve to one).

kube-apiserver keeps the `kubernetes` Service in `default` (its ClusterIPs) and that Service's EndpointSlice
(its own addresses, one per API server replica). A watch on those two objects feeds this component; a change
of the address set re-judges every backend (vpcep.controllers.service), which is rare: it moves only when an
API server replica comes or goes.
"""

from __future__ import annotations

from typing import Any

from vpcep.runtime.source import Event

API_SERVER_NAMESPACE = "default"
API_SERVER_SERVICE_LABELS = "component=apiserver,provider=kubernetes"
API_SERVER_SLICE_LABELS = "kubernetes.io/service-name=kubernetes"


def _addresses(body: dict[str, Any]) -> frozenset[str]:
    if body.get("kind") == "Service" or "spec" in body:
        spec = body.get("spec") or {}
        ips = [*(spec.get("clusterIPs") or []), spec.get("clusterIP")]
        return frozenset(str(ip) for ip in ips if ip and ip != "None")
    return frozenset(
        str(address)
        for endpoint in body.get("endpoints") or []
        for address in endpoint.get("addresses") or []
    )


class ApiServerAddresses:
    def __init__(self) -> None:
        self._by_uid: dict[str, frozenset[str]] = {}
        self.moved = False  # the last event changed the address set (read by the mapper of the same event)

    @property
    def addresses(self) -> frozenset[str]:
        return frozenset().union(*self._by_uid.values())

    def follow(self, event: Event) -> None:
        before = self.addresses
        if event.deleted:
            self._by_uid.pop(event.uid, None)
        elif event.uid:
            self._by_uid[event.uid] = _addresses(event.body)
        self.moved = self.addresses != before
