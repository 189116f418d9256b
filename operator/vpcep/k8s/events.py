"""Kubernetes Events on the operator's objects (R39), posted in the background so reconciles never
wait on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from vpcep.k8s.client import ApiError, KubeApi
from vpcep.k8s.resources import EVENT

logger = logging.getLogger(__name__)
COMPONENT = "vpcep-operator"
QUEUE_LIMIT = 10_000
# One POST at a time is bound by the API's round trip, not its capacity: during a bulk create of 10,000
# endpoints a single poster fell minutes behind, so Events arrived long after the change they report.
POSTERS = 4
# Per involved object, as client-go's EventSourceObjectSpamFilter: a burst of 25, then one every 5 minutes,
# for the 4,096 objects heard from last. One tenant's object flipping phases cannot fill the shared queue.
SPAM_BURST = 25
SPAM_REFILL_S = 300.0
SPAM_TRACKED = 4096


@dataclass(frozen=True)
class InvolvedObject:
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class EventRecord:
    target: InvolvedObject
    type: str  # Normal or Warning
    reason: str
    message: str
    # When the change happened, not when the Event was posted: with a backlog, or several posters racing,
    # `kubectl get events` still shows the changes in the order and at the time they happened.
    at: str


class ObjectSpamFilter:
    """A token bucket per key (an involved object): `burst` Events, then one per `refill_s`."""

    def __init__(
        self,
        burst: int = SPAM_BURST,
        refill_s: float = SPAM_REFILL_S,
        tracked: int = SPAM_TRACKED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst, self._refill_s, self._tracked, self._clock = burst, refill_s, tracked, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when)

    def allow(self, key: str) -> bool:
        now = self._clock()
        tokens, when = self._buckets.pop(key, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - when) / self._refill_s)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, now)
        while len(self._buckets) > self._tracked:  # the least recently heard from go first
            self._buckets.popitem(last=False)
        return allowed


class EventRecorder:
    """Bounded queues drained by a few posting tasks, one queue per share of objects, so one object's Events
    are posted in the order they happened. When the API is slower than the changes, old events win and new
    ones are dropped (counted, and logged once per overflow) rather than held without bound. Each object has
    an Event budget (ObjectSpamFilter), so no one object -- no one tenant's -- fills the queues."""

    def __init__(self, api: KubeApi, instance: str, posters: int = POSTERS) -> None:
        self._api = api
        self._instance = instance
        self._queues: list[asyncio.Queue[EventRecord]] = [
            asyncio.Queue(maxsize=max(1, QUEUE_LIMIT // posters)) for _ in range(posters)
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._spam = ObjectSpamFilter()
        self.dropped = 0
        self.filtered = 0

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._drain(queue), name=f"vpcep event poster {n}")
            for n, queue in enumerate(self._queues)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def record(self, target: InvolvedObject, type_: str, reason: str, message: str) -> None:
        key = target.uid or f"{target.namespace}/{target.name}"
        if not self._spam.allow(key):
            self.filtered += 1  # the object's status still says it all; only its Event is not posted
            logger.debug(
                "events: %s/%s is over its Event budget; %s not posted", target.namespace, target.name, reason
            )
            return
        queue = self._queues[hash(key) % len(self._queues)]
        at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            queue.put_nowait(EventRecord(target, type_, reason, message[:1024], at))
        except asyncio.QueueFull:
            if not self.dropped:
                logger.warning("events: too many are waiting to be posted; dropping new ones")
            self.dropped += 1
            return
        if self.dropped and queue.qsize() < queue.maxsize // 2:
            logger.warning("events: %d were dropped while the API was slow", self.dropped)
            self.dropped = 0

    async def _drain(self, queue: asyncio.Queue[EventRecord]) -> None:
        while True:
            record = await queue.get()
            try:
                await self._post(record)
            except ApiError as error:  # the namespace may be terminating: an Event is not worth a retry
                logger.debug(
                    "event for %s/%s not posted: %s", record.target.namespace, record.target.name, error
                )

    async def _post(self, record: EventRecord) -> None:
        target = record.target
        await self._api.request(
            "POST",
            EVENT.collection_path(target.namespace),
            body={
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"generateName": f"{target.name}.", "namespace": target.namespace},
                "involvedObject": {
                    "apiVersion": target.api_version,
                    "kind": target.kind,
                    "namespace": target.namespace,
                    "name": target.name,
                    "uid": target.uid,
                },
                "type": record.type,
                "reason": record.reason,
                "message": record.message,
                "source": {"component": COMPONENT},
                "reportingComponent": COMPONENT,
                "reportingInstance": self._instance,
                "firstTimestamp": record.at,
                "lastTimestamp": record.at,
                "count": 1,
            },
        )
