"""The gateway's status object stays bounded whatever the number of routes, and no endpoint it cannot list is
taken for healthy (R52, R32): the agent's real report (bounded_status), serialized as its ConfigMap writer
sends it, read back through the operator's own cache projection and fleet view."""

from __future__ import annotations

import json
import uuid

from vpcep.api.routing import LISTED_PROBLEMS, BackendHealth
from vpcep.gateway.status import bounded_status, status_config_map
from vpcep.state.fleet import FleetObserver, FleetView, problem_endpoints
from vpcep.state.records import GATEWAYS_KEY, index_operator_config_maps

MIB = 1 << 20
ROUTES = 10_000


def dead_backend(endpoint_id: str, port: int) -> BackendHealth:
    """What gateway/health.py reports for a backend HAProxy's checks find down."""
    return BackendHealth(
        endpointId=endpoint_id,
        reachable=False,
        message=f"gateway port {port}: backend 10.96.17.4:5432 unreachable from gateway "
        '(DOWN 1/2: Layer4 connection problem, info: "Connection refused")',
    )


def fleet_of(body: dict) -> FleetView:
    """The operator's reading of that ConfigMap, as its watch would deliver it."""
    body = {**body, "metadata": {**body["metadata"], "resourceVersion": "42", "uid": "u"}}
    record = index_operator_config_maps(body)[GATEWAYS_KEY]
    assert record.status is not None, record.error
    return FleetObserver().view([record], 0.0, 30.0)


def test_ten_thousand_routes_behind_a_dead_backend_keep_the_status_under_1_mib_and_all_unreachable() -> None:
    ids = [str(uuid.uuid4()) for _ in range(ROUTES)]
    status = bounded_status(
        gateway="vpcep-gateway-7d9c-x2x",
        address="10.244.1.7",
        heartbeat="2026-12-03T17:00:00.000000Z",
        applied_resource_version=123456,
        rejected={},
        unhealthy=[dead_backend(endpoint_id, 20000 + i) for i, endpoint_id in enumerate(ids)],
        error="",
    )
    body = status_config_map("vpcep-gateway-vpcep-gateway-7d9c-x2x", status, "pod-uid")
    size = len(json.dumps(body).encode())
    assert size < MIB / 4, size  # about 170 KB (2.3 MB unbounded): room for every problem kind at once
    fleet = fleet_of(body)
    assert fleet.ready[0].unhealthyBackendsTotal == ROUTES
    assert len(fleet.ready[0].unhealthyBackends) == LISTED_PROBLEMS
    # Every one of them is reported unreachable: listed ones with the gateway's words, the rest by short id.
    verdicts = [fleet.unreachable(endpoint_id) for endpoint_id in ids]
    assert all(verdicts), sum(1 for v in verdicts if not v)
    listed = {health.endpointId for health in fleet.ready[0].unhealthyBackends}
    unlisted = next(endpoint_id for endpoint_id in ids if endpoint_id not in listed)
    assert "one of 10000 unreachable backends" in (fleet.unreachable(unlisted) or "")
    # ... and an endpoint whose backend is fine is not.
    assert fleet.unreachable(str(uuid.uuid4())) is None


def test_every_route_refused_and_every_backend_dead_at_once_still_fits() -> None:
    ids = [str(uuid.uuid4()) for _ in range(ROUTES)]
    refused = {
        endpoint_id: "haproxy: cannot bind socket [0.0.0.0:20001] " + "x" * 2000 for endpoint_id in ids
    }
    status = bounded_status(
        gateway="gw",
        address="10.244.1.7",
        heartbeat="2026-12-03T17:00:00.000000Z",
        applied_resource_version=1,
        rejected=refused,
        unhealthy=[dead_backend(endpoint_id, 20000) for endpoint_id in ids],
        error="[ALERT] haproxy refused the configuration\n" * 10_000,
    )
    body = status_config_map("vpcep-gateway-gw", status, None)
    assert len(json.dumps(body).encode()) < MIB / 2
    fleet = fleet_of(body)
    assert all(fleet.rejected(endpoint_id) for endpoint_id in ids)
    assert fleet.rejected(str(uuid.uuid4())) is None


def test_past_the_digest_an_unlisted_endpoint_is_possibly_affected_never_healthy(monkeypatch) -> None:
    import vpcep.gateway.status as status_module

    monkeypatch.setattr(status_module, "DIGEST_ENTRIES", 10)
    ids = [str(uuid.uuid4()) for _ in range(LISTED_PROBLEMS + 50)]
    status = bounded_status(
        gateway="gw",
        address="10.244.1.7",
        heartbeat="",
        applied_resource_version=1,
        rejected={},
        unhealthy=[dead_backend(endpoint_id, 20000) for endpoint_id in ids],
        error="",
    )
    assert status.unlistedProblems == 40
    fleet = fleet_of(status_config_map("vpcep-gateway-gw", status, None))
    assert all(fleet.unreachable(endpoint_id) for endpoint_id in ids)
    assert "may be among them" in (fleet.unreachable(str(uuid.uuid4())) or "")


def test_a_change_past_the_listed_problems_is_a_change_the_operator_notices() -> None:
    """Dependents are woken when the digest changes (vpcep.state.fleet.GatewayFleet.concerned)."""
    ids = sorted(str(uuid.uuid4()) for _ in range(LISTED_PROBLEMS + 5))

    def fleet(unhealthy: list[str]) -> FleetView:
        status = bounded_status(
            gateway="gw",
            address="10.244.1.7",
            heartbeat="",
            applied_resource_version=1,
            rejected={},
            unhealthy=[dead_backend(endpoint_id, 20000) for endpoint_id in unhealthy],
            error="",
        )
        return fleet_of(status_config_map("vpcep-gateway-gw", status, None))

    assert problem_endpoints(fleet(ids)) != problem_endpoints(fleet(ids[:-1]))


def test_mid_upgrade_reports_are_read_both_ways_R52() -> None:
    """An older operator refuses keys it does not know: a report with no more than the listed problems carries
    only the keys it knew; and this operator reads a newer gateway's report with keys it does not know."""
    status = bounded_status(
        gateway="gw",
        address="10.244.1.7",
        heartbeat="2026-12-03T17:00:00.000000Z",
        applied_resource_version=0,
        rejected={"e-1": "port in use"},
        unhealthy=[],
        error="",
    )
    report = json.loads(status_config_map("vpcep-gateway-gw", status, None)["data"]["status.json"])
    assert set(report) == {
        "gateway",
        "address",
        "heartbeat",
        "appliedResourceVersion",
        "rejectedRoutes",
        "unhealthyBackends",
        "error",
    }
    newer = {**report, "aFieldOfTomorrow": True}
    body = {
        "metadata": {"name": "vpcep-gateway-gw", "labels": {"vpcep.io/gateway-status": "true"}},
        "data": {"status.json": json.dumps(newer)},
    }
    assert fleet_of(body).rejected("e-1") == "gw: port in use"
    # R52's draining flag is written only when set, and this operator reads it.
    draining = {**body, "data": {"status.json": json.dumps({**report, "draining": True})}}
    assert [status.gateway for status in fleet_of(draining).draining] == ["gw"]
