"""The operator's marker-id and gateway-port ledger (R33): what an endpoint holds is known before its status
is written, and a service's high-water mark never goes down, so ids are never reused."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vpcep.api.endpoint import GatewayPort
from vpcep.state.allocations import Allocations

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


FIRST, LAST = 30000, 30011
holders = st.sampled_from(["uid-a", "uid-b", "uid-c", "uid-d"])
port_sets = st.lists(st.integers(FIRST - 2, LAST + 2), max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(holders, st.one_of(st.none(), port_sets)), max_size=40), holders, st.integers(0, 5))
def test_lowest_free_ports_are_the_lowest_nobody_else_holds(
    steps: list[tuple[str, list[int] | None]], asker: str, count: int
) -> None:
    """The ledger's shortcut (a moving mark instead of a walk over every held port) answers what a full
    walk would, whatever records and releases came before (ports never shared: R30's gateways bind them)."""
    ledger = Allocations()
    held: dict[str, set[int]] = {}
    for uid, ports in steps:
        if ports is None:
            ledger.release(uid)
            held.pop(uid, None)
        else:
            ledger.record(
                uid, None, None, [GatewayPort(clientPort=n + 1, gatewayPort=p) for n, p in enumerate(ports)]
            )
            held[uid] = set(ports)
        others = set().union(*(ports for owner, ports in held.items() if owner != asker))
        expected = [p for p in range(FIRST, LAST + 1) if p not in others][:count]
        assert list(ledger.lowest_free_ports(asker, count, FIRST, LAST)) == expected


def test_ports_a_route_names_are_held_for_its_endpoint_until_its_next_decision_R50() -> None:
    """A leader killed between writing an endpoint's route and its status: the next leader seeds the ledger
    from statuses and from routes, so the route's port is not handed to another endpoint while the gateways
    still serve it (bench/chaos.py found such overlaps at takeovers)."""
    from vpcep.state.records import index_operator_config_maps

    body = {
        "metadata": {
            "name": "vpcep-route-e1",
            "resourceVersion": "7",
            "labels": {
                "vpcep.io/route": "true",
                "vpcep.io/endpoint-id": "e1",
                "vpcep.io/endpoint-uid": "uid-a",
            },
        },
        "data": {"route.json": '{"listeners": [{"gatewayPort": 30000}, {"gatewayPort": 30002}]}'},
    }
    (route,) = index_operator_config_maps(body).values()
    assert route.gateway_ports == (30000, 30002)

    ledger = Allocations()
    ledger.record("uid-a", SERVICE, 1, [])  # its status names no port yet
    ledger.hold_ports(route.endpoint_uid, route.gateway_ports)
    assert ledger.lowest_free_ports("uid-b", 2, FIRST, LAST) == (30001, 30003)
    assert ledger.lowest_free_ports("uid-a", 2, FIRST, LAST) == (30000, 30001)  # its own come back first
    ledger.record("uid-a", SERVICE, 1, [GatewayPort(clientPort=80, gatewayPort=30001)])  # its next decision
    assert ledger.lowest_free_ports("uid-b", 1, FIRST, LAST) == (30000,)
