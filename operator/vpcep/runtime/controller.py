"""Controllers and the manager that runs them (controller-runtime's `Watches(...)`, cert-manager's
`NewController`).

A controller declares, in one place, the type of key it reconciles, its reconcile function, which sources'
events enqueue which of its keys (`Watches`: a source and a mapper), and which keys it reconciles once the
caches are primed. The manager runs every source, waits until each has listed (priming), then enqueues every
controller's initial keys and starts one work queue whose workers hand each key to the controller of its type.
Mappers run from the first LIST on (the queue holds their keys until priming); one that needs complete
caches to judge (is this child's owner gone?) leaves that to its controller's initial keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from vpcep.k8s.client import ApiError, KubeApi
from vpcep.runtime.heap import resume_collection
from vpcep.runtime.source import Event, Source
from vpcep.runtime.workqueue import RetryLater, WorkQueue

logger = logging.getLogger(__name__)
Context = TypeVar("Context")
Mapper = Callable[[Any, Event], Iterable[Hashable]]  # (context, event) -> keys to reconcile


@dataclass(frozen=True)
class Watches:
    """Events of `source` enqueue the keys `map` returns, `delay` seconds later (a burst is one reconcile)."""

    source: str  # the name of a source the manager runs
    map: Mapper
    delay: float = 0.0


@dataclass(frozen=True)
class Controller:
    name: str  # the kind label of its metrics and logs
    key: type  # the key type it reconciles (a frozen dataclass)
    reconcile: Callable[[Any, Any], Awaitable[None]]  # (context, key)
    watches: tuple[Watches, ...] = ()
    initial: Callable[[Any], Iterable[Hashable]] = field(default=lambda context: ())  # once primed
    tasks: tuple[Callable[[Any], Coroutine[Any, Any, None]], ...] = ()  # beside the queue (timers)


Observe = Callable[[str], contextlib.AbstractContextManager[None]]


class Manager(Generic[Context]):
    def __init__(
        self,
        sources: Mapping[str, Source],
        controllers: Sequence[Controller],
        *,
        workers: int,
        observe: Observe | None = None,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.sources = dict(sources)
        self.controllers = tuple(controllers)
        self._by_key = {controller.key: controller for controller in controllers}
        self._observe = observe
        self._context: Context | None = None
        self._bound = False
        self.queue: WorkQueue[Hashable] = WorkQueue(
            "vpcep", self._reconcile, workers=workers, on_wait=on_wait
        )
        self.primed = False  # every source has listed once: the caches are complete
        self._primed = asyncio.Event()
        self._on_primed: list[Callable[[], None]] = []
        for controller in controllers:
            for watch in controller.watches:
                self.sources[watch.source].subscribe(self._mapper(watch))

    @property
    def context(self) -> Context:
        assert self._bound, "Manager.bind() first"
        return self._context  # type: ignore[return-value]

    def bind(self, context: Context) -> None:
        """The context every mapper and reconcile receives (bound before the first event)."""
        self._context = context
        self._bound = True

    def on_primed(self, hook: Callable[[], None]) -> None:
        """Run when reconciling starts, from complete caches, before the first reconcile (e.g. seed a ledger
        from them)."""
        self._on_primed.append(hook)

    def enqueue(self, keys: Iterable[Hashable], delay: float = 0.0) -> None:
        for key in keys:
            if delay:
                self.queue.add_after(key, delay)
            else:
                self.queue.add(key)

    async def run(self, api: KubeApi) -> None:
        """Watch every source; once all have listed, reconcile everything once and keep reconciling (a
        process that reconciles alone; with leader election every replica runs `watch`, the leader
        `reconcile` as well, R50)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.watch(api), name="vpcep watches")
            group.create_task(self.reconcile(), name="vpcep reconcile")

    async def watch(self, api: KubeApi) -> None:
        """Every source's watches, until cancelled; `primed` once each has listed (caches complete: the
        admission webhook answers from them, leader or not)."""
        watching = [
            asyncio.create_task(source.run(api), name=f"vpcep watch {name}")
            for name, source in self.sources.items()
        ]
        try:
            for source in self.sources.values():
                await source.wait_listed()
            self.primed = True
            self._primed.set()
            resume_collection()  # held since the process started (vpcep.runtime.heap)
            await asyncio.gather(*watching)
        finally:
            await _cancelled(watching)

    async def wait_primed(self) -> None:
        await self._primed.wait()

    async def reconcile(self) -> None:
        """From complete caches, until cancelled: the on_primed hooks, every controller's initial keys, the
        workers and the controllers' tasks. Cancelling it stops every worker and task at once (a leader that
        lost its lease, R50); keys enqueued meanwhile wait in the queue."""
        await self._primed.wait()
        for hook in self._on_primed:
            hook()
        for controller in self.controllers:
            self.enqueue(controller.initial(self.context))
        self.queue.start()
        tasks = [
            asyncio.create_task(task(self.context), name=f"vpcep {controller.name} {task.__name__}")
            for controller in self.controllers
            for task in controller.tasks
        ]
        forever = asyncio.create_task(asyncio.Event().wait(), name="vpcep reconciling")  # without tasks too
        try:
            await asyncio.gather(*tasks, forever)
        finally:
            await _cancelled([*tasks, forever])
            await self.queue.stop()

    def _mapper(self, watch: Watches) -> Callable[[Event], None]:
        def mapped(event: Event) -> None:
            self.enqueue(watch.map(self.context, event), watch.delay)

        return mapped

    async def _reconcile(self, key: Hashable) -> None:
        controller = self._by_key[type(key)]
        with self._observing(controller.name):
            try:
                await controller.reconcile(self.context, key)
            except ApiError as error:
                if error.status == 403 and "being terminated" in error.message:
                    # The namespace is going: its objects get their deletion (and our finalizer run) shortly.
                    raise RetryLater(2.0, str(error)) from None
                raise

    @contextlib.contextmanager
    def _observing(self, name: str) -> Iterator[None]:
        if self._observe is None:
            yield
        else:
            with self._observe(name):
                yield


async def _cancelled(tasks: Sequence[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
