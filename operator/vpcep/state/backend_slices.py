"""Which Services have EndpointSlices that no endpoint controller wrote (R45).

kube-proxy sends a Service's traffic to the addresses of every EndpointSlice labelled with its name, whoever
wrote it. The endpoint controller writes pod IPs; anything else -- a selector-less Service's slices, or a
slice written by hand beside a selector's -- may point anywhere (metadata, the API server). A metadata-only
watch, label-selected on the API server's side so that only such slices are sent (few in any cluster), feeds
this set; the EndpointService controller lists and judges a backend Service's slices only when it is in it.

Labels are written by whoever writes the slice, so no label marks a slice as the operator's own: the watch
leaves out the endpoint controller's slices and those carrying the operator's `app.kubernetes.io/managed-by`
label (its own, thousands at scale, already in the owned-slices cache); a slice carrying that label for a
backend Service is a forgery the operator finds in that cache instead (`Observed.owned_slice_labelled_for`:
the operator labels its slices only for the consumer Services it owns, never for a backend).
"""

from __future__ import annotations

from vpcep.builders.consumer import SERVICE_NAME_LABEL
from vpcep.builders.meta import MANAGED_BY, MANAGED_BY_LABEL
from vpcep.runtime.source import Event

SLICE_MANAGER_LABEL = "endpointslice.kubernetes.io/managed-by"
# The endpoint controller's slices carry pods' IPs. The mirroring controller's (from hand-written Endpoints)
# stay in, as does any slice merely claiming the operator as its manager.
TRUSTED_SLICE_MANAGER = "endpointslice-controller.k8s.io"
HAND_WRITTEN_SLICES = (
    f"{SERVICE_NAME_LABEL},{SLICE_MANAGER_LABEL} notin ({TRUSTED_SLICE_MANAGER}),"
    f"{MANAGED_BY_LABEL} notin ({MANAGED_BY})"
)


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
