"""The operator judges gateways alive by its own clock and keeps them through outages (R52), and believes only
reports of Ready gateway pods (R47): vpcep.state.fleet.FleetObserver over the records its cache keeps."""

from __future__ import annotations

from vpcep.api.routing import GatewayStatus
from vpcep.config import OperatorConfig
from vpcep.controllers.sources import GATEWAY_PODS, build_sources
from vpcep.domain.fleet_trust import DistrustReason, GatewayPod
from vpcep.state.fleet import FleetObserver, gateway_pod
from vpcep.state.records import GatewayRecord

TIMEOUT = 30.0
DEPLOYMENT = "vpcep-gateway"


def record(
    pod: str, version: int, heartbeat: str = "2026-12-03T17:00:00Z", address: str = ""
) -> GatewayRecord:
    address = address or f"10.0.0.{pod[-1]}"
    status = GatewayStatus(gateway=pod, address=address, heartbeat=heartbeat, appliedResourceVersion=100)
    return GatewayRecord(status, None, name=f"vpcep-gateway-{pod}", uid=f"uid-{pod}", version=str(version))


def ready_names(observer: FleetObserver, records: list[GatewayRecord], now: float) -> list[str]:
    return [status.gateway for status in observer.view(records, now, TIMEOUT).ready]


def test_a_gateway_whose_clock_is_far_behind_stays_ready_while_its_reports_keep_changing() -> None:
    observer = FleetObserver()
    for second in range(0, 300, 5):  # its clock says 1999 and never moves on: only the object changes
        view = observer.view(
            [record("gw-1", second, heartbeat="1999-01-01T00:00:00Z")], float(second), TIMEOUT
        )
        assert [s.gateway for s in view.ready] == ["gw-1"] and not view.held_static


def test_a_gateway_whose_clock_runs_ahead_is_withdrawn_once_its_reports_stop_changing() -> None:
    """A clock an hour fast kept a stale gateway for an hour when heartbeats were compared with ours."""
    observer = FleetObserver()
    fast = "2026-12-03T18:00:00Z"
    assert ready_names(observer, [record("gw-1", 1, fast), record("gw-2", 1)], 0.0) == ["gw-1", "gw-2"]
    # gw-2 keeps reporting; gw-1's object stops changing (its agent hung) while its time says "the future"
    assert ready_names(observer, [record("gw-1", 1, fast), record("gw-2", 7)], 20.0) == ["gw-1", "gw-2"]
    assert ready_names(observer, [record("gw-1", 1, fast), record("gw-2", 9)], 31.0) == ["gw-2"]


def test_when_every_gateway_goes_stale_at_once_the_last_good_set_is_kept_and_said() -> None:
    observer = FleetObserver()
    observer.view([record("gw-1", 1), record("gw-2", 1), record("gw-3", 1)], 0.0, TIMEOUT)
    # gw-3 stops alone first: withdrawn, as before
    view = observer.view([record("gw-1", 2), record("gw-2", 2), record("gw-3", 1)], 31.0, TIMEOUT)
    assert [s.gateway for s in view.ready] == ["gw-1", "gw-2"] and not view.held_static
    # then nothing changes any more (API outage, refused writes, paused agents): fail static
    view = observer.view([record("gw-1", 2), record("gw-2", 2), record("gw-3", 1)], 600.0, TIMEOUT)
    assert [s.gateway for s in view.ready] == ["gw-1", "gw-2"]  # gw-3, stale before, is not brought back
    assert view.held_static and view.addresses == ("10.0.0.1", "10.0.0.2")
    assert "no fresh status report from any gateway" in (view.blocking_error(10**9) or "")
    assert view.blocking_error(1) is None  # routes they applied are served: established endpoints stay


def test_after_an_outage_the_first_report_ends_the_hold_without_withdrawing_the_others_at_once() -> None:
    observer = FleetObserver()
    observer.view([record("gw-1", 1), record("gw-2", 1)], 0.0, TIMEOUT)
    assert observer.view([record("gw-1", 1), record("gw-2", 1)], 100.0, TIMEOUT).held_static
    view = observer.view([record("gw-1", 5), record("gw-2", 1)], 101.0, TIMEOUT)  # gw-1 writes first
    assert [s.gateway for s in view.ready] == ["gw-1", "gw-2"] and not view.held_static
    # gw-2 never reports again: withdrawn one timeout later, gw-1 still fresh
    assert ready_names(observer, [record("gw-1", 9), record("gw-2", 1)], 132.0) == ["gw-1"]


def test_a_status_object_that_is_deleted_is_not_held() -> None:
    observer = FleetObserver()
    observer.view([record("gw-1", 1)], 0.0, TIMEOUT)
    view = observer.view([], 100.0, TIMEOUT)
    assert view.ready == () and not view.held_static


def pod(name: str, ip: str, ready: bool = True) -> GatewayPod:
    return GatewayPod(
        name=name,
        ips=(ip,),
        phase="Running",
        ready=ready,
        controller_kind="ReplicaSet",
        controller_name=f"{DEPLOYMENT}-5d8f",
        pod_template_hash="5d8f",
    )


def test_only_reports_of_ready_gateway_pods_at_their_ip_count_R47() -> None:
    observer = FleetObserver()
    records = [
        record("gw-1", 1, address="10.0.0.1"),
        record("gw-2", 1, address="10.0.0.99"),  # claims an address that is not its pod's
        record("ghost", 1, address="10.0.0.7"),  # no such pod
        record("gw-4", 1, address="10.0.0.4"),  # pod not Ready
    ]
    pods = [pod("gw-1", "10.0.0.1"), pod("gw-2", "10.0.0.2"), pod("gw-4", "10.0.0.4", ready=False)]
    view = observer.view(records, 0.0, TIMEOUT, pods, DEPLOYMENT)
    assert view.addresses == ("10.0.0.1",)
    reasons = {verdict.object_name: verdict.reason for verdict in view.distrusted}
    assert reasons == {
        "vpcep-gateway-gw-2": DistrustReason.ADDRESS_MISMATCH,
        "vpcep-gateway-ghost": DistrustReason.NO_SUCH_POD,
        "vpcep-gateway-gw-4": DistrustReason.NOT_READY,
    }
    assert len(observer.unreported(view)) == 3
    assert observer.unreported(observer.view(records, 1.0, TIMEOUT, pods, DEPLOYMENT)) == []  # once each


def test_a_gateway_pod_that_is_not_ready_is_withdrawn_even_while_the_fleet_is_held() -> None:
    """Fail static keeps what may still serve; a pod kubelet reports not Ready is not that."""
    observer = FleetObserver()
    records = [record("gw-1", 1), record("gw-2", 1)]
    observer.view(records, 0.0, TIMEOUT, [pod("gw-1", "10.0.0.1"), pod("gw-2", "10.0.0.2")], DEPLOYMENT)
    held = observer.view(
        records, 100.0, TIMEOUT, [pod("gw-1", "10.0.0.1"), pod("gw-2", "10.0.0.2", ready=False)], DEPLOYMENT
    )
    assert held.held_static and held.addresses == ("10.0.0.1",)


def test_the_gateway_pod_watch_is_label_selected_in_the_operator_namespace_when_verifying_R47() -> None:
    assert GATEWAY_PODS not in build_sources(OperatorConfig())  # no pod rights needed without it
    sources = build_sources(OperatorConfig(namespace="vpcep-x", verifyGatewayPods=True))
    (target,) = sources[GATEWAY_PODS].targets
    assert (target.kind.kind, target.namespace) == ("Pod", "vpcep-x")
    assert target.label_selector == "app.kubernetes.io/name=vpcep-gateway"


def test_a_gateway_pod_is_read_as_kubelet_and_the_deployment_controller_wrote_it() -> None:
    body = {
        "metadata": {
            "name": "vpcep-gateway-5f7c9d-abcde",
            "labels": {"app.kubernetes.io/name": "vpcep-gateway", "pod-template-hash": "5f7c9d"},
            "ownerReferences": [
                {"kind": "Node", "name": "n1"},
                {"kind": "ReplicaSet", "name": "vpcep-gateway-5f7c9d", "controller": True},
            ],
        },
        "status": {
            "phase": "Running",
            "podIP": "10.244.1.7",
            "podIPs": [{"ip": "10.244.1.7"}, {"ip": "fd00::7"}],
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
        },
    }
    assert gateway_pod(body) == GatewayPod(
        name="vpcep-gateway-5f7c9d-abcde",
        ips=("10.244.1.7", "fd00::7"),
        phase="Running",
        ready=True,
        controller_kind="ReplicaSet",
        controller_name="vpcep-gateway-5f7c9d",
        pod_template_hash="5f7c9d",
    )
    terminating = {**body, "metadata": {**body["metadata"], "deletionTimestamp": "2026-12-03T17:00:00Z"}}
    assert gateway_pod(terminating).terminating
