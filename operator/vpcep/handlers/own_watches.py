"""The watches the operator runs itself (vpcep.k8s.watching), beside kopf's, and the backend watches.

Handlers registered here take kopf's keyword arguments (type, body, namespace, name, uid, memo), so an
event handler can move between kopf and an own watch without changing its body.

Backends (R1): any Service or Pod an EndpointService names may appear, change or go at any time, and the
service must follow by itself. Watching every Pod and Service body cluster-wide through kopf would hold
and parse the whole cluster's workloads; a metadata-only watch per kind (cluster-wide, or per served
namespace when the operator is scoped) only says which object changed, and wakes the EndpointServices
that name it. They then GET their one backend (vpcep.handlers.service.backend_for).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from vpcep.api.endpoint_service import BackendKind
from vpcep.config import OperatorConfig
from vpcep.handlers.runtime import SERVICE_KEY, Runtime
from vpcep.k8s.client import KubeApi, Manifest
from vpcep.k8s.resources import POD, SERVICE
from vpcep.k8s.watching import Watch, WatchTarget

KopfStyleHandler = Callable[..., Awaitable[None]]
RelistHook = Callable[[Any], Awaitable[None]]  # receives kopf's memo


@dataclass(frozen=True)
class _Entry:
    target: WatchTarget
    handler: KopfStyleHandler
    on_relist: RelistHook | None


class OwnWatches:
    """A registry like kopf's: `@own.on(target)` registers, `run(api, memo)` watches until cancelled."""

    def __init__(self) -> None:
        self._entries: list[_Entry] = []
        self.watches: list[Watch] = []
        self._started = asyncio.Event()

    def on(
        self, *targets: WatchTarget, on_relist: RelistHook | None = None
    ) -> Callable[[KopfStyleHandler], KopfStyleHandler]:
        def register(handler: KopfStyleHandler) -> KopfStyleHandler:
            self._entries.extend(_Entry(target, handler, on_relist) for target in targets)
            return handler

        return register

    async def run(self, api: KubeApi, memo: Any) -> None:
        self.watches = [self._watch(api, memo, entry) for entry in self._entries]
        self._started.set()
        await asyncio.gather(*(watch.run() for watch in self.watches))

    async def wait_listed(self) -> None:
        """Until every watch has delivered its first LIST: the caches they feed are complete."""
        await self._started.wait()
        for watch in self.watches:
            await watch.listed.wait()

    @staticmethod
    def _watch(api: KubeApi, memo: Any, entry: _Entry) -> Watch:
        async def deliver(event_type: str | None, body: Manifest) -> None:
            meta = body.get("metadata") or {}
            await entry.handler(
                type=event_type,
                body=body,
                namespace=meta.get("namespace"),
                name=meta.get("name") or "",
                uid=meta.get("uid"),
                memo=memo,
            )

        async def relisted() -> None:
            if entry.on_relist is not None:
                await entry.on_relist(memo)

        return Watch(api, entry.target, deliver, relisted)


def backend_targets(config: OperatorConfig) -> list[WatchTarget]:
    """One metadata-only watch per backend kind: cluster-wide, or per namespace a backend may live in."""
    namespaces: list[str | None] = list(config.backend_namespaces()) if config.scoped else [None]
    return [
        WatchTarget(kind, namespace, metadata_only=True, replay=False)
        for kind in (SERVICE, POD)
        for namespace in namespaces
    ]


def wake_backend_dependents(rt: Runtime, namespace: str, kind: BackendKind, name: str) -> None:
    """R1: a backend appeared, changed or went: the services naming it read it again."""
    for ref in rt.observed.services_with_backend(namespace, kind.value, name):
        rt.backends.pop(ref, None)
        rt.queue.add((SERVICE_KEY, *ref))


def wake_every_observed_backend(rt: Runtime) -> None:
    """After a re-list nothing is known about what changed meanwhile: every service that holds a backend
    observation reads it again (those without one read it on their next reconcile anyway).
    """
    for ref in list(rt.backends):
        rt.backends.pop(ref, None)
        rt.queue.add((SERVICE_KEY, *ref))


def register_backend_watches(own: OwnWatches, config: OperatorConfig) -> None:
    async def relisted(memo: Any) -> None:
        wake_every_observed_backend(memo.runtime)

    for kind, resource in ((BackendKind.SERVICE, SERVICE), (BackendKind.POD, POD)):
        targets = [target for target in backend_targets(config) if target.kind == resource]

        async def backend_event(kind: BackendKind = kind, **kwargs: Any) -> None:
            rt: Runtime = kwargs["memo"].runtime
            wake_backend_dependents(rt, kwargs.get("namespace") or "", kind, kwargs["name"])

        own.on(*targets, on_relist=relisted)(backend_event)
