"""The work queue: one reconcile per key at a time, bursts collapse, changes during a reconcile are
not lost.
"""

from __future__ import annotations

import asyncio

from vpcep.runtime.workqueue import WorkQueue


def test_a_key_is_never_reconciled_twice_at_once_and_changes_are_not_lost() -> None:
    async def scenario() -> tuple[int, int, list[str]]:
        running: set[str] = set()
        overlaps = 0
        calls: list[str] = []
        release = asyncio.Event()

        async def reconcile(key: str) -> None:
            nonlocal overlaps
            if key in running:
                overlaps += 1
            running.add(key)
            calls.append(key)
            if len(calls) == 1:
                await release.wait()
            running.discard(key)

        queue: WorkQueue[str] = WorkQueue("test", reconcile, workers=4)
        queue.start()
        queue.add("a")
        await asyncio.sleep(0.01)
        for _ in range(10):  # a burst while "a" is being reconciled
            queue.add("a")
        release.set()
        for _ in range(100):
            await asyncio.sleep(0.01)
            if queue.idle():
                break
        await queue.stop()
        return overlaps, len(calls), calls

    overlaps, count, calls = asyncio.run(scenario())
    assert overlaps == 0
    assert count == 2, calls  # the first run, then exactly one more for the burst


def test_failures_are_retried_with_backoff() -> None:
    async def scenario() -> int:
        attempts = 0

        async def reconcile(key: str) -> None:
            nonlocal attempts
            attempts += 1
            if attempts < 2:
                raise RuntimeError("API hiccup")

        queue: WorkQueue[str] = WorkQueue("test", reconcile, workers=1)
        queue.start()
        queue.add("x")
        for _ in range(200):
            await asyncio.sleep(0.01)
            if attempts >= 2 and queue.idle():
                break
        await queue.stop()
        return attempts

    assert asyncio.run(scenario()) == 2


def test_a_sooner_delayed_add_replaces_a_later_one() -> None:
    """A short retry (e.g. RetryLater(0.2)) asked for while a long backoff is pending runs at the short delay;
    a later one asked for while a sooner one is pending does not postpone it."""

    async def scenario() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        runs: list[float] = []

        async def reconcile(key: str) -> None:
            runs.append(loop.time())

        queue: WorkQueue[str] = WorkQueue("test", reconcile, workers=1)
        queue.start()
        started = loop.time()
        queue.add_after("x", 30.0)
        queue.add_after("x", 0.05)
        queue.add_after("x", 20.0)
        for _ in range(200):
            await asyncio.sleep(0.01)
            if runs:
                break
        await asyncio.sleep(0.1)
        await queue.stop()
        return runs[0] - started if runs else float("inf"), float(len(runs))

    first, count = asyncio.run(scenario())
    assert first < 1.0
    assert count == 1
