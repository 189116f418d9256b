"""R50: leader election on a Lease, as client-go's leaderelection does it -- the state machine against an
in-memory Lease store (optimistic concurrency like the API server's), with an injected monotonic clock for
the expiry rules and short real periods for the campaign and renewal loops."""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass, field
from typing import Any

import pytest

from vpcep.k8s.resources import ENDPOINT
from vpcep.k8s.watching import WatchTarget
from vpcep.runtime.controller import Controller, Manager
from vpcep.runtime.leader import ElectionTiming, LeaderElector, LeaseConflict, LeaseRecord, StoredLease
from vpcep.runtime.source import Source

TIMING = ElectionTiming(lease_duration=10.0, renew_deadline=7.0, retry_period=2.0)
# Short real periods, yet long enough that a process descheduled for a few hundred ms on a loaded machine
# (CI, parallel sessions) does not lose a lease the test expects it to keep.
FAST = ElectionTiming(lease_duration=1.5, renew_deadline=1.0, retry_period=0.1)


@dataclass
class MemoryLeaseStore:
    """The Lease as the API server keeps it: a write must name the current resourceVersion (else 409)."""

    stored: StoredLease | None = None
    writes: int = 0
    unreachable: set[str] = field(default_factory=set)  # identities whose requests fail (a partition)
    asking: str = ""

    def _check(self) -> None:
        if self.asking in self.unreachable:
            raise OSError("connection refused")

    async def get(self) -> StoredLease | None:
        self._check()
        return self.stored

    async def create(self, record: LeaseRecord) -> StoredLease:
        self._check()
        if self.stored is not None:
            raise LeaseConflict("exists")
        return self._write(record)

    async def update(self, record: LeaseRecord, version: str) -> StoredLease:
        self._check()
        if self.stored is None or self.stored.version != version:
            raise LeaseConflict("version changed")
        return self._write(record)

    def _write(self, record: LeaseRecord) -> StoredLease:
        self.writes += 1
        self.stored = StoredLease(record, str(self.writes))
        return self.stored


class SeenBy:
    """One candidate's view of the shared store (so a partition can cut off one identity only)."""

    def __init__(self, store: MemoryLeaseStore, identity: str) -> None:
        self.store, self.identity = store, identity

    async def get(self) -> StoredLease | None:
        self.store.asking = self.identity
        return await self.store.get()

    async def create(self, record: LeaseRecord) -> StoredLease:
        self.store.asking = self.identity
        return await self.store.create(record)

    async def update(self, record: LeaseRecord, version: str) -> StoredLease:
        self.store.asking = self.identity
        return await self.store.update(record, version)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def candidate(store: MemoryLeaseStore, name: str, clock: Clock, wall: datetime.datetime | None = None) -> Any:
    moment = wall or datetime.datetime(2026, 12, 3, 12, 0, tzinfo=datetime.UTC)
    return LeaderElector(SeenBy(store, name), name, TIMING, clock=clock, wall=lambda: moment)


def attempt(elector: LeaderElector) -> bool:
    return asyncio.run(elector.try_acquire_or_renew())


def test_the_first_candidate_creates_the_lease_and_the_second_waits() -> None:
    store, clock = MemoryLeaseStore(), Clock()
    a, b = candidate(store, "a", clock), candidate(store, "b", clock)
    assert attempt(a)
    assert not attempt(b)
    assert store.stored is not None and store.stored.record.holder == "a"
    assert store.stored.record.lease_duration_seconds == 10


def test_expiry_counts_from_when_this_process_saw_the_record_change_not_from_the_holders_timestamps() -> None:
    """The holder's renewTime says 1999 (a skewed clock, or a lease long dead): a standby that has only just
    read it still waits the full duration on its own clock -- and a future-dated renewTime does not keep a
    dead leader forever."""
    store, clock = MemoryLeaseStore(), Clock()
    long_ago = datetime.datetime(1999, 1, 1, tzinfo=datetime.UTC)
    assert attempt(candidate(store, "old", clock, wall=long_ago))
    standby = candidate(store, "b", clock)
    assert not attempt(standby)
    clock.now += 9.9
    assert not attempt(standby), "taken before the lease duration passed on the standby's clock"
    clock.now += 0.2
    assert attempt(standby)
    assert store.stored is not None and store.stored.record.holder == "b"

    future = datetime.datetime(2100, 1, 1, tzinfo=datetime.UTC)
    store2 = MemoryLeaseStore()
    assert attempt(candidate(store2, "skewed", clock, wall=future))
    other = candidate(store2, "c", clock)
    assert not attempt(other)
    clock.now += 10.1
    assert attempt(other), "a future renewTime kept a dead leader's lease"


def test_every_renewal_restarts_the_standbys_count() -> None:
    store, clock = MemoryLeaseStore(), Clock()
    leader, standby = candidate(store, "a", clock), candidate(store, "b", clock)
    assert attempt(leader)
    assert not attempt(standby)
    for _ in range(5):  # the leader renews every 2 s; the standby sees each change
        clock.now += 2.0
        assert attempt(leader)
        assert not attempt(standby)
    clock.now += 9.0
    assert not attempt(standby)
    clock.now += 1.0
    assert attempt(standby)


def test_takeover_counts_a_transition_and_keeps_acquire_time_on_renewal() -> None:
    store, clock = MemoryLeaseStore(), Clock()
    early = datetime.datetime(2026, 12, 3, 12, 0, tzinfo=datetime.UTC)
    leader = candidate(store, "a", clock, wall=early)
    assert attempt(leader)
    later = early + datetime.timedelta(seconds=5)
    leader._wall = lambda: later
    assert attempt(leader)
    assert store.stored is not None
    assert store.stored.record.acquire_time == "2026-12-03T12:00:00.000000Z"
    assert store.stored.record.renew_time == "2026-12-03T12:00:05.000000Z"
    assert store.stored.record.transitions == 0
    standby = candidate(store, "b", clock)
    assert not attempt(standby)
    clock.now += 11
    assert attempt(standby)
    assert store.stored.record.transitions == 1


def test_two_standbys_racing_for_an_expired_lease_give_one_leader() -> None:
    """Both read the same expired record; the store takes the first write and refuses the second (409)."""
    store, clock = MemoryLeaseStore(), Clock()
    assert attempt(candidate(store, "dead", clock))
    b, c = candidate(store, "b", clock), candidate(store, "c", clock)
    assert not attempt(b) and not attempt(c)
    clock.now += 11

    async def race() -> list[bool]:
        return list(await asyncio.gather(b.try_acquire_or_renew(), c.try_acquire_or_renew()))

    assert sorted(asyncio.run(race())) == [False, True]


def test_a_released_lease_is_taken_at_once() -> None:
    store, clock = MemoryLeaseStore(), Clock()
    leader, standby = candidate(store, "a", clock), candidate(store, "b", clock)
    assert attempt(leader)
    assert not attempt(standby)
    asyncio.run(leader.release())
    assert store.stored is not None and store.stored.record.holder == ""
    assert attempt(standby)


def test_a_new_leader_skips_the_catch_up_list_only_when_its_caches_saw_past_a_clean_release_R50() -> None:
    """The take-over LIST (R50: a new leader must see its predecessor's last writes before it allocates) is
    the restart's biggest single read at scale; it is skipped only when provably redundant."""
    store, clock = MemoryLeaseStore(), Clock()
    first = candidate(store, "a", clock)
    assert attempt(first)
    assert first.saw_every_write_of_predecessor(None)  # nobody led before it: nothing to catch up with

    asyncio.run(first.release())  # a clean stop: its writes all precede this version
    released_at = int(store.stored.version) if store.stored else 0
    after_clean = candidate(store, "b", clock)
    assert attempt(after_clean)
    assert after_clean.saw_every_write_of_predecessor(released_at)  # listed after the release
    assert not after_clean.saw_every_write_of_predecessor(released_at - 1)  # a standby primed earlier
    assert not after_clean.saw_every_write_of_predecessor(None)  # a watch that has not listed yet

    clock.now += TIMING.lease_duration  # "b" vanishes without releasing: writes may land after its renewal
    after_crash = candidate(store, "c", clock)
    assert not attempt(after_crash)  # first sight of the record starts its own count
    clock.now += TIMING.lease_duration
    assert attempt(after_crash)
    assert not after_crash.saw_every_write_of_predecessor(10**9)


def test_timing_must_let_a_leader_stop_before_a_standby_may_take_over() -> None:
    with pytest.raises(ValueError, match="retryPeriod < renewDeadline < leaseDuration"):
        ElectionTiming(lease_duration=10, renew_deadline=10, retry_period=2)


# --- the loops, with short real periods ------------------------------------------------------------


def live(store: MemoryLeaseStore, name: str, events: list[str]) -> LeaderElector:
    return LeaderElector(
        SeenBy(store, name), name, FAST, on_change=lambda leading: events.append(f"{name} {leading}")
    )


def term(name: str, events: list[str]) -> Any:
    async def reconciling() -> None:
        events.append(f"{name} reconciles")
        try:
            await asyncio.Event().wait()
        finally:
            events.append(f"{name} stops reconciling")

    return reconciling


def test_a_leader_cut_off_from_the_lease_stops_reconciling_before_the_standby_starts() -> None:
    """Never two writers: the partitioned leader cancels its term at its renew deadline; the standby may
    take over only after the longer lease duration (as it saw it)."""
    store, events = MemoryLeaseStore(), []

    async def scenario() -> None:
        a, b = live(store, "a", events), live(store, "b", events)
        running_a = asyncio.create_task(a.run(term("a", events)))
        while not a.leading:
            await asyncio.sleep(0.01)
        running_b = asyncio.create_task(b.run(term("b", events)))
        await asyncio.sleep(0.2)
        assert not b.leading
        store.unreachable.add("a")
        await asyncio.wait_for(running_a, timeout=5)  # returns: leadership lost
        while not b.leading:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        running_b.cancel()
        await asyncio.gather(running_b, return_exceptions=True)

    asyncio.run(scenario())
    assert events.index("a stops reconciling") < events.index("b reconciles"), events
    assert events[:2] == ["a True", "a reconciles"]


def test_a_leader_that_stops_releases_the_lease_and_the_standby_leads_at_its_next_poll() -> None:
    store, events = MemoryLeaseStore(), []

    async def scenario() -> float:
        a, b = live(store, "a", events), live(store, "b", events)
        running_a = asyncio.create_task(a.run(term("a", events)))
        while not a.leading:
            await asyncio.sleep(0.01)
        running_b = asyncio.create_task(b.run(term("b", events)))
        await asyncio.sleep(0.1)
        loop = asyncio.get_running_loop()
        stopped = loop.time()
        running_a.cancel()
        await asyncio.gather(running_a, return_exceptions=True)
        while not b.leading:
            await asyncio.sleep(0.01)
        took = loop.time() - stopped
        running_b.cancel()
        await asyncio.gather(running_b, return_exceptions=True)
        return took

    took = asyncio.run(scenario())
    assert store.stored is not None and store.stored.record.holder == ""  # b released it in turn
    assert took < FAST.lease_duration, f"the standby waited out the lease ({took:.2f}s): it was not released"
    assert events.index("a stops reconciling") < events.index("b reconciles")


def test_a_failing_term_gives_the_lease_up_and_reports_the_error() -> None:
    store = MemoryLeaseStore()

    async def broken() -> None:
        raise RuntimeError("reconcile loop crashed")

    elector = LeaderElector(SeenBy(store, "a"), "a", FAST)
    with pytest.raises(RuntimeError, match="crashed"):
        asyncio.run(elector.run(broken))
    assert store.stored is not None and store.stored.record.holder == ""
    assert not elector.leading


# --- the manager's term: cancelling it stops the workers at once ------------------------------------


@dataclass(frozen=True)
class Key:
    name: str


def test_cancelling_the_reconcile_term_stops_every_worker_and_task() -> None:
    """The leader's workers and periodic tasks run only inside Manager.reconcile(); once cancelled, keys
    still arrive (the watches go on) but nothing reconciles them."""
    reconciled: list[str] = []
    ticks: list[int] = []

    async def reconcile(context: Any, key: Key) -> None:
        reconciled.append(key.name)

    async def ticker(context: Any) -> None:
        while True:
            ticks.append(1)
            await asyncio.sleep(0.01)

    class Listed(Source):
        async def run(self, api: Any) -> None:
            await asyncio.Event().wait()

        async def wait_listed(self) -> None:
            return None

    async def scenario() -> None:
        controller = Controller("Thing", Key, reconcile, tasks=(ticker,))
        manager: Manager[None] = Manager({"things": Listed("things", [])}, [controller], workers=2)
        manager.bind(None)
        watching = asyncio.create_task(manager.watch(api=None))  # type: ignore[arg-type]
        await manager.wait_primed()
        term_task = asyncio.create_task(manager.reconcile())
        manager.enqueue([Key("first")])
        await asyncio.sleep(0.05)
        assert reconciled == ["first"] and ticks
        term_task.cancel()
        await asyncio.gather(term_task, return_exceptions=True)
        seen = len(ticks)
        manager.enqueue([Key("second")])
        await asyncio.sleep(0.05)
        assert reconciled == ["first"], "a worker reconciled after the term ended"
        assert len(ticks) == seen, "a periodic task ran after the term ended"
        assert manager.primed  # the caches stay primed: the webhook still answers
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)

    asyncio.run(scenario())


def test_refresh_takes_newer_versions_in_ahead_of_a_lagging_watch_and_keeps_them() -> None:
    """A new leader's consistent LIST is newer than its watch (which lagged): the cache takes the listed
    version, and the watch's older events of that object, arriving afterwards, do not roll it back."""

    def project(body: dict[str, Any]) -> dict[Any, Any]:
        return {("marker", body["metadata"]["name"]): body["status"]["markerId"]}

    def body(version: int, marker: int | None) -> dict[str, Any]:
        meta = {"name": "e", "uid": "uid-e", "resourceVersion": str(version)}
        return {"metadata": meta, "status": {"markerId": marker}}

    class Api:
        async def list_pages(self, kind: Any, namespace: Any, *, label_selector: Any = None) -> Any:
            yield [body(100, 7)], 100

    source = Source("endpoints", [WatchTarget(ENDPOINT, None)], project)
    seen: list[Any] = []
    source.subscribe(lambda event: seen.append(event.new))

    async def scenario() -> None:
        await source._watched(None, body(90, None))
        await source.refresh(Api())  # type: ignore[arg-type]
        await source._watched("MODIFIED", body(95, None))  # the lagging watch catches up
        await source._watched("MODIFIED", body(100, 7))
        await source._watched("MODIFIED", body(110, 8))

    asyncio.run(scenario())
    assert source.cache is not None
    assert list(source.cache.get(("marker", "e")) or ()) == [8]
    assert seen == [
        {("marker", "e"): None},
        {("marker", "e"): 7},
        {("marker", "e"): 8},
    ], "an older watch event rolled the refreshed cache back"


def test_a_leader_that_reads_another_holder_stops_without_waiting_for_its_deadline() -> None:
    store, events = MemoryLeaseStore(), []
    slow = ElectionTiming(lease_duration=30.0, renew_deadline=20.0, retry_period=0.05)

    async def scenario() -> float:
        elector = LeaderElector(SeenBy(store, "a"), "a", slow)
        running = asyncio.create_task(elector.run(term("a", events)))
        while not elector.leading:
            await asyncio.sleep(0.01)
        assert store.stored is not None
        store._write(LeaseRecord("intruder", 3600, None, None, 1))  # an edit behind its back
        loop = asyncio.get_running_loop()
        taken = loop.time()
        await asyncio.wait_for(running, timeout=5)
        return loop.time() - taken

    stopped_after = asyncio.run(scenario())
    assert stopped_after < slow.renew_deadline / 4
    assert events == ["a reconciles", "a stops reconciling"]
    assert store.stored is not None and store.stored.record.holder == "intruder"  # not released: not its own
