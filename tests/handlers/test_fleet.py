"""The gateway fleet as the operator reads it (R30, R32): which gateway-wide error an endpoint waits on."""

from __future__ import annotations

from vpcep.api.routing import GatewayStatus
from vpcep.state.fleet import FleetView


def gateway(name: str, applied: int, error: str = "") -> GatewayStatus:
    return GatewayStatus(
        gateway=name,
        address="10.0.0.1",
        heartbeat="2026-01-01T00:00:00Z",
        appliedResourceVersion=applied,
        error=error,
    )


def test_an_endpoint_waits_on_the_gateway_whose_error_keeps_its_route_out() -> None:
    fleet = FleetView(ready=(gateway("gw-a", 50), gateway("gw-b", 40, error="reload failed: bind 20001")))
    assert fleet.blocking_error(45) == "gateway gw-b: reload failed: bind 20001"
    assert fleet.blocking_error(None) == "gateway gw-b: reload failed: bind 20001"
    assert not fleet.applied(45)


def test_an_error_of_a_gateway_that_already_serves_the_route_is_not_quoted() -> None:
    fleet = FleetView(ready=(gateway("gw-a", 50), gateway("gw-b", 40, error="reload failed")))
    assert fleet.blocking_error(40) is None
    assert FleetView(ready=(gateway("gw-a", 50),)).blocking_error(60) is None
