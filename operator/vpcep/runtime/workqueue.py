"""A de-duplicating work queue with per-key serialisation (the controller-runtime pattern).

Watch events and cross-object wake-ups only *enqueue* keys; a bounded pool of workers reconciles them.
A key is never reconciled by two workers at once; a key enqueued while it is being reconciled is
reconciled once more afterwards (so no change is ever missed), and a burst of events for one key
collapses into one reconcile. Failed reconciles are retried with a capped exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

Key = TypeVar("Key", bound=Hashable)
BACKOFF_FIRST = 0.5
BACKOFF_CAP = 60.0


class RetryLater(Exception):
    """Raised by a reconciler that wants to run again after `delay` seconds without logging an error."""

    def __init__(self, delay: float, why: str = "") -> None:
        super().__init__(why)
        self.delay = delay


class WorkQueue(Generic[Key]):
    def __init__(
        self,
        name: str,
        reconcile: Callable[[Key], Awaitable[None]],
        workers: int,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self._name = name
        self._on_wait = on_wait  # told how long each key waited before a worker took it (metrics)
        self._queued_at: dict[Key, float] = {}
        self._reconcile = reconcile
        self._workers = workers
        self._pending: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._active: set[Key] = set()
        self._dirty: set[Key] = set()
        self._failures: dict[Key, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self.reconciled = 0  # reconciles run since start (for the start-up report and benchmarks)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name=f"{self._name} worker {n}") for n in range(self._workers)
        ]

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def add(self, key: Key) -> None:
        if key in self._active:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queued_at[key] = time.monotonic()
            self._pending.put_nowait(key)

    def add_after(self, key: Key, delay: float) -> None:
        """Add `key` after `delay` seconds; with a delayed add already pending for it, the sooner one wins (a
        short retry asked for while a long backoff waits must not wait out the backoff)."""
        loop = asyncio.get_running_loop()
        pending = self._timers.get(key)
        if pending is not None:
            if pending.when() <= loop.time() + delay:
                return
            pending.cancel()

        def fire() -> None:
            self._timers.pop(key, None)
            self.add(key)

        self._timers[key] = loop.call_later(delay, fire)

    def idle(self) -> bool:
        return not self._queued and not self._active and not self._dirty

    def __len__(self) -> int:
        return len(self._queued) + len(self._active)

    async def _work(self) -> None:
        while True:
            key = await self._pending.get()
            self._queued.discard(key)
            queued_at = self._queued_at.pop(key, None)
            if self._on_wait is not None and queued_at is not None:
                self._on_wait(time.monotonic() - queued_at)
            self._active.add(key)
            try:
                await self._reconcile(key)
                self.reconciled += 1
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except RetryLater as later:
                self.add_after(key, later.delay)
            except Exception:
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (failures - 1))
                logger.exception(
                    "%s: reconciling %s failed (attempt %d), retrying in %.1fs",
                    self._name,
                    key,
                    failures,
                    delay,
                )
                self.add_after(key, delay)
            finally:
                self._active.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)
