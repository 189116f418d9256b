"""Writes sent together: every one has ended before the reconcile goes on or fails, and the error is the
write's own (the work queue retries on ApiError, not on an ExceptionGroup)."""

from __future__ import annotations

import asyncio

import pytest

from vpcep.k8s.client import ApiError
from vpcep.runtime.together import together


def test_answers_come_back_in_order_and_the_writes_overlap() -> None:
    running: list[int] = []
    overlapped: list[int] = []

    async def write(n: int) -> int:
        running.append(n)
        await asyncio.sleep(0.01)
        overlapped.append(len(running))
        return n * 10

    assert asyncio.run(together(write(1), write(2), write(3))) == [10, 20, 30]
    assert overlapped[0] == 3, "all three were in flight at once"


def test_the_first_failure_is_raised_as_itself_after_every_write_ended() -> None:
    ended: list[str] = []

    async def fails() -> None:
        raise ApiError(409, "PATCH", "/x", "conflict")

    async def slow() -> str:
        await asyncio.sleep(0.02)
        ended.append("slow")
        return "done"

    with pytest.raises(ApiError) as raised:
        asyncio.run(together(slow(), fails()))
    assert raised.value.status == 409
    assert ended == ["slow"], "the other write was not abandoned half-way"
