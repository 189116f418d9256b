"""The gateway fleet as the operator sees it: which gateways are ready and what each has applied (R30, R32),
and which endpoints a gateway report concerns.

Every gateway rewrites its status ConfigMap on each heartbeat. Waking every waiting endpoint on every report
made a bulk create quadratic; instead an endpoint waiting for its route wakes when the fleet has applied the
route version it waits for, established endpoints wake when the set of ready gateways changes (their
EndpointSlice lists them), and an endpoint wakes when a gateway starts or stops reporting a problem with it (a
refused route, an unreachable backend).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from vpcep.api.routing import GatewayStatus
from vpcep.state.records import GatewayRecord


@dataclass(frozen=True)
class FleetView:
    ready: tuple[GatewayStatus, ...]

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(sorted({gateway.address for gateway in self.ready}))

    def applied(self, route_resource_version: int | None) -> bool:
        """Every ready gateway serves the route (its ConfigMap version is covered by each one's report)."""
        if route_resource_version is None or not self.ready:
            return False
        return all(gateway.appliedResourceVersion >= route_resource_version for gateway in self.ready)

    def rejected(self, endpoint_id: str) -> str | None:
        for gateway in self.ready:
            if endpoint_id in gateway.rejectedRoutes:
                return f"{gateway.gateway}: {gateway.rejectedRoutes[endpoint_id]}"
        return None

    def blocking_error(self, route_resource_version: int | None) -> str | None:
        """A gateway-wide error of a ready gateway that has not applied this route yet: why it waits."""
        for gateway in self.ready:
            behind = route_resource_version is None or gateway.appliedResourceVersion < route_resource_version
            if gateway.error and behind:
                return f"gateway {gateway.gateway}: {gateway.error}"
        return None

    def unreachable(self, endpoint_id: str) -> str | None:
        for gateway in self.ready:
            for health in gateway.unhealthyBackends:
                if health.endpointId == endpoint_id and not health.reachable:
                    return (
                        f"backend unreachable from gateway {gateway.gateway}: {health.message or 'no answer'}"
                    )
        return None


def _age_seconds(heartbeat: str, now: datetime.datetime) -> float:
    try:
        moment = datetime.datetime.fromisoformat(heartbeat.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return (now - moment).total_seconds()


def fleet_view(records: list[GatewayRecord], now: datetime.datetime, timeout_seconds: float) -> FleetView:
    ready = tuple(
        sorted(
            (
                record.status
                for record in records
                if record.status is not None and _age_seconds(record.status.heartbeat, now) <= timeout_seconds
            ),
            key=lambda status: status.gateway,
        )
    )
    return FleetView(ready=ready)


Ref = tuple[str, str]  # (namespace, name) of an Endpoint
Problem = tuple[str, str, str]  # (gateway, endpoint id, problem)


def problem_endpoints(fleet: FleetView) -> frozenset[Problem]:
    """(gateway, endpoint id, problem) for every refused route and unreachable backend the fleet reports."""
    problems: set[Problem] = set()
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


class GatewayFleet:
    """Which endpoints depend on the fleet, and what the fleet looked like when they were last woken."""

    def __init__(self) -> None:
        # endpoint -> the route resourceVersion it waits for the fleet to apply (None: any gateway report)
        self._waiting: dict[Ref, int | None] = {}
        self._established: set[Ref] = set()  # Creating or Accepted: its EndpointSlice lists the gateways
        self._addresses: tuple[str, ...] = ()
        self._problems: frozenset[Problem] = frozenset()

    def track(self, ref: Ref, *, waiting: bool, awaited_version: int | None, established: bool) -> None:
        """After an endpoint's reconcile: what it waits for from the fleet; whether it is established."""
        if waiting:
            self._waiting[ref] = awaited_version
        else:
            self._waiting.pop(ref, None)
        if established:
            self._established.add(ref)
        else:
            self._established.discard(ref)

    def forget(self, ref: Ref) -> None:
        self._waiting.pop(ref, None)
        self._established.discard(ref)

    def moved(self, fleet: FleetView) -> bool:
        """The set of ready gateways differs from the one dependents last saw (a heartbeat went stale)."""
        return fleet.addresses != self._addresses

    def concerned(self, fleet: FleetView, endpoint_by_id: Callable[[str], Ref | None]) -> set[Ref]:
        """The endpoints a new fleet report concerns; remembers the report as seen."""
        refs = {ref for ref, awaited in self._waiting.items() if awaited is None or fleet.applied(awaited)}
        if self.moved(fleet):
            self._addresses = fleet.addresses
            refs |= set(self._waiting) | self._established
        problems = problem_endpoints(fleet)
        if problems != self._problems:
            for _gateway, endpoint_id, _why in problems ^ self._problems:
                ref = endpoint_by_id(endpoint_id)
                if ref is not None:
                    refs.add(ref)
            self._problems = problems
        return refs
