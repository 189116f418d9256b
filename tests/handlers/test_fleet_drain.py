"""A terminating gateway leaves the EndpointSlices first and drains (R52): vpcep.state.fleet sees it draining
from its own report or from its pod's deletionTimestamp, takes its address out at once, never waits for it,
and keeps it in R21's cap share while it holds sessions (vpcep.domain.connection_cap)."""

from __future__ import annotations

from vpcep.api.routing import GatewayStatus
from vpcep.domain.connection_cap import per_gateway_cap
from vpcep.domain.fleet_trust import GatewayPod
from vpcep.gateway.drain import GatewayDrain
from vpcep.state.fleet import FleetObserver, GatewayFleet
from vpcep.state.records import GatewayRecord

TIMEOUT = 30.0
DEPLOYMENT = "vpcep-gateway"


def record(pod: str, version: int, draining: bool = False, applied: int = 100) -> GatewayRecord:
    status = GatewayStatus(
        gateway=pod,
        address=f"10.0.0.{pod[-1]}",
        heartbeat="2026-12-03T17:00:00Z",
        appliedResourceVersion=applied,
        draining=draining,
    )
    return GatewayRecord(status, None, name=f"vpcep-gateway-{pod}", uid=f"uid-{pod}", version=str(version))


def pod(name: str, terminating: bool = False, ready: bool = True) -> GatewayPod:
    return GatewayPod(
        name=name,
        ips=(f"10.0.0.{name[-1]}",),
        phase="Running",
        ready=ready,
        terminating=terminating,
        controller_kind="ReplicaSet",
        controller_name=f"{DEPLOYMENT}-5d8f",
        pod_template_hash="5d8f",
    )


def test_a_gateway_reporting_draining_leaves_the_slices_but_keeps_its_cap_share_R52() -> None:
    observer, fleet = FleetObserver(), GatewayFleet()
    three = observer.view([record("gw-1", 1), record("gw-2", 1), record("gw-3", 1)], 0.0, TIMEOUT)
    fleet.concerned(three, lambda _id: None)
    assert three.addresses == ("10.0.0.1", "10.0.0.2", "10.0.0.3") and three.cap_sharers == 3

    records = [record("gw-1", 2, draining=True), record("gw-2", 2), record("gw-3", 2)]
    view = observer.view(records, 1.0, TIMEOUT)
    assert view.addresses == ("10.0.0.2", "10.0.0.3")  # out of every EndpointSlice at once
    assert [s.gateway for s in view.draining] == ["gw-1"]
    # No route rewrite: the share stays ⌈3000 ÷ 3⌉, and the draining gateway's sessions still count.
    assert view.cap_sharers == 3 and per_gateway_cap(3000, view.cap_sharers) == 1000
    assert fleet.moved(view)  # established endpoints are woken to rewrite their slices

    # A draining gateway is never waited for (it may never apply a new route) nor blamed.
    late = observer.view(
        [record("gw-1", 3, draining=True, applied=5), record("gw-2", 3), record("gw-3", 3)], 2.0, TIMEOUT
    )
    assert late.applied(100) and late.rejected("e") is None

    # Its report goes (the pod and its status ConfigMap are gone): the share changes, the routes follow.
    fleet.concerned(late, lambda _id: None)
    gone = observer.view([record("gw-2", 4), record("gw-3", 4)], 3.0, TIMEOUT)
    assert gone.addresses == late.addresses and gone.cap_sharers == 2
    assert fleet.moved(gone)


def test_a_terminating_gateway_pod_drains_before_its_agent_says_so_R52_R47() -> None:
    """The pod's deletionTimestamp may come first (the operator reads it from the API server); a terminating
    pod that fails its readiness probe still holds sessions: draining, not distrusted."""
    observer = FleetObserver()
    records = [record("gw-1", 1), record("gw-2", 1)]
    pods = [pod("gw-1", terminating=True, ready=False), pod("gw-2")]
    view = observer.view(records, 0.0, TIMEOUT, pods, DEPLOYMENT)
    assert view.addresses == ("10.0.0.2",)
    assert [s.gateway for s in view.draining] == ["gw-1"] and view.distrusted == ()
    assert view.cap_sharers == 2


def test_when_the_only_gateway_drains_no_slice_lists_it_R52() -> None:
    view = FleetObserver().view([record("gw-1", 1, draining=True)], 0.0, TIMEOUT)
    assert view.addresses == () and view.ready == () and view.cap_sharers == 1


def test_the_agent_drain_keeps_accepting_for_the_leave_delay_then_stops_listening_once_R52() -> None:
    now = [100.0]
    drain = GatewayDrain(leave_s=5, sessions_s=20, clock=lambda: now[0])
    assert not drain.stop_listening_due() and drain.started is None
    drain.begin()
    now[0] = 104.9
    drain.begin()  # a second SIGTERM changes nothing
    assert not drain.stop_listening_due() and drain.listening
    now[0] = 105.0
    assert drain.stop_listening_due() and not drain.listening
    assert not drain.stop_listening_due()  # once
    now[0] = 124.9
    assert not drain.overdue()
    now[0] = 125.0
    assert drain.overdue()
