"""What the operator needs to know about a service's backend Service or Pod (R1, R31, R45): read on demand.

Backends are not indexed cluster-wide (that would hold every Service and Pod of the cluster in memory);
the EndpointService reconcile GETs its one backend and keeps this small observation (one per EndpointService,
a handful of fields), and the metadata-only Service/Pod watch wakes the EndpointServices that reference the
object that changed -- any change moves its resourceVersion, so a Pod that stops Running is read again.
What R45 judges (spec.type, whether a selector is set, status.phase, spec.hostNetwork, the ClusterIPs and Pod
IPs) comes from that same GET; only a Service whose EndpointSlices may have been written by hand (an
admin-allowed selector-less one, or one with slices no endpoint controller wrote: vpcep.state.backend_slices)
also has them listed (their addresses are where the gateway's packets go, and whoever writes them chooses).
Nothing more is kept per backend than the refusal it produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vpcep.api.denied_addresses import Network
from vpcep.api.endpoint_service import BackendKind
from vpcep.builders.consumer import dns_name
from vpcep.domain.backend import (
    BackendAddresses,
    BackendFacts,
    BackendRefusal,
    check_backend,
    check_backend_addresses,
)


@dataclass(frozen=True)
class BackendObservation:
    exists: bool
    host: str | None = None
    pod_labels: dict[str, str] = field(default_factory=dict)
    target_ports: dict[int, int | str] = field(default_factory=dict)
    refusal: BackendRefusal | None = None  # R45: not the provider's own; then host is None (nothing to dial)

    def target_port(self, server_port: int) -> int | str:
        return self.target_ports.get(server_port, server_port)


MISSING = BackendObservation(exists=False)


def backend_facts(kind: BackendKind, body: dict[str, Any]) -> BackendFacts:
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    return BackendFacts(
        kind=kind,
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        service_type=spec.get("type") if kind is BackendKind.SERVICE else None,
        has_selector=bool(spec.get("selector")) if kind is BackendKind.SERVICE else True,
        pod_phase=(body.get("status") or {}).get("phase") if kind is BackendKind.POD else None,
        host_network=bool(spec.get("hostNetwork")) if kind is BackendKind.POD else False,
    )


def dialled_addresses(
    kind: BackendKind, body: dict[str, Any], slices: Sequence[dict[str, Any]] = ()
) -> tuple[tuple[str, str], ...]:
    """Where the gateway's packets to this backend go, each with where it was read: a Service's ClusterIPs
    and the addresses of the EndpointSlices given (a selector-less Service's), a Pod's IPs."""
    found: list[tuple[str, str]] = []
    if kind is BackendKind.SERVICE:
        spec = body.get("spec") or {}
        for ip in [*(spec.get("clusterIPs") or []), spec.get("clusterIP")]:
            if ip and ip != "None":
                found.append((str(ip), "clusterIP"))
        for endpoint_slice in slices:
            name = (endpoint_slice.get("metadata") or {}).get("name", "")
            for endpoint in endpoint_slice.get("endpoints") or []:
                found.extend((str(a), f"EndpointSlice {name}") for a in endpoint.get("addresses") or [])
    else:
        status = body.get("status") or {}
        for ip in [*((p or {}).get("ip") for p in status.get("podIPs") or []), status.get("podIP")]:
            if ip:
                found.append((str(ip), "podIP"))
    return tuple(dict.fromkeys(found))


def observe_backend(
    kind: BackendKind,
    body: dict[str, Any] | None,
    *,
    judged: bool = True,
    selectorless_allowed: bool = False,
    cluster_domain: str = "cluster.local",
    slices: Sequence[dict[str, Any]] = (),
    api_server: frozenset[str] = frozenset(),
    admin_denied: tuple[Network, ...] = (),
) -> BackendObservation:
    """Service: its ClusterIP (or DNS name when headless), selector, port -> targetPort; Pod: its IP
    and labels. `judged`: apply R45 (cloud services, declared by the cluster admin, are not judged).
    """
    if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
        return MISSING
    if judged:
        facts = backend_facts(kind, body)
        refusal = check_backend(facts, selectorless_allowed) or check_backend_addresses(
            facts,
            BackendAddresses(
                addresses=dialled_addresses(kind, body, slices),
                api_server=api_server,
                admin_denied=admin_denied,
            ),
        )
        if refusal is not None:
            return BackendObservation(exists=True, refusal=refusal)
    meta = body.get("metadata") or {}
    if kind is BackendKind.SERVICE:
        spec = body.get("spec") or {}
        cluster_ip = spec.get("clusterIP")
        host = (
            cluster_ip
            if cluster_ip and cluster_ip != "None"
            else dns_name(str(meta.get("name")), str(meta.get("namespace")), cluster_domain)
        )
        ports: dict[int, int | str] = {}
        for port in spec.get("ports") or []:
            if "port" in port:
                ports[int(port["port"])] = port.get("targetPort", port["port"])
        return BackendObservation(
            exists=True, host=host, pod_labels=dict(spec.get("selector") or {}), target_ports=ports
        )
    pod_ip = (body.get("status") or {}).get("podIP")
    return BackendObservation(exists=True, host=pod_ip or None, pod_labels=dict(meta.get("labels") or {}))


def admission_refusal(
    kind: BackendKind, body: dict[str, Any] | None, *, selectorless_allowed: bool
) -> BackendRefusal | None:
    """R45 at admission: what the webhook can know from the backend as it is now (a missing backend and a
    Pod still starting are not refused: both may settle by themselves, R1)."""
    if body is None:
        return None
    return check_backend(backend_facts(kind, body), selectorless_allowed, judge_phase=False)


class BackendObservations:
    """The last observation of each EndpointService's backend, by service (namespace, name): read again
    when the backend watch reports a change of the object it names, or after a re-list (anything may have
    changed)."""

    def __init__(self) -> None:
        self._by_service: dict[tuple[str, str], BackendObservation] = {}

    def get(self, service: tuple[str, str]) -> BackendObservation | None:
        return self._by_service.get(service)

    def put(self, service: tuple[str, str], observation: BackendObservation) -> None:
        self._by_service[service] = observation

    def forget(self, service: tuple[str, str]) -> None:
        self._by_service.pop(service, None)

    def forget_all(self) -> list[tuple[str, str]]:
        """Every service that held an observation (those without one read it on their next reconcile)."""
        services = list(self._by_service)
        self._by_service.clear()
        return services
