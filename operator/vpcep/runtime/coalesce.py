"""Shared writes: one run at a time per key, and every caller that arrives while a run is under way waits for
the next run, which serves them all.

For an object many reconciles need written before they can go on (the gateway ingress policy of a namespace,
R42): a burst of callers costs one write in flight plus one more, never one each, and no caller is answered by
a run that started before it asked (that run may have read the state without the caller's change).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


class Coalescer(Generic[Key]):
    def __init__(self) -> None:
        self._next: dict[Key, asyncio.Future[None]] = {}  # the run the newest callers wait for
        self._running: dict[Key, asyncio.Task[None]] = {}

    async def run(self, key: Key, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work` for `key` after the run under way, if any, together with everyone else who asks
        meanwhile; raises what that run raised. `work` must do the same for every caller of one key."""
        future = self._next.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._next[key] = future
            if key not in self._running:
                self._running[key] = asyncio.create_task(self._drain(key, work), name=f"shared write {key}")
        await asyncio.shield(future)  # a cancelled caller leaves the run to the others

    async def _drain(self, key: Key, work: Callable[[], Awaitable[None]]) -> None:
        try:
            while (future := self._next.pop(key, None)) is not None:
                try:
                    await work()
                except Exception as error:  # handed to the callers, who report it
                    future.set_exception(error)
                    future.exception()  # retrieved: callers that were cancelled must not log it as lost
                else:
                    future.set_result(None)
        finally:
            del self._running[key]
