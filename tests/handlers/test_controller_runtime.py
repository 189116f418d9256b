"""The controller runtime (vpcep.runtime): sources feed caches and wake controllers through their declared
mappers; nothing reconciles before every source has listed; each key reaches the controller of its type; the
garbage collector is held while the caches fill (vpcep.runtime.heap)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from vpcep.controllers.keys import EndpointKey, ServiceKey
from vpcep.runtime.controller import Controller, Manager, Watches
from vpcep.runtime.heap import hold_collection, resume_collection
from vpcep.runtime.source import Event, Source


@dataclass(frozen=True, slots=True)
class ThingKey:
    name: str


@dataclass(frozen=True, slots=True)
class OtherKey:
    name: str


class ListedByHand(Source):
    """A source whose LIST the test completes (no API): run() waits until `listed` is set."""

    def __init__(self, name: str) -> None:
        super().__init__(name, [], project=lambda body: {("name", body["metadata"]["name"]): body["spec"]})
        self.listed = asyncio.Event()

    async def run(self, api: Any) -> None:
        await asyncio.Event().wait()

    async def wait_listed(self) -> None:
        await self.listed.wait()

    async def emit(self, event_type: str | None, name: str, version: int, spec: str) -> None:
        meta = {"name": name, "uid": f"uid-{name}", "resourceVersion": str(version)}
        await self._event(event_type, {"metadata": meta, "spec": spec})


def body_of(event: Event) -> str:
    return str((event.new or event.old or {}).get(("name", event.name)))


def test_typed_keys_of_two_controllers_never_collide() -> None:
    assert EndpointKey("team-a", "db") != ServiceKey("team-a", "db")
    assert len({EndpointKey("team-a", "db"), ServiceKey("team-a", "db")}) == 2


def test_reconciles_wait_for_every_source_then_each_key_reaches_its_controller() -> None:
    async def scenario() -> tuple[list[Any], list[Any], list[Any], list[tuple[str | None, str, str]]]:
        things, others = ListedByHand("things"), ListedByHand("others")
        reconciled: list[Any] = []
        seen: list[tuple[str | None, str, str]] = []

        async def reconcile(context: Any, key: Any) -> None:
            reconciled.append(key)

        def thing_itself(context: Any, event: Event) -> list[ThingKey]:
            seen.append((event.type, event.name, body_of(event)))
            return [ThingKey(event.name)]

        def other_of_thing(context: Any, event: Event) -> list[OtherKey]:
            old = (event.old or {}).get(("name", event.name))
            new = (event.new or {}).get(("name", event.name))
            return [OtherKey(event.name)] if old is not None and old != new else []  # only a real change

        controllers = [
            Controller("Thing", ThingKey, reconcile, watches=(Watches("things", thing_itself),)),
            Controller(
                "Other",
                OtherKey,
                reconcile,
                watches=(Watches("things", other_of_thing),),
                initial=lambda context: [OtherKey("from-the-start")],
            ),
        ]
        manager: Manager[None] = Manager({"things": things, "others": others}, controllers, workers=2)
        manager.bind(None)
        running = asyncio.create_task(manager.run(api=None))  # type: ignore[arg-type]
        await things.emit(None, "a", 1, "v1")
        things.listed.set()
        await asyncio.sleep(0.05)
        before_priming = list(reconciled)
        others.listed.set()
        await asyncio.sleep(0.05)
        at_priming = list(reconciled)
        await things.emit(None, "a", 1, "v1")  # a re-list repeating the held version: nothing new
        await things.emit("MODIFIED", "a", 2, "v2")
        await asyncio.sleep(0.05)
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        return before_priming, at_priming, reconciled[len(at_priming) :], seen

    before_priming, at_priming, later, seen = asyncio.run(scenario())
    assert before_priming == []  # the first source listed, the second not yet: nothing runs
    assert set(at_priming) == {ThingKey("a"), OtherKey("from-the-start")}
    assert set(later) == {ThingKey("a"), OtherKey("a")}
    assert seen == [(None, "a", "v1"), ("MODIFIED", "a", "v2")]  # the repeated version woke no mapper


@pytest.fixture
def collector_restored() -> Iterator[None]:
    yield
    gc.unfreeze()
    gc.enable()


def test_collection_returns_when_every_source_has_listed_with_start_up_frozen(
    collector_restored: None,
) -> None:
    async def scenario() -> tuple[bool, bool, int]:
        first, second = ListedByHand("first"), ListedByHand("second")
        manager: Manager[None] = Manager({"first": first, "second": second}, [], workers=1)
        manager.bind(None)
        timer = hold_collection()
        running = asyncio.create_task(manager.watch(api=None))  # type: ignore[arg-type]
        first.listed.set()
        await asyncio.sleep(0.05)
        held_while_one_source_lists = not gc.isenabled()
        second.listed.set()
        await asyncio.sleep(0.05)
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        timer.cancel()
        return held_while_one_source_lists, gc.isenabled(), gc.get_freeze_count()

    held, enabled, frozen = asyncio.run(scenario())
    assert held, "the collector ran while the caches were still filling"
    assert enabled, "the collector stayed off after priming"
    assert frozen > 0, "start-up's survivors were not frozen out of the collector's walks"


def test_collection_returns_after_the_limit_when_the_caches_never_fill(collector_restored: None) -> None:
    hold_collection(limit_s=0.2)
    assert not gc.isenabled()
    deadline = time.monotonic() + 5
    while not gc.isenabled() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gc.isenabled()
    resume_collection()  # a late priming changes nothing
    assert gc.isenabled()
