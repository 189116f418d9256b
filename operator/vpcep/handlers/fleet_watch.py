"""Which endpoints a gateway report concerns (R30, R32): woken by what changed, not all of them each time.

Every gateway rewrites its status ConfigMap on each heartbeat. Waking every waiting endpoint on every
report made a bulk create quadratic; now an endpoint waiting for its route wakes when the fleet has applied
the route version it waits for, established endpoints wake when the set of ready gateways changes (their
EndpointSlice lists them), and an endpoint wakes when a gateway starts or stops reporting a problem with it
(a refused route, an unreachable backend).
"""

from __future__ import annotations

import asyncio

from vpcep.handlers.gateways import FleetView
from vpcep.handlers.runtime import ENDPOINT_KEY, Runtime

FLEET_CHECK_SECONDS = 2.0


def problem_endpoints(fleet: FleetView) -> frozenset[tuple[str, str, str]]:
    """(gateway, endpoint id, problem) for every refused route and unreachable backend the fleet reports."""
    problems: set[tuple[str, str, str]] = set()
    for gateway in fleet.ready:
        problems.update(
            (gateway.gateway, endpoint_id, why) for endpoint_id, why in gateway.rejectedRoutes.items()
        )
        problems.update(
            (gateway.gateway, health.endpointId, health.message or "unreachable")
            for health in gateway.unhealthyBackends
            if not health.reachable
        )
    return frozenset(problems)


def wake_fleet_dependents(rt: Runtime, *, force: bool = False) -> None:
    fleet = rt.fleet()
    keys = {
        key for key, awaited in rt.waiting_for_gateways.items() if awaited is None or fleet.applied(awaited)
    }
    if force or fleet.addresses != rt.fleet_addresses:
        rt.fleet_addresses = fleet.addresses
        keys |= set(rt.waiting_for_gateways) | rt.established
    problems = problem_endpoints(fleet)
    if problems != rt.fleet_problems:
        for _gateway, endpoint_id, _why in problems ^ rt.fleet_problems:
            ref = rt.observed.endpoint_by_uid(endpoint_id)
            if ref is not None:
                keys.add(ref)
        rt.fleet_problems = problems
    for namespace, name in keys:
        rt.queue.add((ENDPOINT_KEY, namespace, name))


async def watch_fleet_freshness(rt: Runtime) -> None:
    """Heartbeats age without any event: one task (not one per object) notices a gateway going stale."""
    while True:
        await asyncio.sleep(FLEET_CHECK_SECONDS)
        if rt.fleet().addresses != rt.fleet_addresses:
            wake_fleet_dependents(rt)
