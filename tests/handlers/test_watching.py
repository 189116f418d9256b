"""vpcep.k8s.watching.Watch against a scripted in-memory API: re-list on 410 Gone, resume after a dropped
connection, synthesized deletes, metadata-only requests. (On the real API server: tests/integration.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from vpcep.k8s.client import ApiError
from vpcep.k8s.resources import CONFIG_MAP, POD
from vpcep.k8s.watching import METADATA_ACCEPT, METADATA_LIST_ACCEPT, Watch, WatchTarget


class ScriptDone(BaseException):
    """The script ran out: ends Watch.run (a BaseException, like cancellation, is never retried)."""


def obj(name: str, uid: str, version: int, **labels: str) -> dict[str, Any]:
    meta = {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": str(version), "labels": labels}
    return {"metadata": meta}


class ScriptedApi:
    """`lists`: answers to successive LISTs; `streams`: per watch request, a list of events, or an exception
    raised when the request is made, or ("fail", events) raising a dropped connection after the events."""

    def __init__(self, lists: list[dict[str, Any]], streams: list[Any]) -> None:
        self.lists = lists
        self.streams = streams
        self.list_calls: list[tuple[dict[str, str], str | None]] = []
        self.watch_calls: list[tuple[dict[str, str], str | None]] = []

    async def request(
        self, method: str, path: str, *, params: dict[str, str] | None = None, accept: str | None = None
    ) -> dict[str, Any]:
        self.list_calls.append((dict(params or {}), accept))
        return self.lists.pop(0)

    async def watch(
        self, kind: Any, namespace: Any, params: dict[str, str], *, accept: str | None, read_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        self.watch_calls.append((dict(params), accept))
        if not self.streams:
            raise ScriptDone()
        step = self.streams.pop(0)
        if isinstance(step, Exception):
            raise step
        fail = isinstance(step, tuple)
        for event in step[1] if fail else step:
            yield event
        if fail:
            raise aiohttp.ClientPayloadError("dropped")  # what aiohttp raises mid-stream
        return


def listing(version: int, *items: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": str(version)}, "items": list(items)}


def run(watch: Watch) -> None:
    with pytest.raises(ScriptDone):
        asyncio.run(watch.run())


def recording() -> tuple[list[tuple[str | None, str, str]], Any]:
    seen: list[tuple[str | None, str, str]] = []

    async def on_event(kind: str | None, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        seen.append((kind, meta["name"], meta["resourceVersion"]))

    return seen, on_event


def test_replays_the_list_streams_and_relists_on_410_with_synthesized_deletes() -> None:
    api = ScriptedApi(
        lists=[
            listing(10, obj("route-1", "u1", 5, route="true"), obj("route-2", "u2", 6)),
            listing(40, obj("route-2", "u2", 6)),  # route-1 and route-3 went while no watch was open
        ],
        streams=[
            [
                {"type": "ADDED", "object": obj("route-3", "u3", 11)},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "20"}}},
                {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}},
            ],
        ],
    )
    seen, on_event = recording()
    deleted: list[dict[str, Any]] = []
    relists: list[int] = []

    async def keep(kind: str | None, body: dict[str, Any]) -> None:
        await on_event(kind, body)
        if kind == "DELETED":
            deleted.append(body["metadata"])

    async def on_relist() -> None:
        relists.append(1)

    watch = Watch(api, WatchTarget(CONFIG_MAP, "ns"), keep, on_relist)  # type: ignore[arg-type]
    run(watch)
    assert seen == [
        (None, "route-1", "5"),
        (None, "route-2", "6"),
        ("ADDED", "route-3", "11"),
        (None, "route-2", "6"),
        ("DELETED", "route-1", "40"),  # at the list's version: a cache tombstone outranks older copies
        ("DELETED", "route-3", "40"),
    ]
    assert deleted[0]["labels"] == {"route": "true"}  # handlers tell routes from gateway status by label
    assert len(relists) == 2 and watch.lists == 2
    assert [params["resourceVersion"] for params, _ in api.watch_calls] == ["10", "40"]
    assert api.watch_calls[0][1] is None  # whole objects when not metadata-only


def test_a_dropped_connection_resumes_from_the_last_version_without_listing_again() -> None:
    api = ScriptedApi(
        lists=[listing(10)],
        streams=[
            ("fail", [{"type": "MODIFIED", "object": obj("a", "u1", 12)}]),
            ApiError(503, "WATCH", "/x", "unavailable"),
            [{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "30"}}}],  # server timeout
            [],
        ],
    )
    seen, on_event = recording()
    watch = Watch(api, WatchTarget(CONFIG_MAP, "ns"), on_event, backoff=(0.0,))
    run(watch)
    assert watch.lists == 1
    assert [params["resourceVersion"] for params, _ in api.watch_calls] == ["10", "12", "12", "30", "30"]
    assert all(params["allowWatchBookmarks"] == "true" for params, _ in api.watch_calls)
    assert seen == [("MODIFIED", "a", "12")]


def test_http_410_on_the_watch_request_lists_again() -> None:
    api = ScriptedApi(
        lists=[listing(10), listing(50)],
        streams=[ApiError(410, "WATCH", "/x", '{"message": "too old resource version"}'), []],
    )
    _seen, on_event = recording()
    watch = Watch(api, WatchTarget(CONFIG_MAP, "ns"), on_event, backoff=(60.0,))  # no backoff on 410
    run(watch)
    assert watch.lists == 2
    assert [params["resourceVersion"] for params, _ in api.watch_calls] == ["10", "50", "50"]


def test_metadata_only_without_replay_fetches_one_item_and_asks_for_partial_metadata() -> None:
    api = ScriptedApi(
        lists=[listing(77, obj("some-pod", "u9", 70))],
        streams=[[{"type": "DELETED", "object": obj("backend", "u1", 80)}]],
    )
    seen, on_event = recording()
    relists: list[int] = []

    async def on_relist() -> None:
        relists.append(1)

    target = WatchTarget(POD, None, metadata_only=True, replay=False)
    run(Watch(api, target, on_event, on_relist))
    (params, accept) = api.list_calls[0]
    assert params["limit"] == "1" and accept == METADATA_LIST_ACCEPT
    assert api.watch_calls[0][1] == METADATA_ACCEPT
    assert seen == [("DELETED", "backend", "80")]  # the listed pod is not replayed: only the version counts
    assert relists == [1]


def test_a_failing_handler_does_not_end_the_watch() -> None:
    api = ScriptedApi(
        lists=[listing(1)],
        streams=[
            [{"type": "ADDED", "object": obj("a", "u1", 2)}, {"type": "ADDED", "object": obj("b", "u2", 3)}]
        ],
    )
    names: list[str] = []

    async def on_event(kind: str | None, body: dict[str, Any]) -> None:
        names.append(body["metadata"]["name"])
        if body["metadata"]["name"] == "a":
            raise RuntimeError("a bug in one handler")

    run(Watch(api, WatchTarget(CONFIG_MAP, "ns"), on_event))
    assert names == ["a", "b"]
