"""The API client waits as long as the API server asks (issue 11 deliverable 6): API priority and fairness
answers an overloaded server's requests with 429 and `Retry-After`; retrying sooner only adds load. A local
HTTP server stands in for an overloaded API server (the real one cannot be made to answer 429 on demand)."""

from __future__ import annotations

import asyncio
import time

import kopf
import pytest
from aiohttp import web

from vpcep.k8s.client import RETRY_AFTER_CAP, RETRY_DELAYS, ApiError, KubeApi, retry_after_seconds


async def _serve(answers: list[web.Response]) -> tuple[web.AppRunner, str, list[float]]:
    """Answers successive requests with `answers`, then 200 {}; records when each request came."""
    seen: list[float] = []

    async def handle(_request: web.Request) -> web.Response:
        seen.append(time.monotonic())
        return answers.pop(0) if answers else web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}", seen


def _too_many(retry_after: str | None) -> web.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return web.json_response({"message": "too many requests"}, status=429, headers=headers)


async def _get(answers: list[web.Response]) -> list[float]:
    runner, server, seen = await _serve(answers)
    api = KubeApi(kopf.ConnectionInfo(server=server))
    try:
        await api.request("GET", "/api/v1/namespaces")
    finally:
        await api.close()
        await runner.cleanup()
    return seen


def test_a_429_is_retried_no_sooner_than_retry_after_says() -> None:
    seen = asyncio.run(_get([_too_many("1")]))
    assert len(seen) == 2
    assert seen[1] - seen[0] >= 0.95, "retried before the server's Retry-After: 1 had passed"


def test_without_retry_after_the_client_keeps_its_own_short_backoff() -> None:
    seen = asyncio.run(_get([_too_many(None)]))
    assert len(seen) == 2 and seen[1] - seen[0] < 0.5


def test_a_server_that_keeps_refusing_ends_in_an_error_naming_the_status() -> None:
    with pytest.raises(ApiError) as refused:
        asyncio.run(_get([_too_many("0") for _ in range(len(RETRY_DELAYS) + 1)]))
    assert refused.value.status == 429 and "too many requests" in str(refused.value)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2", 2.0),
        ("0.5", 0.5),
        (None, 0.0),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("9999", RETRY_AFTER_CAP),
    ],
)
def test_retry_after_values(header: str | None, seconds: float) -> None:
    assert retry_after_seconds(header) == seconds
