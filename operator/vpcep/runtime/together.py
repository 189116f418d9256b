"""Independent API writes sent at once: a reconcile waits one round trip for them instead of one each.

Unlike a bare `asyncio.gather`, every write has ended (applied or failed) when this returns or raises, so
nothing writes on behind a reconcile that already failed; and the error raised is the first write's own
(an ApiError stays an ApiError for the work queue's retry), not an ExceptionGroup as a TaskGroup would give.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def together(*writes: Awaitable[Any]) -> list[Any]:
    """The answers, in the order given; the first failure (in that order) raised once all have ended."""
    answers = await asyncio.gather(*writes, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return answers
