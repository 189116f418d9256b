"""Marker ids (per service) and gateway listen ports (per endpoint port mapping).

Marker ids (R33) are monotonic per service: a new endpoint gets one more than the highest id the
service has ever handed out (its status.lastMarkerId high-water mark, or the highest live id if that is
larger). Ids are never reused, so a provider that keyed an ACL on a marker id can never see a new,
different consumer arrive with it. An assigned id is kept for the endpoint's life.

Gateway ports are the lowest free ports of a configured range. A mapping keeps its port while it exists;
ports of other endpoints are never handed out; an empty range is PortsExhausted.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from pydantic import Field, model_validator

from vpcep.api.endpoint import GatewayPort
from vpcep.domain.facts import Frozen

DEFAULT_GATEWAY_PORT_FIRST = 20000
# Below the kernel's ephemeral range (32768-60999): HAProxy's own connections to backends draw from it,
# and a listener on a port one of them holds cannot bind.
DEFAULT_GATEWAY_PORT_LAST = 32767


class PortRange(Frozen):
    """Inclusive range the gateways listen in (Helm value `gateway.ports`, operator config `gatewayPorts`)."""

    first: int = Field(default=DEFAULT_GATEWAY_PORT_FIRST, ge=1, le=65535)
    last: int = Field(default=DEFAULT_GATEWAY_PORT_LAST, ge=1, le=65535)

    @model_validator(mode="after")
    def _ordered(self) -> PortRange:
        if self.first > self.last:
            raise ValueError(f"port range {self.first}-{self.last} is empty: first must be <= last")
        return self

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.first <= port <= self.last

    @property
    def size(self) -> int:
        return self.last - self.first + 1


def allocate_marker_id(current: int | None, taken: Collection[int], high_water: int = 0) -> int:
    """The endpoint's marker id: keep `current` unless another endpoint of the service holds it.

    `taken` are the marker ids of the service's *other* endpoints.
    """
    if current is not None and current > 0 and current not in taken:
        return current
    return max(high_water, max(taken, default=0), current or 0) + 1


class PortAllocation(Frozen):
    """Gateway ports for an endpoint's mappings; `unallocated` lists clientPorts the range had no room for."""

    ports: tuple[GatewayPort, ...] = ()
    unallocated: tuple[int, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.unallocated


def allocate_gateway_ports(
    client_ports: Sequence[int],
    current: Sequence[GatewayPort],
    taken: Collection[int],
    port_range: PortRange,
    free: Sequence[int] | None = None,
) -> PortAllocation:
    """One gateway port per clientPort, in `client_ports` order.

    `current` is what the endpoint already holds (status.gatewayPorts), `taken` what *other* endpoints hold.
    Existing assignments are kept if still valid (in range, not taken by someone else, not duplicated);
    mappings that disappeared give their ports back. New ports are the lowest of the range not in `taken`;
    when `free` is given (the lowest ports nobody else holds, ascending, at least one per mapping plus one per
    current port) they are drawn from it instead, so `taken` need only cover `current`.
    """
    wanted = list(dict.fromkeys(client_ports))
    used: set[int] = set(taken)
    kept: dict[int, int] = {}
    for assignment in current:
        port = assignment.gatewayPort
        still_wanted = assignment.clientPort in wanted and assignment.clientPort not in kept
        if still_wanted and port in port_range and port not in used:
            kept[assignment.clientPort] = port
            used.add(port)
    result: list[GatewayPort] = []
    unallocated: list[int] = []
    candidates = iter(free) if free is not None else iter(range(port_range.first, port_range.last + 1))
    for client_port in wanted:
        if client_port in kept:
            result.append(GatewayPort(clientPort=client_port, gatewayPort=kept[client_port]))
            continue
        candidate = next((p for p in candidates if p in port_range and p not in used), None)
        if candidate is None:
            unallocated.append(client_port)
            continue
        used.add(candidate)
        result.append(GatewayPort(clientPort=client_port, gatewayPort=candidate))
    return PortAllocation(ports=tuple(result), unallocated=tuple(unallocated))
