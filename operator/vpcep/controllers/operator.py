"""The operator assembled: its sources, its state components, its controllers, and the manager running them.

`build_operator` wires everything; `run` watches, primes and reconciles until cancelled. Nothing here knows
kopf: vpcep.handlers.operator starts and stops this from kopf's start-up and clean-up activities.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager

from vpcep.config import OperatorConfig
from vpcep.controllers import endpoint, gateway_ingress, orphans, quota_view, service, whitelist
from vpcep.controllers.context import Operator
from vpcep.controllers.forged_connections import ForgedConnectionReporter
from vpcep.controllers.sources import CONNECTIONS, ENDPOINTS, NAMESPACES, SERVICES, build_sources, caches_of
from vpcep.k8s.client import KubeApi
from vpcep.k8s.events import EventRecorder
from vpcep.runtime.controller import Controller, Manager
from vpcep.runtime.source import Event
from vpcep.state.observed import Observed
from vpcep.state.writes import WriteLedger

logger = logging.getLogger(__name__)
CONTROLLERS: tuple[Controller, ...] = (
    endpoint.CONTROLLER,
    service.CONTROLLER,
    whitelist.CONTROLLER,
    quota_view.CONTROLLER,
    orphans.CONTROLLER,
    gateway_ingress.CONTROLLER,
)
SYNC_QUIET_SECONDS = 0.5


def build_operator(
    config: OperatorConfig,
    api: KubeApi,
    recorder: EventRecorder,
    *,
    observe: Callable[[str], AbstractContextManager[None]] | None = None,
    on_wait: Callable[[float], None] | None = None,
) -> Operator:
    sources = build_sources(config)
    observed = Observed(
        caches_of(sources), config.namespace, require_account_label=config.requireAccountLabel
    )
    # State upkeep first: every controller's mapper then reads caches and lookups that include the event.
    sources[ENDPOINTS].subscribe(observed.follow_endpoint)
    sources[SERVICES].subscribe(observed.follow_service)
    sources[NAMESPACES].subscribe(observed.follow_namespace)
    manager: Manager[Operator] = Manager(
        sources, CONTROLLERS, workers=config.workers, observe=observe, on_wait=on_wait
    )
    operator = Operator(
        config=config,
        api=api,
        recorder=recorder,
        observed=observed,
        manager=manager,
        writes=WriteLedger(api),
    )
    manager.bind(operator)
    manager.on_primed(functools.partial(seed_allocations, operator))
    forged = ForgedConnectionReporter()

    def report_forged(event: Event) -> None:
        forged.seen(operator, event.type, event.body)

    sources[CONNECTIONS].subscribe(report_forged)
    return operator


def seed_allocations(rt: Operator) -> None:
    """Once the caches are primed, before the first reconcile: every allocation the cluster records
    (restart-safe, R33)."""
    for namespace, name in rt.observed.all_endpoint_refs():
        record = rt.observed.endpoint(namespace, name)
        if record is None or record.status is None:
            continue
        rt.allocations.record(
            record.meta.uid, record.target, record.status.markerId, record.status.gatewayPorts
        )
        rt.gateway_port_quota.hold(
            record.meta.uid, rt.observed.account(namespace), len(record.status.gatewayPorts)
        )
        endpoint.track_port_waiter(rt, record, record.status)  # R49: waiters keep their order after a restart
    rt.observed.forget_quota_order()


async def report_initial_sync(rt: Operator, started: float) -> None:
    """Log once when everything listed at start-up is reconciled (restart-to-converged time, SPEC §6)."""
    loop = asyncio.get_running_loop()
    quiet_since: float | None = None
    while quiet_since is None or loop.time() - quiet_since < SYNC_QUIET_SECONDS:
        await asyncio.sleep(0.05)
        if not (rt.primed and rt.queue.idle()):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = loop.time()
    logger.info(
        "vpcep: initial reconcile done in %.2fs (%d reconciles)", quiet_since - started, rt.queue.reconciled
    )
