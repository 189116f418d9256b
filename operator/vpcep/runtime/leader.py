"""Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it (R50).

Every replica campaigns for one Lease in the operator namespace; the holder renews it every retry period and
runs the leader's term (the reconcile workers, the periodic tasks, every write); the others poll it.

Expiry is judged the way client-go judges it: by when *this* process last saw the Lease record change, on its
own monotonic clock, plus the holder's leaseDurationSeconds -- never by comparing the holder's renewTime
with the local wall clock, so clock skew between nodes cannot hand the lease to two replicas. The leader
gives up (cancels its term at once) when it could not renew for `renew_deadline`, which is shorter than the
lease duration: it stops writing before any other replica can believe the lease expired. A leader that
stops on purpose (SIGTERM, a rolling upgrade) releases the lease, so a standby takes over at its next poll
instead of waiting out the duration.

`LeaseStore` is the Lease as storage (`KubeLeaseStore` on the API server; tests use an in-memory one), so the
state machine here is tested without a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import math
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any, Protocol

import aiohttp

from vpcep.k8s.client import ApiError, KubeApi, Manifest

logger = logging.getLogger(__name__)
LEASE_API = "coordination.k8s.io/v1"
JITTER = 0.2  # candidates poll every retry period plus up to this share of it (no lock-step polling)
Term = Callable[[], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class LeaseRecord:
    """The Lease's spec, as the election reads and writes it (the wall times only inform people)."""

    holder: str  # "" once released
    lease_duration_seconds: int
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0


@dataclass(frozen=True)
class StoredLease:
    record: LeaseRecord
    version: str  # metadata.resourceVersion: an update must name it (optimistic concurrency)


class LeaseConflict(Exception):
    """Someone else wrote the Lease first (409): this attempt lost."""


class LeaseStore(Protocol):
    async def get(self) -> StoredLease | None: ...

    async def create(self, record: LeaseRecord) -> StoredLease: ...

    async def update(self, record: LeaseRecord, version: str) -> StoredLease: ...


@dataclass(frozen=True)
class ElectionTiming:
    lease_duration: float  # how long a lease is good after it was last seen to change
    renew_deadline: float  # a leader that could not renew for this long stops leading (< lease_duration)
    retry_period: float  # how often candidates poll and the leader renews

    def __post_init__(self) -> None:
        if not self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs retryPeriod < renewDeadline < leaseDuration, got "
                f"{self.retry_period} / {self.renew_deadline} / {self.lease_duration}"
            )


def micro_time(moment: datetime.datetime) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds, UTC)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class LeaderElector:
    def __init__(
        self,
        store: LeaseStore,
        identity: str,
        timing: ElectionTiming,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime.datetime] = utc_now,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.store = store
        self.identity = identity
        self.timing = timing
        self._clock = clock
        self._wall = wall
        self._on_change = on_change
        self._observed: StoredLease | None = None
        self._observed_at = 0.0  # this process's clock when the record last changed
        self.leading = False
        self.predecessor: StoredLease | None = None  # the Lease as the previous holder left it (None: nobody)

    # --- one attempt (client-go's tryAcquireOrRenew) -------------------------------------------------

    async def try_acquire_or_renew(self) -> bool:
        """One read and at most one write: True when this process holds the lease afterwards."""
        wall = micro_time(self._wall())
        duration = math.ceil(self.timing.lease_duration)
        stored = await self.store.get()
        if stored is None:
            try:
                created = await self.store.create(LeaseRecord(self.identity, duration, wall, wall, 0))
            except LeaseConflict:
                return False
            self._observe(created)
            self.predecessor = None
            return True
        if stored != self._observed:  # a renewal changes the version even when the wall clock stood still
            self._observe(stored)
        held = stored.record
        if held.holder and held.holder != self.identity and not self._expired(held):
            return False
        if held.holder == self.identity:
            wanted = replace(held, lease_duration_seconds=duration, renew_time=wall)
        else:  # expired or released: take it over
            wanted = LeaseRecord(self.identity, duration, wall, wall, held.transitions + 1)
        try:
            updated = await self.store.update(wanted, stored.version)
        except LeaseConflict:
            return False
        if held.holder != self.identity:
            self.predecessor = stored
        self._observe(updated)
        return True

    def saw_every_write_of_predecessor(self, seen_up_to: int | None) -> bool:
        """Whether a cache that has seen the cluster up to resourceVersion `seen_up_to` already holds every
        write the previous leader made: true when nobody led before, or when the previous leader released
        the Lease (it writes nothing after its release) before that point. A leader that vanished without
        releasing may have had writes in flight after its last renewal: never assumed seen."""
        if self.predecessor is None:
            return True
        if self.predecessor.record.holder or seen_up_to is None:
            return False
        try:
            return seen_up_to >= int(self.predecessor.version)
        except ValueError:
            return False

    def _observe(self, lease: StoredLease) -> None:
        self._observed = lease
        self._observed_at = self._clock()

    def _held_by_another(self) -> bool:
        """The last record read names another holder: this process no longer leads, whatever its deadline."""
        holder = self._observed.record.holder if self._observed is not None else ""
        return holder not in ("", self.identity)

    def _expired(self, record: LeaseRecord) -> bool:
        """Judged on this process's clock, from when it saw the record change, with the holder's duration."""
        return self._clock() >= self._observed_at + record.lease_duration_seconds

    # --- campaigning and leading ---------------------------------------------------------------------

    async def run(self, term: Term) -> None:
        """Campaign until this process holds the lease, then run `term()` while it does; return as soon as
        leadership is lost, `term` cancelled first (never two writers). Cancelled while leading: the term
        ends and the lease is released for a standby to take at once."""
        await self._acquire()
        leading = asyncio.create_task(term(), name="vpcep leader term")
        lost = False
        try:
            lost = not await self._renew_while(leading)
        finally:
            leading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await leading
            self._set_leading(False)
            if not lost:  # stopped on purpose, or the term failed: a standby may lead at once
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(self.release(), timeout=self.timing.retry_period)
        if not leading.cancelled() and leading.exception() is not None:
            raise leading.exception()  # type: ignore[misc]

    async def _acquire(self) -> None:
        logger.info("leader election: %s campaigning", self.identity)
        while not await self._attempt(self.timing.renew_deadline):
            await asyncio.sleep(self.timing.retry_period * (1 + JITTER * random.random()))
        self._set_leading(True)

    async def _renew_while(self, leading: asyncio.Task[None]) -> bool:
        """Renew every retry period; True when the term ended by itself, False once no renewal succeeded for
        the renew deadline (leadership lost)."""
        renewed = self._clock()
        while True:
            await asyncio.wait({leading}, timeout=self.timing.retry_period)
            if leading.done():
                return True
            left = renewed + self.timing.renew_deadline - self._clock()
            if left > 0 and await self._attempt(left):
                renewed = self._clock()
            elif self._held_by_another():
                logger.error(
                    "leader election: %s saw the lease held by another: stopping to lead", self.identity
                )
                return False
            elif self._clock() - renewed >= self.timing.renew_deadline:
                logger.error(
                    "leader election: %s could not renew the lease for %.1fs: stopping to lead",
                    self.identity,
                    self._clock() - renewed,
                )
                return False

    async def _attempt(self, timeout: float) -> bool:
        try:
            return await asyncio.wait_for(self.try_acquire_or_renew(), timeout=timeout)
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as error:
            logger.warning("leader election: %s: lease request failed: %s", self.identity, error)
            return False

    async def release(self) -> None:
        """Give the lease up (holder emptied, 1 s duration) if this process still holds it."""
        stored = await self.store.get()
        if stored is None or stored.record.holder != self.identity:
            return
        wanted = replace(
            stored.record, holder="", lease_duration_seconds=1, renew_time=micro_time(self._wall())
        )
        with contextlib.suppress(LeaseConflict):
            await self.store.update(wanted, stored.version)
            logger.info("leader election: %s released the lease", self.identity)

    def _set_leading(self, leading: bool) -> None:
        if leading != self.leading:
            self.leading = leading
            logger.info("leader election: %s %s", self.identity, "leads" if leading else "no longer leads")
            if self._on_change is not None:
                self._on_change(leading)


class KubeLeaseStore:
    """The Lease `name` in `namespace` on the API server: GET, POST, and PUT guarded by resourceVersion
    (what the chart's Role grants: get, create, update on leases in the operator namespace)."""

    def __init__(self, api: KubeApi, namespace: str, name: str) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self._collection = f"/apis/{LEASE_API}/namespaces/{namespace}/leases"

    async def get(self) -> StoredLease | None:
        found = await self.api.request("GET", f"{self._collection}/{self.name}")
        return None if found is None else _stored(found)

    async def create(self, record: LeaseRecord) -> StoredLease:
        return await self._write("POST", self._collection, record, None)

    async def update(self, record: LeaseRecord, version: str) -> StoredLease:
        return await self._write("PUT", f"{self._collection}/{self.name}", record, version)

    async def _write(self, method: str, path: str, record: LeaseRecord, version: str | None) -> StoredLease:
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if version is not None:
            metadata["resourceVersion"] = version
        body = {"apiVersion": LEASE_API, "kind": "Lease", "metadata": metadata, "spec": _spec(record)}
        try:
            answer = await self.api.request(method, path, body=body)
        except ApiError as error:
            if error.status == 409:
                raise LeaseConflict(error.message) from None
            raise
        if answer is None:
            if version is None:
                raise ApiError(404, method, path, f"namespace {self.namespace} not found")
            raise LeaseConflict(f"lease {self.namespace}/{self.name} is gone")  # the next attempt creates it
        return _stored(answer)


def _spec(record: LeaseRecord) -> Manifest:
    spec: Manifest = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.lease_duration_seconds,
        "leaseTransitions": record.transitions,
    }
    if record.acquire_time is not None:
        spec["acquireTime"] = record.acquire_time
    if record.renew_time is not None:
        spec["renewTime"] = record.renew_time
    return spec


def _stored(lease: Manifest) -> StoredLease:
    spec = lease.get("spec") or {}
    record = LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=spec.get("acquireTime"),
        renew_time=spec.get("renewTime"),
        transitions=int(spec.get("leaseTransitions") or 0),
    )
    return StoredLease(record, str((lease.get("metadata") or {}).get("resourceVersion") or ""))
