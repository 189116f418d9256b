"""A source: one kind's watches (vpcep.k8s.watching) feeding its cache and telling subscribers what changed.

The one watch path of the operator (controller-runtime's informer): every kind it reads is listed, then
watched, re-listed on 410 Gone, page by page; the cache takes each event in order, and only an event that told
the cache something new reaches the subscribers (the state components first, then the controllers' mappers).
A source without a projection keeps nothing (the metadata-only backend watches): each of its events counts,
and a re-list is announced as one RELISTED event (what changed meanwhile is unknown).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vpcep.k8s.client import KubeApi, Manifest
from vpcep.k8s.watching import Watch, WatchTarget
from vpcep.runtime.cache import ObjectCache, Project, Projection, resource_version

RELISTED = "RELISTED"


@dataclass(frozen=True, slots=True)
class Event:
    """One change of one object: its watch event type (None: listed), its body, and the cache's projections
    before and after (None: absent). A RELISTED event has an empty body."""

    type: str | None
    body: Manifest
    old: Projection | None = None
    new: Projection | None = None

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self.body.get("metadata") or {})

    @property
    def namespace(self) -> str:
        return str(self.meta.get("namespace") or "")

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or "")

    @property
    def uid(self) -> str:
        return str(self.meta.get("uid") or "")

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.meta.get("labels") or {})

    @property
    def deleted(self) -> bool:
        return self.type == "DELETED"


Subscriber = Callable[[Event], None]


class Source:
    def __init__(self, name: str, targets: Sequence[WatchTarget], project: Project | None = None) -> None:
        self.name = name
        self.targets = tuple(targets)
        self.cache = ObjectCache(project) if project is not None else None
        self._subscribers: list[Subscriber] = []
        self._watches: list[Watch] = []
        self._started = asyncio.Event()
        self._floor: dict[str, int] = {}  # uid -> version a refresh took in ahead of the watch

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    async def run(self, api: KubeApi) -> None:
        """Watch until cancelled (a watch never gives up: it resumes, re-lists, backs off)."""
        self._watches = [Watch(api, target, self._watched, self._relisted) for target in self.targets]
        self._started.set()
        await asyncio.gather(*(watch.run() for watch in self._watches))

    async def wait_listed(self) -> None:
        """Until every watch of the source has delivered its first LIST: the cache is complete."""
        await self._started.wait()
        for watch in self._watches:
            await watch.listed.wait()

    @property
    def seen_up_to(self) -> int | None:
        """The resourceVersion up to which every watch of the source has delivered the cluster's changes
        (its last LIST, event or bookmark); None before all have listed. resourceVersions are etcd's
        revision here, as on kube-apiserver: comparable across kinds."""
        versions = [watch.version for watch in self._watches]
        if not versions or any(not version for version in versions):
            return None
        try:
            return min(int(version) for version in versions if version)
        except ValueError:
            return None

    @property
    def lists(self) -> int:
        return sum(watch.lists for watch in self._watches)

    async def refresh(self, api: KubeApi) -> None:
        """A fresh, consistent LIST of every target taken into the cache now, ahead of the watch: a new
        leader must see its predecessor's last writes before it allocates (R50). An object the list showed
        newer than the cache keeps that version until the watch catches up with it (its older events would
        roll the cache back)."""
        assert self.cache is not None, f"source {self.name} keeps no cache to refresh"
        for target in self.targets:
            async for items, _ in api.list_pages(
                target.kind, target.namespace, label_selector=target.label_selector
            ):
                for body in items:
                    change = self.cache.apply(None, body)
                    if change is not None:
                        self._floor[str(body["metadata"]["uid"])] = resource_version(body)
                        self.deliver(Event(None, body, *change))

    async def _watched(self, event_type: str | None, body: Manifest) -> None:
        if self._floor and event_type != "DELETED":
            uid = str((body.get("metadata") or {}).get("uid") or "")
            floor = self._floor.get(uid)
            if floor is not None:
                if resource_version(body) < floor:
                    return  # older than what a refresh already took in
                del self._floor[uid]
        await self._event(event_type, body)

    async def _event(self, event_type: str | None, body: Manifest) -> None:
        if self.cache is None:
            self.deliver(Event(event_type, body))
            return
        change = self.cache.apply(event_type, body)
        if change is not None:
            self.deliver(Event(event_type, body, *change))

    async def _relisted(self) -> None:
        if self.cache is None:
            self.deliver(Event(RELISTED, {}))

    def deliver(self, event: Event) -> None:
        for subscriber in self._subscribers:
            subscriber(event)
