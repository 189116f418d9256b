"""The Event recorder (R39): Events are posted concurrently, each object's in the order its changes happened,
stamped with the time of the change, and bounded when the API cannot keep up.

A fake API stands in for the API server here: what is tested is the recorder's own queueing, not the
API (the integration tests read real Events from the real API server).
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest

from vpcep.k8s import events
from vpcep.k8s.events import EventRecorder, InvolvedObject, ObjectSpamFilter


class SlowApi:
    """Records each POSTed Event; every POST takes `delay` seconds."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.posted: list[dict[str, Any]] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        self.posted.append(kwargs["body"])
        return kwargs["body"]


def target(n: int) -> InvolvedObject:
    return InvolvedObject("vpcep.io/v1alpha1", "Endpoint", "tenant-a", f"ep-{n}", f"uid-{n}")


async def drained(api: SlowApi, expected: int) -> None:
    for _ in range(500):
        if len(api.posted) >= expected:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {len(api.posted)} of {expected} events posted")


def test_events_of_many_objects_are_posted_several_at_a_time() -> None:
    asyncio.run(_events_of_many_objects_are_posted_several_at_a_time())


async def _events_of_many_objects_are_posted_several_at_a_time() -> None:
    api = SlowApi(delay=0.05)
    recorder = EventRecorder(api, instance="test")  # type: ignore[arg-type]
    recorder.start()
    try:
        for n in range(40):
            recorder.record(target(n), "Normal", "Accepted", "connected")
        await drained(api, 40)
    finally:
        await recorder.stop()
    assert api.most_in_flight > 1, "a bulk create's Events must not wait on one round trip each"


def test_one_objects_events_keep_the_order_of_its_changes() -> None:
    asyncio.run(_one_objects_events_keep_the_order_of_its_changes())


async def _one_objects_events_keep_the_order_of_its_changes() -> None:
    api = SlowApi(delay=0.001)
    recorder = EventRecorder(api, instance="test")  # type: ignore[arg-type]
    recorder.start()
    try:
        for step in range(events.SPAM_BURST):  # within each object's Event budget
            for n in range(8):
                recorder.record(target(n), "Normal", f"Step{step:02d}", "changed")
        await drained(api, 8 * events.SPAM_BURST)
    finally:
        await recorder.stop()
    for n in range(8):
        reasons = [body["reason"] for body in api.posted if body["involvedObject"]["uid"] == f"uid-{n}"]
        assert reasons == sorted(reasons), f"ep-{n}'s Events were posted out of order"


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_an_event_carries_the_time_of_the_change_not_of_its_posting() -> None:
    asyncio.run(_an_event_carries_the_time_of_the_change_not_of_its_posting())


async def _an_event_carries_the_time_of_the_change_not_of_its_posting() -> None:
    api = SlowApi(delay=1.2)
    recorder = EventRecorder(api, instance="test", posters=1)  # type: ignore[arg-type]
    recorder.start()
    try:
        changed = {now()}
        recorder.record(target(1), "Normal", "Creating", "waiting")
        recorder.record(target(1), "Normal", "Accepted", "connected")  # posted 2.4 s later
        changed.add(now())
        await drained(api, 2)
    finally:
        await recorder.stop()
    assert now() not in changed  # the posts came seconds later ...
    for body in api.posted:  # ... yet each Event says when its change happened
        assert body["firstTimestamp"] in changed and body["lastTimestamp"] in changed


def test_a_backlog_beyond_the_bound_drops_new_events_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(events, "QUEUE_LIMIT", 10)

    async def overflow() -> int:
        recorder = EventRecorder(SlowApi(delay=10), instance="test", posters=1)  # type: ignore[arg-type]
        for n in range(15):  # not started: nothing drains
            recorder.record(target(n), "Normal", "Accepted", "connected")
        return recorder.dropped

    assert asyncio.run(overflow()) == 5
    assert "dropping new ones" in caplog.text


def test_one_object_flipping_phases_cannot_fill_the_queue_others_events_still_go() -> None:
    """R39 under a hostile tenant: 1,000 phase flips of one Endpoint queue its budget (25) and no more;
    another object's Event right after is queued (posted) all the same."""
    asyncio.run(_one_object_flipping_phases())


async def _one_object_flipping_phases() -> None:
    api = SlowApi(delay=0.001)
    recorder = EventRecorder(api, instance="test")  # type: ignore[arg-type]
    for flip in range(1000):
        recorder.record(target(1), "Normal", "Accepted" if flip % 2 else "Rejected", "flipped")
    recorder.record(target(2), "Normal", "Accepted", "connected")
    assert recorder.filtered == 1000 - events.SPAM_BURST and recorder.dropped == 0
    recorder.start()
    try:
        await drained(api, events.SPAM_BURST + 1)
        await asyncio.sleep(0.05)
    finally:
        await recorder.stop()
    assert len(api.posted) == events.SPAM_BURST + 1
    assert [body["involvedObject"]["name"] for body in api.posted].count("ep-2") == 1


def test_an_objects_event_budget_refills_over_time_and_forgets_the_least_recently_heard() -> None:
    now = [0.0]
    spam = ObjectSpamFilter(burst=2, refill_s=10, tracked=2, clock=lambda: now[0])
    assert [spam.allow("a") for _ in range(3)] == [True, True, False]
    now[0] = 10.0
    assert spam.allow("a") and not spam.allow("a")  # one Event per refill
    spam.allow("b")
    spam.allow("c")  # three objects heard from, two tracked: "a" forgotten, a full budget again
    assert spam.allow("a") and spam.allow("a")
