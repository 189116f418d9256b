"""The gateway fleet as the operator sees it: which gateways are ready and what each has applied (R30,
R32).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from vpcep.api.routing import GatewayStatus
from vpcep.handlers.observed import GatewayRecord


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
