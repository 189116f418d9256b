"""Which Services have EndpointSlices that no endpoint controller wrote (R45).

kube-proxy sends a Service's traffic to the addresses of every EndpointSlice labelled with its name, whoever
wrote it. The endpoint controller writes pod IPs; anything else -- a selector-less Service's slices, or a
slice written by hand beside a selector's -- may point anywhere (metadata, the API server). A metadata-only
watch, label-selected on the API server's side so that only such slices are sent (few in any cluster), feeds
this set; the EndpointService controller lists and judges a backend Service's slices only when it is in it.
"""

from __future__ import annotations

from vpcep.runtime.source import Event

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SLICE_MANAGER_LABEL = "endpointslice.kubernetes.io/managed-by"
# The endpoint controller's slices carry pods' IPs; the operator's own slices are its consumers' (vpcep-*
# Services, never a backend). The mirroring controller's (from hand-written Endpoints) stay in.
TRUSTED_SLICE_MANAGERS = ("endpointslice-controller.k8s.io", "vpcep-operator.vpcep.io")
HAND_WRITTEN_SLICES = f"{SERVICE_NAME_LABEL},{SLICE_MANAGER_LABEL} notin ({','.join(TRUSTED_SLICE_MANAGERS)})"


class HandWrittenSlices:
    def __init__(self) -> None:
        self._by_uid: dict[str, tuple[str, str]] = {}  # slice uid -> (namespace, Service name)
        self._services: dict[tuple[str, str], int] = {}  # (namespace, Service name) -> slices

    def has(self, namespace: str, service: str) -> bool:
        return (namespace, service) in self._services

    def follow(self, event: Event) -> None:
        old = self._by_uid.pop(event.uid, None)
        if old is not None:
            self._services[old] -= 1
            if not self._services[old]:
                del self._services[old]
        service = event.labels.get(SERVICE_NAME_LABEL)
        if event.deleted or not service or not event.uid:
            return
        key = (event.namespace, service)
        self._by_uid[event.uid] = key
        self._services[key] = self._services.get(key, 0) + 1
