"""The provider-side NetworkPolicy that admits the gateway pods to the backend's ports (R31; switchable).

Owned by the EndpointService (same namespace), so it goes when the service goes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from vpcep.builders.meta import MANAGED_BY, MANAGED_BY_LABEL, Manifest, Owner, dns_label, stamped

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def provider_policy_name(endpoint_service_name: str) -> str:
    return dns_label("vpcep-gateways", endpoint_service_name)


def build_provider_policy(
    service: Owner,
    backend_pod_labels: Mapping[str, str],
    target_ports: Sequence[int | str],
    operator_namespace: str,
    gateway_pod_labels: Mapping[str, str],
) -> Manifest:
    """Ingress to the backend pods on their target ports (a Service's targetPort, or a Pod's serverPort)
    from the gateway pods in the operator namespace, and from nothing else this policy adds."""
    return stamped(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": provider_policy_name(service.name),
                "namespace": service.namespace,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY},
                "ownerReferences": [service.reference()],
            },
            "spec": {
                "podSelector": {"matchLabels": dict(sorted(backend_pod_labels.items()))},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {NAMESPACE_NAME_LABEL: operator_namespace}
                                },
                                "podSelector": {"matchLabels": dict(sorted(gateway_pod_labels.items()))},
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": port} for port in _unique(target_ports)],
                    }
                ],
            },
        }
    )


def _unique(ports: Sequence[int | str]) -> list[int | str]:
    seen: list[int | str] = []
    for port in ports:
        if port not in seen:
            seen.append(port)
    return seen
