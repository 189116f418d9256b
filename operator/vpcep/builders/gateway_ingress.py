"""The gateway ingress NetworkPolicy of one consumer namespace (R42).

The gateway pods listen on one port per endpoint port mapping, and their addresses are in every consumer's
EndpointSlice: without a policy any pod of the cluster could dial any endpoint's gateway port. The chart ships
a default-deny ingress policy for the gateway pods; the operator adds, in its own namespace, one policy per
consumer namespace that admits the pods of that namespace -- and nothing else -- to the gateway ports of that
namespace's established endpoints. A `vpce-*` Service's ClusterIP is DNATed to the same gateway ports, so a
stranger dialing it is refused by the same policy.

Granularity: one policy per consumer namespace (not per endpoint) -- see docs/decisions.md and
bench/gateway_ingress.py for the measurement (objects and bytes at 10,000 endpoints / 2,000 namespaces).

`accessControl.sourceCIDRs` (R34) is not turned into `ipBlock` peers: NetworkPolicy peers are OR-ed, so an
ipBlock beside (or instead of) the namespace selector would admit any pod of any namespace whose address lies
in the range -- a consumer could open a provider's backend to the whole cluster. The namespace selector holds
the tenant line; HAProxy narrows each endpoint to its sourceCIDRs (R34) within it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from vpcep.builders.meta import MANAGED_BY, MANAGED_BY_LABEL, Manifest, dns_label, stamped
from vpcep.builders.provider_policy import NAMESPACE_NAME_LABEL

# The consumer namespace a gateway ingress policy admits (a namespace name is a DNS label: a valid value).
CONSUMER_NAMESPACE_LABEL = "vpcep.io/gateway-ingress-for"
NAME_PREFIX = "vpcep-ingress"
NAME_LIMIT = 253  # NetworkPolicy names are DNS subdomains: prefix + any namespace name fits unshortened


def gateway_ingress_policy_name(consumer_namespace: str) -> str:
    return dns_label(NAME_PREFIX, consumer_namespace, NAME_LIMIT)


def port_ranges(ports: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, de-duplicated ports as inclusive runs: ports are handed out lowest first, so a namespace's
    ports are often neighbours and one `port`/`endPort` entry covers many (fewer bytes per policy)."""
    runs: list[tuple[int, int]] = []
    for port in sorted(set(ports)):
        if runs and port == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], port)
        else:
            runs.append((port, port))
    return runs


def _port_entry(first: int, last: int) -> Manifest:
    entry: Manifest = {"protocol": "TCP", "port": first}
    if last != first:
        entry["endPort"] = last
    return entry


def build_gateway_ingress_policy(
    consumer_namespace: str,
    gateway_ports: Iterable[int],
    operator_namespace: str,
    gateway_pod_labels: Mapping[str, str],
) -> Manifest:
    """Ingress to the gateway pods on `gateway_ports` from the pods of `consumer_namespace` only.

    No ownerReference: the owner would be the consumer's Endpoints, in another namespace (Kubernetes has no
    cross-namespace owners); the operator deletes the policy when the namespace has no established endpoint
    left, and its own watch restores an edited or deleted one.
    """
    return stamped(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": gateway_ingress_policy_name(consumer_namespace),
                "namespace": operator_namespace,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY, CONSUMER_NAMESPACE_LABEL: consumer_namespace},
            },
            "spec": {
                "podSelector": {"matchLabels": dict(sorted(gateway_pod_labels.items()))},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: consumer_namespace}}}
                        ],
                        "ports": [_port_entry(first, last) for first, last in port_ranges(gateway_ports)],
                    }
                ],
            },
        }
    )


def admitted_ports(body: Manifest) -> frozenset[int]:
    """The TCP ports a stored gateway ingress policy admits (what the operator wrote, or someone's edit)."""
    ports: set[int] = set()
    for rule in (body.get("spec") or {}).get("ingress") or []:
        for entry in rule.get("ports") or []:
            port = entry.get("port")
            if entry.get("protocol", "TCP") != "TCP" or not isinstance(port, int):
                continue
            end = entry.get("endPort")
            ports.update(range(port, (end if isinstance(end, int) and end >= port else port) + 1))
    return frozenset(ports)
