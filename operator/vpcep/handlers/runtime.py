"""The operator's process-wide state: config, API gateway, work queue, indexes and small caches.

One `Runtime` lives in kopf's memo from start-up to clean-up; reconcilers receive it explicitly.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from vpcep.builders.meta import Manifest, spec_hash_of
from vpcep.config import OperatorConfig
from vpcep.domain.allocation import PortRange
from vpcep.domain.quota import AccountQuota, QuotaPolicy
from vpcep.handlers.allocations import Allocations
from vpcep.handlers.backends import BackendObservation
from vpcep.handlers.gateway_ingress_state import GatewayIngressState
from vpcep.handlers.gateways import FleetView, fleet_view
from vpcep.handlers.lookups import Observed
from vpcep.handlers.workqueue import WorkQueue
from vpcep.k8s.client import KubeApi
from vpcep.k8s.events import EventRecorder, InvolvedObject
from vpcep.k8s.resources import ResourceKind, kind_of

FINALIZER = "vpcep.io/finalizer"

Key = tuple[str, str, str]  # (what, namespace, name)
ENDPOINT_KEY = "Endpoint"
SERVICE_KEY = "EndpointService"
WHITELIST_KEY = "Whitelist"
QUOTA_KEY = "Quota"
ORPHANS_KEY = "Orphans"
GATEWAY_INGRESS_KEY = "GatewayIngress"  # (what, consumer namespace, "")
QUOTA_VIEW_DELAY_SECONDS = 1.0


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def rfc3339(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def quota_policy(config: OperatorConfig) -> QuotaPolicy:
    return QuotaPolicy(
        services=config.quotas.default.services,
        endpoints=config.quotas.default.endpoints,
        overrides={
            account: AccountQuota(services=limits.services, endpoints=limits.endpoints)
            for account, limits in config.quotas.overrides.items()
        },
    )


@dataclass
class Runtime:
    config: OperatorConfig
    api: KubeApi
    recorder: EventRecorder
    observed: Observed
    queue: WorkQueue[Key]
    allocations: Allocations = field(default_factory=Allocations)
    applied: dict[tuple[str, str, str], str] = field(default_factory=dict)
    route_versions: dict[str, int] = field(default_factory=dict)
    cluster_ips: dict[tuple[str, str], str] = field(default_factory=dict)
    backends: dict[tuple[str, str], BackendObservation] = field(default_factory=dict)
    # endpoint -> the route resourceVersion it waits for the fleet to apply (None: any gateway report)
    waiting_for_gateways: dict[tuple[str, str], int | None] = field(default_factory=dict)
    established: set[tuple[str, str]] = field(default_factory=set)
    quota_blocked: dict[str, set[Key]] = field(default_factory=dict)
    fleet_addresses: tuple[str, ...] = ()
    fleet_problems: frozenset[tuple[str, str, str]] = frozenset()  # (gateway, endpoint id, problem)
    primed: bool = False  # the caches hold a full LIST of every kind
    gateway_ingress: GatewayIngressState = field(default_factory=GatewayIngressState)  # R42

    @property
    def quota(self) -> QuotaPolicy:
        return quota_policy(self.config)

    @property
    def port_range(self) -> PortRange:
        return PortRange(first=self.config.gatewayPorts.first, last=self.config.gatewayPorts.last)

    def fleet(self) -> FleetView:
        return fleet_view(self.observed.gateways(), utc_now(), self.config.gatewayHeartbeatTimeoutSeconds)

    # --- applying owned children, skipping what is already in place
    async def ensure(self, manifest: Manifest, observed_hash: str | None) -> Manifest | None:
        """Apply unless the object already has this content; returns the API answer when it applied."""
        meta = manifest["metadata"]
        key = (manifest["kind"], meta.get("namespace", ""), meta["name"])
        desired = spec_hash_of(manifest)
        if desired is not None and desired == observed_hash:
            self.applied.pop(key, None)  # the watch shows it now: no need to remember the write any longer
            return None
        if desired is not None and desired == self.applied.get(key):
            return None
        answer = await self.api.apply(manifest)
        if desired is not None:
            self.applied[key] = desired
        return answer

    async def remove(self, kind: ResourceKind, namespace: str, name: str, known: bool) -> bool:
        """Delete a child when it exists (as far as this process knows); True if a delete was sent."""
        key = (kind.kind, namespace, name)
        if not known and key not in self.applied:
            return False
        self.applied.pop(key, None)
        await self.api.delete(kind, namespace, name)
        return True

    def forget(self, kind: str, namespace: str, name: str) -> None:
        self.applied.pop((kind, namespace, name), None)

    def refresh_quota_view(self, namespace: str) -> None:
        """Quota views are refreshed a moment later: a burst of creates writes each view once (R41)."""
        self.queue.add_after((QUOTA_KEY, namespace, ""), QUOTA_VIEW_DELAY_SECONDS)

    # --- events (R39)
    def event(self, body_ref: InvolvedObject, warning: bool, reason: str, message: str) -> None:
        self.recorder.record(body_ref, "Warning" if warning else "Normal", reason, message)


def involved(kind: ResourceKind, namespace: str, name: str, uid: str) -> InvolvedObject:
    return InvolvedObject(kind.api_version, kind.kind, namespace, name, uid)


def manifest_kind(manifest: dict[str, Any]) -> ResourceKind:
    return kind_of(manifest)
