"""Addresses no gateway may ever dial (R45): link-local, cloud metadata, and what the cluster admin lists.

Shared by the operator (a backend resolving into these is refused, vpcep.domain.backend) and the gateway
agent (defence in depth: it writes no server line for such an address, vpcep.gateway.reloader). The
API server's own addresses are denied too, but they are cluster facts the operator reads (the `default/
kubernetes` Service and its EndpointSlices), not constants: the operator checks them; the agent checks only
what it is configured with.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Why each range is denied, as a person reads it in a status message.
ALWAYS_DENIED: dict[str, str] = {
    "169.254.169.254/32": "a cloud metadata address",
    "fd00:ec2::254/128": "a cloud metadata address",
    "100.100.100.200/32": "a cloud metadata address",
    "169.254.0.0/16": "link-local",
    "fe80::/10": "link-local",
}


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or bare addresses) as networks; ValueError names the one that is not."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError as error:
            raise ValueError(f"{cidr!r} is not a CIDR: {error}") from None
    return tuple(networks)


def as_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address `text` is, or None (a DNS name). An IPv4-mapped IPv6 address counts as its IPv4."""
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def why_denied(text: str, admin_denied: Iterable[Network] = ()) -> str | None:
    """Why a gateway must not dial `text` (None: it may, or `text` is a DNS name: see the callers)."""
    address = as_address(text)
    if address is None:
        return None
    for cidr, why in ALWAYS_DENIED.items():
        if address in ipaddress.ip_network(cidr):
            return why
    for network in admin_denied:
        if address.version == network.version and address in network:
            return "in a CIDR the cluster admin denies to gateways"
    return None
