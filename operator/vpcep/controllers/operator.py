"""The operator assembled: its sources, its state components, its controllers, and the manager running them.

`build_operator` wires everything; `run_operator` watches and primes on every replica and reconciles on the
leader (R50). Nothing here knows kopf: vpcep.handlers.operator starts and stops this from kopf's start-up and
clean-up activities.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager
from typing import Any

import aiohttp

from vpcep.config import OperatorConfig
from vpcep.controllers import endpoint, gateway_ingress, orphans, quota_view, service, whitelist
from vpcep.controllers.cloud_services import ensure_namespace, publish_cloud_services
from vpcep.controllers.context import Operator
from vpcep.controllers.forged_connections import ForgedConnectionReporter
from vpcep.controllers.sources import (
    API_SERVER,
    BACKEND_SLICES,
    CONNECTIONS,
    ENDPOINTS,
    NAMESPACES,
    SERVICES,
    build_sources,
    caches_of,
)
from vpcep.k8s.client import ApiError, KubeApi
from vpcep.k8s.events import EventRecorder
from vpcep.runtime.controller import Controller, Manager
from vpcep.runtime.leader import LeaderElector
from vpcep.runtime.source import Event
from vpcep.state.api_server import ApiServerAddresses
from vpcep.state.backend_slices import HandWrittenSlices
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
ALLOCATING_SOURCES = (ENDPOINTS, SERVICES)  # what records marker ids and gateway ports (status)
PUBLISH_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)


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
    api_server = ApiServerAddresses()
    sources[API_SERVER].subscribe(api_server.follow)
    hand_written_slices = HandWrittenSlices()
    sources[BACKEND_SLICES].subscribe(hand_written_slices.follow)
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
        api_server=api_server,
        hand_written_slices=hand_written_slices,
    )
    manager.bind(operator)
    manager.on_primed(functools.partial(seed_allocations, operator))
    forged = ForgedConnectionReporter()

    def report_forged(event: Event) -> None:
        forged.seen(operator, event.type, event.body)

    sources[CONNECTIONS].subscribe(report_forged)
    return operator


async def run_operator(rt: Operator, elector: LeaderElector | None, started: float) -> None:
    """Every replica watches and primes its caches (the admission webhook answers from them); the leader
    alone reconciles and writes (R50). Returns when leadership is lost: the caller ends the process, which
    starts again as a standby with fresh state (as controller-runtime's managers do). Without an elector this
    process reconciles alone."""
    watching = asyncio.create_task(rt.manager.watch(rt.api), name="vpcep watches")
    try:
        await _first(watching, rt.manager.wait_primed())
        await ensure_namespace(rt.api, rt.config)  # where the Lease lives
        if elector is None:
            await _first(watching, lead(rt, started, None))
        else:
            await _first(watching, elector.run(functools.partial(lead, rt, started, elector)))
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching


async def _first(watching: asyncio.Task[None], step: Coroutine[Any, Any, None]) -> None:
    """Run `step` while the watches run; a watch that fails ends it (with the watch's error)."""
    stepping = asyncio.ensure_future(step)
    try:
        await asyncio.wait({watching, stepping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not stepping.done():
            stepping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stepping
    if watching.done():
        watching.result()
    stepping.result()


async def lead(rt: Operator, started: float, elector: LeaderElector | None) -> None:
    """The leader's term, until cancelled: catch up with the previous leader's last writes (a consistent
    LIST of what records allocations, ahead of the watches, unless the watches have already seen past its
    release), then seed the allocation ledger from it (Manager.on_primed) and reconcile everything; the
    cloud services are published beside it."""
    for name in ALLOCATING_SOURCES:
        source = rt.manager.sources[name]
        if elector is None or elector.saw_every_write_of_predecessor(source.seen_up_to):
            logger.debug("source %s already saw the previous leader's writes: no catch-up list", name)
            continue
        await source.refresh(rt.api)
    beside = [
        asyncio.create_task(publish_until_done(rt), name="vpcep cloud services"),
        asyncio.create_task(report_initial_sync(rt, started), name="vpcep initial sync"),
    ]
    try:
        await rt.manager.reconcile()
    finally:
        for task in beside:
            task.cancel()
        for task in beside:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def publish_until_done(rt: Operator) -> None:
    """The cloud services (R37), retried until the API takes them (a webhook not reachable yet, an outage)."""
    for attempt in itertools.count():
        try:
            await publish_cloud_services(rt.api, rt.config)
            return
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as error:
            delay = PUBLISH_BACKOFF_SECONDS[min(attempt, len(PUBLISH_BACKOFF_SECONDS) - 1)]
            logger.warning("vpcep: publishing the cloud services failed (%s); again in %.0fs", error, delay)
            await asyncio.sleep(delay)


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
    # A route names ports its endpoint's status may not (yet): the previous leader wrote the route and was
    # killed before the status (R50). Until that endpoint's next decision nobody else is handed them (R30).
    for route in rt.observed.routes():
        if route.endpoint_uid and route.gateway_ports:
            rt.allocations.hold_ports(route.endpoint_uid, route.gateway_ports)
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
