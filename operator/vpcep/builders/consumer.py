"""What a consumer sees of an Accepted endpoint: a selector-less ClusterIP Service and its
EndpointSlice (R18).

The Service maps clientPort -> the endpoint's own gatewayPort; the hand-made EndpointSlice points that
Service at the ready gateways. Neither carries a backend address or any provider detail.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from vpcep.api.endpoint import GatewayPort
from vpcep.builders.meta import (
    ENDPOINT_UID_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    Manifest,
    Owner,
    dns_label,
    stamped,
)

SLICE_MANAGER = "vpcep-operator.vpcep.io"  # a label value: no slash
SLICE_MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def consumer_service_name(endpoint_name: str) -> str:
    return dns_label("vpce", endpoint_name)


def endpoint_slice_name(endpoint_name: str) -> str:
    return consumer_service_name(endpoint_name) + "-gw"


def dns_name(service_name: str, namespace: str, cluster_domain: str) -> str:
    return f"{service_name}.{namespace}.svc.{cluster_domain}"


def _port_name(client_port: int) -> str:
    return f"tcp-{client_port}"


def _labels(endpoint: Owner) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, ENDPOINT_UID_LABEL: endpoint.uid}


def build_consumer_service(endpoint: Owner, ports: Sequence[GatewayPort]) -> Manifest:
    """ClusterIP Service, no selector (its EndpointSlice is ours), owned by the Endpoint (R18, R23)."""
    return stamped(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": consumer_service_name(endpoint.name),
                "namespace": endpoint.namespace,
                "labels": _labels(endpoint),
                "ownerReferences": [endpoint.reference()],
            },
            "spec": {
                "type": "ClusterIP",
                "ports": [
                    {
                        "name": _port_name(port.clientPort),
                        "protocol": "TCP",
                        "port": port.clientPort,
                        "targetPort": port.gatewayPort,
                    }
                    for port in sorted(ports, key=lambda p: p.clientPort)
                ],
            },
        }
    )


def build_endpoint_slice(
    endpoint: Owner, ports: Sequence[GatewayPort], gateway_addresses: Iterable[str]
) -> Manifest:
    """The ready gateways as the Service's endpoints; IPv4 only (the Service is single-stack IPv4)."""
    addresses = sorted(
        {a for a in gateway_addresses if isinstance(ipaddress.ip_address(a), ipaddress.IPv4Address)}
    )
    service_name = consumer_service_name(endpoint.name)
    return stamped(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": endpoint_slice_name(endpoint.name),
                "namespace": endpoint.namespace,
                "labels": {
                    **_labels(endpoint),
                    SERVICE_NAME_LABEL: service_name,
                    SLICE_MANAGED_BY_LABEL: SLICE_MANAGER,
                },
                "ownerReferences": [endpoint.reference()],
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}} for address in addresses],
            "ports": [
                {"name": _port_name(port.clientPort), "protocol": "TCP", "port": port.gatewayPort}
                for port in sorted(ports, key=lambda p: p.clientPort)
            ],
        }
    )


def gateway_egress_policy_name(endpoint_name: str) -> str:
    return dns_label("vpce-egress", endpoint_name)


def build_gateway_egress_policy(
    endpoint: Owner, destinations: Sequence[str], server_ports: Sequence[int]
) -> Manifest:
    """Gateway-type endpoint (R38): no node IP; egress from the consumer namespace to the service's
    destinations.

    Additive to whatever default-deny egress the namespace has; owned by the Endpoint so deleting
    it closes it.
    """
    return stamped(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": gateway_egress_policy_name(endpoint.name),
                "namespace": endpoint.namespace,
                "labels": _labels(endpoint),
                "ownerReferences": [endpoint.reference()],
            },
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {"ipBlock": {"cidr": _as_cidr(destination)}}
                            for destination in sorted(destinations)
                        ],
                        "ports": [{"protocol": "TCP", "port": port} for port in sorted(set(server_ports))],
                    }
                ],
            },
        }
    )


def _as_cidr(destination: str) -> str:
    return str(ipaddress.ip_network(destination, strict=False))
