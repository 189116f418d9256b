"""The kopf side: settings, indexes, and thin event handlers that only enqueue keys (vpcep.main registers it).

Watch events never reconcile inline: they wake the objects whose decision depends on what changed, and a
bounded pool of workers (vpcep.handlers.workqueue) reconciles each key, one worker per key at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass, replace
from typing import Any

import kopf

import vpcep.handlers.gateway_ingress as gateway_ingress
from vpcep.api.routing import GATEWAY_STATUS_LABEL, ROUTE_LABEL
from vpcep.builders.meta import ENDPOINT_ID_LABEL, ENDPOINT_UID_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from vpcep.config import OperatorConfig
from vpcep.handlers import admission, metrics, observed
from vpcep.handlers.cache import ObjectCache, Project
from vpcep.handlers.cloud_services import publish_cloud_services
from vpcep.handlers.endpoint import collect_orphans, reconcile_endpoint
from vpcep.handlers.fleet_watch import wake_fleet_dependents, watch_fleet_freshness
from vpcep.handlers.forged_connections import ForgedConnectionReporter
from vpcep.handlers.lookups import Observed
from vpcep.handlers.own_watches import OwnWatches, register_backend_watches
from vpcep.handlers.quota_view import reconcile_quota_view
from vpcep.handlers.runtime import (
    ENDPOINT_KEY,
    GATEWAY_INGRESS_KEY,
    ORPHANS_KEY,
    QUOTA_KEY,
    SERVICE_KEY,
    WHITELIST_KEY,
    Key,
    Runtime,
)
from vpcep.handlers.service import reconcile_service, wake_endpoints_of, wake_service_dependents
from vpcep.handlers.whitelist import reconcile_whitelist
from vpcep.handlers.workqueue import RetryLater, WorkQueue
from vpcep.k8s.client import ApiError, KubeApi
from vpcep.k8s.events import EventRecorder
from vpcep.k8s.resources import (
    CONFIG_MAP,
    ENDPOINT,
    ENDPOINT_CONNECTION,
    ENDPOINT_SERVICE,
    ENDPOINT_SLICE,
    NAMESPACE,
    NETWORK_POLICY,
    SERVICE,
    WHITELIST,
    ResourceKind,
)
from vpcep.k8s.watching import WatchTarget

logger = logging.getLogger(__name__)
GROUP, VERSION = "vpcep.io", "v1alpha1"
KOPF_FINALIZER = "vpcep.io/kopf-unused"
SYNC_QUIET_SECONDS = 0.5
PRIME_DELAY_SECONDS = 1.0
CACHE_RESYNC_SECONDS = 600.0
RELIST_ATTEMPTS = 3
KOPF_LIST_CHUNK = 500
KOPF_WORKER_IDLE_SECONDS = 0.5


class NoDiffBase(kopf.DiffBaseStorage):
    """The operator registers no on.create/on.update handlers, so kopf's per-event "essence" (a deep copy
    of every watched body, for diffs nobody reads) is pure cost: about 6 % of the operator's CPU at 3,000
    endpoints. Nothing is stored or compared. (Level-triggered reconciles need no memory of what was
    handled: the work queue re-derives everything from the cache.)"""

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        return {}

    def fetch(self, *, body: Any) -> Any:
        return None

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        return None


class NoProgress(kopf.ProgressStorage):
    """kopf's handler-progress records serve change handlers and their retries; there are none here, yet
    the annotation storage scanned every event's annotations (~8 % of a restart's CPU). Nothing is kept."""

    def fetch(self, *, key: Any, body: Any) -> Any:
        return None

    def store(self, *, key: Any, record: Any, body: Any, patch: Any) -> None:
        return None

    def purge(self, *, key: Any, body: Any, patch: Any) -> None:
        return None

    def touch(self, *, body: Any, patch: Any, value: Any) -> None:
        return None

    def clear(self, *, essence: Any) -> Any:
        return essence


def login() -> kopf.ConnectionInfo:
    info = kopf.login_with_service_account(settings=kopf.OperatorSettings())
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if info is not None and host and port:
        # In a pod, the API server is where kubelet says (as client-go and the gateway's client find it):
        # kopf assumes https://kubernetes.default.svc, which needs the cluster DNS (not hostNetwork pods').
        server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        info = replace(info, server=server)
    info = info or kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    if info is None:
        raise kopf.LoginError("no in-cluster service account and no KUBECONFIG/~/.kube/config to log in with")
    return info


def seed_allocations(rt: Runtime) -> None:
    """Once, after kopf filled the indexes: every allocation the cluster already records (restart-safe)."""
    for namespace, name in rt.observed.all_endpoint_refs():
        record = rt.observed.endpoint(namespace, name)
        if record is None or record.status is None:
            continue
        rt.allocations.record(
            record.meta.uid, record.target, record.status.markerId, record.status.gatewayPorts
        )
    rt.allocations.seeded = True


async def dispatch(rt: Runtime, key: Key) -> None:
    if not rt.allocations.seeded:
        seed_allocations(rt)
    what, namespace, name = key
    try:
        if what == ENDPOINT_KEY:
            await reconcile_endpoint(rt, namespace, name)
        elif what == SERVICE_KEY:
            await reconcile_service(rt, namespace, name)
        elif what == WHITELIST_KEY:
            await reconcile_whitelist(rt, namespace, name)
        elif what == QUOTA_KEY:
            await reconcile_quota_view(rt, namespace)
        elif what == ORPHANS_KEY:
            await collect_orphans(rt, namespace)
        elif what == GATEWAY_INGRESS_KEY:
            await gateway_ingress.reconcile_gateway_ingress(rt, namespace)
    except ApiError as error:
        if error.status == 403 and "being terminated" in error.message:
            # The namespace is going: its objects get their deletion (and our finalizer run) in a moment.
            raise RetryLater(2.0, str(error)) from None
        raise


async def report_initial_sync(rt: Runtime, started: float) -> None:
    """Log once when everything listed at start-up is reconciled (restart-to-converged time, SPEC §6)."""
    loop = asyncio.get_running_loop()
    quiet_since: float | None = None
    while quiet_since is None or loop.time() - quiet_since < SYNC_QUIET_SECONDS:
        await asyncio.sleep(0.05)
        if not (rt.allocations.seeded and rt.queue.idle()):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = loop.time()
    logger.info(
        "vpcep: initial reconcile done in %.2fs (%d reconciles)", quiet_since - started, rt.queue.reconciled
    )


def cache_sources(
    config: OperatorConfig,
) -> dict[str, tuple[Project, ResourceKind, tuple[tuple[str | None, ...], str | None]]]:
    """Cache name -> (projection, kind, (namespaces, label selector) of the start-up LIST); namespace None
    lists every namespace. A scoped operator lists each served namespace (SPEC §5, docs/operator.md).
    """
    owned = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
    served: tuple[str | None, ...] = tuple(config.served_namespaces()) if config.scoped else (None,)
    return {
        "vpcep_endpoints": (observed.index_endpoints, ENDPOINT, (served, None)),
        "vpcep_services": (observed.index_endpoint_services, ENDPOINT_SERVICE, (served, None)),
        "vpcep_whitelists": (observed.index_whitelists, WHITELIST, (served, None)),
        "vpcep_connections": (observed.index_connections, ENDPOINT_CONNECTION, (served, None)),
        "vpcep_namespaces": (observed.index_namespaces, NAMESPACE, ((None,), None)),
        "vpcep_operator_config_maps": (
            observed.index_operator_config_maps,
            CONFIG_MAP,
            ((config.namespace,), None),
        ),
        "vpcep_owned_services": (observed.index_owned_services, SERVICE, (served, owned)),
        "vpcep_owned_slices": (observed.index_owned_slices, ENDPOINT_SLICE, (served, owned)),
        "vpcep_owned_policies": (observed.index_owned_policies, NETWORK_POLICY, (served, owned)),
    }


# Caches fed by the operator's own watches, which list (delivering every object), re-list on 410 and report
# deletions they missed themselves: the operator's LIST of them would only repeat that work.
OWN_WATCHED_CACHES = frozenset(
    {
        "vpcep_connections",
        "vpcep_operator_config_maps",
        "vpcep_owned_services",
        "vpcep_owned_slices",
        "vpcep_owned_policies",
    }
)
PRIME_RETRY_SECONDS = 2.0


async def relist(rt: Runtime, caches: dict[str, ObjectCache], config: OperatorConfig) -> None:
    """One (paged) LIST of each kind kopf watches, into its cache; prunes what the LIST no longer holds."""
    for name, (_project, kind, (namespaces, selector)) in cache_sources(config).items():
        if name in OWN_WATCHED_CACHES:
            continue
        live: set[str] = set()
        versions = []
        for namespace in namespaces:
            for attempt in range(RELIST_ATTEMPTS):
                listed_live: set[str] = set()
                version = 0
                try:
                    async for items, listed in rt.api.list_pages(kind, namespace, label_selector=selector):
                        version = listed
                        for item in items:
                            caches[name].upsert(item)
                            listed_live.add(str(item["metadata"]["uid"]))
                except ApiError as error:
                    if error.status != 410 or attempt == RELIST_ATTEMPTS - 1:
                        raise
                    continue  # the continue token expired mid-way (a compaction): list again from the top
                live |= listed_live
                versions.append(version)
                break
        # Several LISTs (one per served namespace), several versions: only what is older than all of them
        # is surely gone.
        caches[name].prune(live, min(versions))


async def prime_and_resync(
    rt: Runtime, caches: dict[str, ObjectCache], config: OperatorConfig, own: OwnWatches
) -> None:
    """Fill the caches with one LIST per kind, then reconcile everything once; re-list now and then so a
    delete that fell between that LIST and kopf's own (at start-up) cannot linger in the cache."""
    await asyncio.sleep(PRIME_DELAY_SECONDS)  # kopf's watches start first: later deletes reach us as events
    await own.wait_listed()
    while True:
        try:
            await relist(rt, caches, config)
            break
        except ApiError as error:  # the API is not there yet or refuses: nothing reconciles until it answers
            logger.warning("vpcep: start-up LIST failed (%s); again in %.0fs", error, PRIME_RETRY_SECONDS)
            await asyncio.sleep(PRIME_RETRY_SECONDS)
    seed_allocations(rt)
    rt.observed.forget_quota_order()
    for namespace, name in rt.observed.all_endpoint_refs():
        rt.queue.add((ENDPOINT_KEY, namespace, name))
    for key in list(caches["vpcep_services"].keys()):
        if isinstance(key, tuple) and key[0] == "es":
            rt.queue.add((SERVICE_KEY, key[1], key[2]))
    for key in list(caches["vpcep_whitelists"].keys()):
        if isinstance(key, tuple) and key[0] == "wl":
            rt.queue.add((WHITELIST_KEY, key[1], key[2]))
    gateway_ingress.wake_every_gateway_ingress(rt)  # R42: also drops policies of namespaces without endpoints
    # Children of endpoints deleted while no operator ran (finalizer forced away): the LIST found them,
    # so no watch event will (kopf's listing repeats what the cache holds and wakes nothing).
    for cache_name, tag in (("vpcep_connections", "ec-id"), ("vpcep_operator_config_maps", "route")):
        for key in list(caches[cache_name].keys()):
            if isinstance(key, tuple) and key[0] == tag and rt.observed.endpoint_by_uid(key[1]) is None:
                rt.queue.add((ORPHANS_KEY, key[1], ""))
    rt.primed = True
    rt.queue.start()
    while True:
        await asyncio.sleep(CACHE_RESYNC_SECONDS)
        try:
            await relist(rt, caches, config)
        except ApiError as error:
            logger.warning("vpcep: periodic re-list failed (%s); the watches keep the caches current", error)
        rt.observed.forget_quota_order()


def _runtime(memo: Any) -> Runtime:
    runtime: Runtime = memo.runtime
    return runtime


def register(config: OperatorConfig) -> None:
    """Register every handler with kopf's default registry (call once, before kopf runs)."""
    caches = {
        name: ObjectCache(project) for name, (project, _kind, _selector) in cache_sources(config).items()
    }
    own = OwnWatches()
    register_backend_watches(own, config)
    forged = ForgedConnectionReporter()
    served: list[str | None] = list(config.served_namespaces()) if config.scoped else [None]
    owned = f"{MANAGED_BY_LABEL}={MANAGED_BY}"

    @kopf.on.startup()
    async def start(**kwargs: Any) -> None:
        started = asyncio.get_running_loop().time()
        settings: kopf.OperatorSettings = kwargs["settings"]
        memo: Any = kwargs["memo"]
        # kopf strips *its* finalizer from any object it has no change handlers for; the operator manages
        # vpcep.io/finalizer itself (from the work queue), so kopf's must be a different, unused name.
        settings.persistence.finalizer = KOPF_FINALIZER
        settings.persistence.progress_storage = NoProgress()
        settings.persistence.diffbase_storage = NoDiffBase()
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.watching.connect_timeout = 10
        settings.watching.chunk_size = KOPF_LIST_CHUNK  # kopf's own start-up LIST, a page at a time
        # kopf keeps a worker task per object for this long after its last event; handlers here only feed
        # the cache and the queue, so short-lived workers keep a start-up listing of 60,000 objects light.
        settings.queueing.idle_timeout = KOPF_WORKER_IDLE_SECONDS
        settings.peering.standalone = True
        admission.configure(settings, config)

        api = KubeApi(login(), concurrency=config.apiConcurrency)
        recorder = EventRecorder(api, instance=f"{socket.gethostname()}-{os.getpid()}")
        runtime: Runtime

        async def work(key: Key) -> None:
            with metrics.reconciling(key[0]):
                await dispatch(runtime, key)

        queue: WorkQueue[Key] = WorkQueue(
            "vpcep", work, workers=config.workers, on_wait=metrics.observe_queue_wait
        )
        runtime = Runtime(
            config=config,
            api=api,
            recorder=recorder,
            observed=Observed(caches, config.namespace),
            queue=queue,
        )
        memo.runtime = runtime
        metrics.watch_runtime(runtime)
        admission.HOLDER.runtime = runtime
        memo.fleet_task = None
        recorder.start()
        await publish_cloud_services(api, config)
        memo.prime_task = asyncio.create_task(
            prime_and_resync(runtime, caches, config, own), name="vpcep cache"
        )
        memo.fleet_task = asyncio.create_task(watch_fleet_freshness(runtime), name="vpcep fleet freshness")
        memo.sync_task = asyncio.create_task(report_initial_sync(runtime, started), name="vpcep initial sync")
        memo.own_watch_task = asyncio.create_task(own.run(api, memo), name="vpcep own watches")

    @kopf.on.cleanup()
    async def stop(**kwargs: Any) -> None:
        memo = kwargs["memo"]
        runtime = getattr(memo, "runtime", None)
        if runtime is None:
            return
        tasks = ("sync_task", "prime_task", "own_watch_task")
        for task in (memo.fleet_task, *(getattr(memo, name, None) for name in tasks)):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await runtime.queue.stop()
        await runtime.recorder.stop()
        await runtime.api.close()

    @kopf.on.login()
    def authenticate(**_: Any) -> kopf.ConnectionInfo:
        return login()

    # --- events: enqueue the object itself and wake what depends on it
    @kopf.on.event(GROUP, VERSION, "endpoints", id="endpoint-events")
    async def endpoint_event(**kwargs: Any) -> None:
        seen = Seen.of(kwargs)
        if not caches["vpcep_endpoints"].apply_event(seen.type, seen.body):
            return  # nothing new (kopf's start-up listing of what the operator's own LIST already holds)
        seen.rt.observed.watch_caught_up(seen.uid, seen.body)
        seen.rt.queue.add((ENDPOINT_KEY, seen.namespace, seen.name))
        seen.rt.observed.track_quota(
            "Endpoint", seen.uid, seen.rt.observed.endpoint(seen.namespace, seen.name)
        )
        if seen.type == "DELETED":
            seen.rt.queue.add((ORPHANS_KEY, seen.uid, ""))
            gateway_ingress.wake_gateway_ingress(seen.rt, seen.namespace)  # R42, also with no finalizer run
        if seen.type != "MODIFIED":
            seen.rt.refresh_quota_view(seen.namespace)

    service_signatures: dict[str, tuple[Any, ...]] = {}

    @kopf.on.event(GROUP, VERSION, "endpointservices", id="endpoint-service-events")
    async def service_event(**kwargs: Any) -> None:
        seen = Seen.of(kwargs)
        if not caches["vpcep_services"].apply_event(seen.type, seen.body):
            return
        seen.rt.observed.watch_caught_up(seen.uid, seen.body)
        rt = seen.rt
        rt.queue.add((SERVICE_KEY, seen.namespace, seen.name))
        rt.observed.track_quota("EndpointService", seen.uid, rt.observed.service(seen.namespace, seen.name))
        if seen.type == "DELETED":
            service_signatures.pop(seen.uid, None)
            for target in _targets_of_deleted_service(seen.body, seen.namespace, seen.name, config.namespace):
                for ref in rt.observed.endpoints_targeting(target):
                    rt.queue.add((ENDPOINT_KEY, *ref))
            for key in rt.quota_blocked.pop(rt.observed.account(seen.namespace), set()):
                rt.queue.add(key)
            rt.refresh_quota_view(seen.namespace)
            return
        signature = _service_signature(seen.body)
        if service_signatures.get(seen.uid) != signature:  # only what endpoints read wakes them
            service_signatures[seen.uid] = signature
            record = rt.observed.service(seen.namespace, seen.name)
            if record is not None:
                wake_service_dependents(rt, record)

    @kopf.on.event(GROUP, VERSION, "whitelists", id="whitelist-events")
    async def whitelist_event(**kwargs: Any) -> None:
        seen = Seen.of(kwargs)
        if not caches["vpcep_whitelists"].apply_event(seen.type, seen.body):
            return
        seen.rt.queue.add((WHITELIST_KEY, seen.namespace, seen.name))
        service_name = (seen.body.get("spec") or {}).get("endpointService")
        record = (
            seen.rt.observed.service(seen.namespace, service_name) if isinstance(service_name, str) else None
        )
        if record is not None:
            wake_endpoints_of(seen.rt, record)

    # EndpointConnections are written by the operator (only spec.decision by providers): an own watch feeds
    # the cache, as for the other objects it creates; kopf serves the kinds users create.
    @own.on(*(WatchTarget(ENDPOINT_CONNECTION, namespace) for namespace in served))
    async def connection_event(**kwargs: Any) -> None:
        seen = Seen.of(kwargs)
        changed = caches["vpcep_connections"].apply_event(seen.type, seen.body)
        forged.seen(seen.rt, seen.type, seen.body)
        endpoint_id = seen.labels.get(ENDPOINT_ID_LABEL) or seen.name
        ref = seen.rt.observed.endpoint_by_uid(endpoint_id)
        if ref is not None:
            if changed:
                seen.rt.queue.add((ENDPOINT_KEY, *ref))
        elif seen.type != "DELETED" and seen.labels.get(MANAGED_BY_LABEL) == MANAGED_BY and seen.rt.primed:
            # Before priming the endpoints are not all known yet; the priming LIST finds real orphans.
            seen.rt.queue.add((ORPHANS_KEY, endpoint_id, ""))

    account_seen: dict[str, str] = {}

    @kopf.on.event("", "v1", "namespaces", id="namespace-events")
    async def namespace_event(**kwargs: Any) -> None:
        seen = Seen.of(kwargs)
        caches["vpcep_namespaces"].apply_event(seen.type, seen.body)
        rt, namespace = seen.rt, seen.name
        account = rt.observed.account(namespace)
        before = account_seen.get(namespace)
        account_seen[namespace] = account
        if before is None or before == account or seen.type == "DELETED":
            return
        rt.observed.forget_quota_order()
        for endpoint in rt.observed.endpoint_names_in(namespace):  # the account changed: permission, quota
            rt.queue.add((ENDPOINT_KEY, namespace, endpoint))
        for service in rt.observed.service_names_in(namespace):
            rt.queue.add((SERVICE_KEY, namespace, service))
            record = rt.observed.service(namespace, service)
            if record is not None:
                wake_service_dependents(rt, record)
        rt.refresh_quota_view(namespace)

    @own.on(WatchTarget(CONFIG_MAP, config.namespace))  # its namespace only: no ConfigMap rights elsewhere
    async def config_map_event(**kwargs: Any) -> None:
        seen = Seen.of(kwargs)
        changed = caches["vpcep_operator_config_maps"].apply_event(seen.type, seen.body)
        rt = seen.rt
        if seen.namespace != config.namespace or not changed:
            return
        if seen.labels.get(GATEWAY_STATUS_LABEL) == "true":
            wake_fleet_dependents(rt)
        elif seen.labels.get(ROUTE_LABEL) == "true":
            ref = rt.observed.endpoint_by_uid(seen.labels.get(ENDPOINT_UID_LABEL, ""))
            if ref is None:
                # Before priming the endpoints are not all known yet; the priming LIST finds real orphans.
                if rt.primed:
                    rt.queue.add((ORPHANS_KEY, seen.labels.get(ENDPOINT_UID_LABEL, ""), ""))
            elif seen.type == "DELETED":  # drift: someone deleted a live route
                rt.forget("ConfigMap", seen.namespace, seen.name)
                rt.route_versions.pop(seen.labels.get(ENDPOINT_ID_LABEL, ""), None)
                rt.queue.add((ENDPOINT_KEY, *ref))

    # The built-in objects the operator owns (label-selected) come from own watches, not kopf: kopf keeps
    # about 1 KB of per-object memory and does ~0.5 ms of work per event for every object it watches, and
    # these are three per endpoint -- 30,000 objects at SPEC §6 scale, with nothing for kopf to do.
    @own.on(*(WatchTarget(SERVICE, namespace, label_selector=owned) for namespace in served))
    async def core_service_event(**kwargs: Any) -> None:
        seen = Seen.of(kwargs)
        caches["vpcep_owned_services"].apply_event(seen.type, seen.body)
        _wake_owner(seen, "Service")

    @own.on(*(WatchTarget(ENDPOINT_SLICE, namespace, label_selector=owned) for namespace in served))
    async def slice_event(**kwargs: Any) -> None:
        seen = Seen.of(kwargs)
        caches["vpcep_owned_slices"].apply_event(seen.type, seen.body)
        _wake_owner(seen, "EndpointSlice")

    @own.on(*(WatchTarget(NETWORK_POLICY, namespace, label_selector=owned) for namespace in served))
    async def policy_event(**kwargs: Any) -> None:
        seen = Seen.of(kwargs)
        caches["vpcep_owned_policies"].apply_event(seen.type, seen.body)
        _wake_owner(seen, "NetworkPolicy")
        gateway_ingress.gateway_ingress_event(seen.rt, seen.type, seen.body)  # R42: undo deletes and edits

    admission.register(config)


@dataclass(frozen=True)
class Seen:
    """One watch event, as the handlers below use it."""

    type: str | None
    body: Any
    namespace: str
    name: str
    uid: str
    rt: Runtime

    @classmethod
    def of(cls, kwargs: dict[str, Any]) -> Seen:
        return cls(
            kwargs.get("type"),
            kwargs["body"],
            kwargs.get("namespace") or "",
            kwargs["name"],
            kwargs.get("uid") or "",
            _runtime(kwargs["memo"]),
        )

    @property
    def deleting(self) -> bool:
        return bool((self.body.get("metadata") or {}).get("deletionTimestamp"))

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.body.get("metadata") or {}).get("labels") or {})


def _wake_owner(seen: Seen, kind: str) -> None:
    """Drift: someone deleted an object the operator built; forget it and let its owner build it again."""
    if seen.labels.get(MANAGED_BY_LABEL) != MANAGED_BY or seen.type != "DELETED":
        return
    rt = seen.rt
    rt.forget(kind, seen.namespace, seen.name)
    ref = rt.observed.endpoint_by_uid(seen.labels.get(ENDPOINT_UID_LABEL, ""))
    if ref is not None:
        rt.queue.add((ENDPOINT_KEY, *ref))
    for owner in (seen.body.get("metadata") or {}).get("ownerReferences") or []:
        if owner.get("kind") == "EndpointService":
            rt.queue.add((SERVICE_KEY, seen.namespace, owner.get("name", "")))


def _service_signature(body: Any) -> tuple[Any, ...]:
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    return (
        meta.get("generation"),
        bool(meta.get("deletionTimestamp")),
        status.get("phase"),
        status.get("reason"),
        status.get("serviceName"),
        status.get("serviceType"),
    )


def _targets_of_deleted_service(body: Any, namespace: str, name: str, operator_namespace: str) -> list[str]:
    targets = []
    service_name = (body.get("status") or {}).get("serviceName")
    if service_name:
        targets.append(f"name:{service_name}")
    if namespace == operator_namespace:
        targets.append(f"cloud:{name}")
    return targets
