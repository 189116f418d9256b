"""What the operator needs to know about a service's backend Service or Pod (R1, R31): read on demand.

Backends are not indexed cluster-wide (that would hold every Service and Pod of the cluster in memory);
the EndpointService reconcile GETs its one backend and keeps this small observation, and the Service/Pod
watch only wakes the EndpointServices that reference the object that changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vpcep.api.endpoint_service import BackendKind


@dataclass(frozen=True)
class BackendObservation:
    exists: bool
    host: str | None = None
    pod_labels: dict[str, str] = field(default_factory=dict)
    target_ports: dict[int, int | str] = field(default_factory=dict)

    def target_port(self, server_port: int) -> int | str:
        return self.target_ports.get(server_port, server_port)


MISSING = BackendObservation(exists=False)


def observe_backend(kind: BackendKind, body: dict[str, Any] | None) -> BackendObservation:
    """Service: its ClusterIP (or DNS name when headless), selector, port -> targetPort; Pod: its IP
    and labels.
    """
    if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
        return MISSING
    meta = body.get("metadata") or {}
    if kind is BackendKind.SERVICE:
        spec = body.get("spec") or {}
        cluster_ip = spec.get("clusterIP")
        host = (
            cluster_ip
            if cluster_ip and cluster_ip != "None"
            else f"{meta.get('name')}.{meta.get('namespace')}.svc.cluster.local"
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
