"""Kubernetes Events on the operator's objects (R39), posted in the background so reconciles never
wait on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from dataclasses import dataclass

from vpcep.k8s.client import ApiError, KubeApi
from vpcep.k8s.resources import EVENT

logger = logging.getLogger(__name__)
COMPONENT = "vpcep-operator"
QUEUE_LIMIT = 10_000


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


class EventRecorder:
    """A bounded queue drained by one task; when the API is slow, old events win and new ones are dropped."""

    def __init__(self, api: KubeApi, instance: str) -> None:
        self._api = api
        self._instance = instance
        self._queue: asyncio.Queue[EventRecord] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._drain(), name="vpcep event poster")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def record(self, target: InvolvedObject, type_: str, reason: str, message: str) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(EventRecord(target, type_, reason, message[:1024]))

    async def _drain(self) -> None:
        while True:
            record = await self._queue.get()
            try:
                await self._post(record)
            except ApiError as error:  # the namespace may be terminating: an Event is not worth a retry
                logger.debug(
                    "event for %s/%s not posted: %s", record.target.namespace, record.target.name, error
                )

    async def _post(self, record: EventRecord) -> None:
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
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
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            },
        )
