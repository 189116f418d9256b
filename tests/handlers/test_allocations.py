"""The operator's marker-id and gateway-port ledger (R33): what an endpoint holds is known before its status
is written, and a service's high-water mark never goes down, so ids are never reused."""

from __future__ import annotations

from vpcep.api.endpoint import GatewayPort
from vpcep.handlers.allocations import Allocations

SERVICE = "prov/web"


def test_an_endpoint_keeps_the_marker_it_was_handed_before_its_status_is_written() -> None:
    ledger = Allocations()
    ledger.record("uid-a", SERVICE, 1, [GatewayPort(clientPort=80, gatewayPort=20000)])
    assert ledger.marker_of("uid-a", SERVICE) == 1
    assert ledger.marker_of("uid-a", "prov/other") is None, "a marker belongs to one service"
    assert ledger.marker_of("uid-b", SERVICE) is None
    assert ledger.markers_taken_by_others("uid-a", SERVICE, [1]) == frozenset()
    assert ledger.markers_taken_by_others("uid-b", SERVICE, [1]) == frozenset({1})


def test_released_markers_are_forgotten_but_the_high_water_mark_stays() -> None:
    ledger = Allocations()
    ledger.record("uid-a", SERVICE, 1, [])
    ledger.record("uid-b", SERVICE, 2, [])
    ledger.release("uid-b")
    assert ledger.marker_of("uid-b", SERVICE) is None
    assert ledger.marker_high_water(SERVICE) == 2, "a deleted endpoint's id is never handed out again"
