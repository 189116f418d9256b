"""What every reconcile receives: the configuration, the API, the caches' lookups, the work queue, and the
process's state as named components, each with one owner:

- `allocations` (vpcep.state.allocations): marker ids and gateway ports held, written by the endpoint
  controller in the same event-loop step as its decision;
- `writes` (vpcep.state.writes): what this process applied and the API answered, ahead of the watch;
- `fleet` (vpcep.state.fleet): which endpoints wait for the gateways, which are established;
- `quota_waiters` (vpcep.state.quota_waiters): objects refused for quota, woken when their account frees some;
- `gateway_port_quota` (vpcep.state.gateway_port_quota): gateway ports each account holds and waits for (R49);
- `backends` (vpcep.state.backends): the service controller's last look at each backend;
- `api_server` (vpcep.state.api_server): the API server's addresses, which no backend may resolve to (R45);
- `hand_written_slices` (vpcep.state.backend_slices): Services with slices no endpoint controller wrote;
- `gateway_ingress` (vpcep.state.gateway_ingress_state): the gateway ingress policies as stored (R42);
- `ingress_writes` (vpcep.runtime.coalesce): one policy write at a time per namespace, shared by its waiters.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Hashable
from dataclasses import dataclass, field

from vpcep.config import OperatorConfig
from vpcep.controllers.sources import GATEWAY_PODS
from vpcep.domain.allocation import PortRange
from vpcep.domain.quota import AccountQuota, QuotaPolicy
from vpcep.k8s.client import KubeApi
from vpcep.k8s.events import EventRecorder, InvolvedObject
from vpcep.k8s.resources import CONFIG_MAP, ResourceKind
from vpcep.runtime.coalesce import Coalescer
from vpcep.runtime.controller import Manager
from vpcep.runtime.workqueue import WorkQueue
from vpcep.state.allocations import Allocations
from vpcep.state.api_server import ApiServerAddresses
from vpcep.state.backend_slices import HandWrittenSlices
from vpcep.state.backends import BackendObservations
from vpcep.state.fleet import GATEWAY_PODS_KEY, FleetObserver, FleetView, GatewayFleet
from vpcep.state.gateway_ingress_state import GatewayIngressState
from vpcep.state.gateway_port_quota import GatewayPortQuota
from vpcep.state.observed import Observed
from vpcep.state.quota_waiters import QuotaWaiters
from vpcep.state.writes import WriteLedger

FINALIZER = "vpcep.io/finalizer"
logger = logging.getLogger(__name__)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def rfc3339(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def quota_policy(config: OperatorConfig) -> QuotaPolicy:
    """An override replaces only the limits it sets (vpcep.config.Quotas.for_account)."""
    return QuotaPolicy(
        **config.quotas.default.model_dump(),
        overrides={
            account: AccountQuota(**limits.model_dump(include=limits.model_fields_set))
            for account, limits in config.quotas.overrides.items()
        },
    )


def involved(kind: ResourceKind, namespace: str, name: str, uid: str) -> InvolvedObject:
    return InvolvedObject(kind.api_version, kind.kind, namespace, name, uid)


@dataclass
class Operator:
    config: OperatorConfig
    api: KubeApi
    recorder: EventRecorder
    observed: Observed
    manager: Manager[Operator]
    writes: WriteLedger
    allocations: Allocations = field(default_factory=Allocations)
    fleet: GatewayFleet = field(default_factory=GatewayFleet)
    quota_waiters: QuotaWaiters = field(default_factory=QuotaWaiters)
    gateway_port_quota: GatewayPortQuota = field(default_factory=GatewayPortQuota)  # R49
    backends: BackendObservations = field(default_factory=BackendObservations)
    api_server: ApiServerAddresses = field(default_factory=ApiServerAddresses)  # R45
    hand_written_slices: HandWrittenSlices = field(default_factory=HandWrittenSlices)  # R45
    gateway_ingress: GatewayIngressState = field(default_factory=GatewayIngressState)  # R42
    ingress_writes: Coalescer[str] = field(default_factory=Coalescer)  # by consumer namespace
    fleet_observer: FleetObserver = field(default_factory=FleetObserver)  # R47, R52

    @property
    def queue(self) -> WorkQueue[Hashable]:
        return self.manager.queue

    @property
    def primed(self) -> bool:
        """Every watched kind has been listed: the caches are complete, reconciles run."""
        return self.manager.primed

    @property
    def quota(self) -> QuotaPolicy:
        return quota_policy(self.config)

    @property
    def port_range(self) -> PortRange:
        return PortRange(first=self.config.gatewayPorts.first, last=self.config.gatewayPorts.last)

    def fleet_view(self) -> FleetView:
        """The ready gateways, judged on this process's monotonic clock (R52); with verifyGatewayPods only
        statuses that Ready gateway pods report (R47). A read: reconciles call it several times each."""
        pods = None
        source = self.manager.sources.get(GATEWAY_PODS)
        if source is not None and source.cache is not None:
            pods = list(source.cache.get(GATEWAY_PODS_KEY) or ())
        return self.fleet_observer.view(
            self.observed.gateways(),
            time.monotonic(),
            self.config.gatewayHeartbeatTimeoutSeconds,
            pods,
            self.config.gatewayDeployment,
        )

    def report_distrusted_gateways(self, view: FleetView) -> None:
        """Each gateway status not believed (R47), logged and evented on its ConfigMap once."""
        for verdict in self.fleet_observer.unreported(view):
            logger.warning("gateway status %s not believed (%s): %s", verdict.object_name, verdict.reason,
                           verdict.message)  # fmt: skip
            record = next((r for r in self.observed.gateways() if r.name == verdict.object_name), None)
            uid = record.uid if record else ""
            self.event(
                involved(CONFIG_MAP, self.config.namespace, verdict.object_name, uid),
                True,
                str(verdict.reason),
                f"{verdict.message}; its address is not used (R47)",
            )

    def event(self, body_ref: InvolvedObject, warning: bool, reason: str, message: str) -> None:
        """R39: every state change is an Event on the object."""
        self.recorder.record(body_ref, "Warning" if warning else "Normal", reason, message)
