"""The gateway channel (R45) when the API server does not answer: the agent gets a Kubernetes Status it
reports and retries (503, naming the channel), not a bare 500; a port where nothing listens plays the API
server being down (the real one cannot be stopped under a running suite)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from vpcep.handlers.gateway_channel import REFUSALS_LOGGED_PER_WINDOW, GatewayChannel, RefusalLog

NS = "vpcep-system"
ROUTES = f"/api/v1/namespaces/{NS}/configmaps?labelSelector=vpcep.io%2Froute%3Dtrue"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once the probe is closed


@contextlib.asynccontextmanager
async def _channel_serving(upstream: str) -> AsyncIterator[int]:
    """A channel (plain HTTP here; its TLS is the chart's business) on a free loopback port: the port."""
    channel = GatewayChannel(NS, upstream, False)
    channel.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", channel.forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await channel.session.close()
        await runner.cleanup()


async def _ask_channel(upstream: str) -> tuple[int, dict[str, object]]:
    async with (
        _channel_serving(upstream) as port,
        aiohttp.ClientSession() as client,
        client.get(f"http://127.0.0.1:{port}{ROUTES}", headers={"Authorization": "Bearer t"}) as answer,
    ):
        return answer.status, await answer.json()


def test_an_unreachable_api_server_is_a_503_status_the_agent_can_report() -> None:
    status, body = asyncio.run(_ask_channel(f"http://127.0.0.1:{_closed_port()}"))
    assert status == 503
    assert body["kind"] == "Status" and "vpcep gateway channel" in str(body["message"])


def _refusals_counted(code: str) -> float:
    return REGISTRY.get_sample_value("vpcep_gateway_channel_refusals_total", {"code": code}) or 0.0


def test_a_caller_sending_refused_requests_fast_cannot_flood_the_log_yet_every_refusal_is_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hostile pod that reaches the channel port sends 300 requests the channel refuses (Secrets, R45)
    within a second: at most REFUSALS_LOGGED_PER_WINDOW lines, the first naming what was asked; the
    counter has all 300."""
    before = _refusals_counted("403")
    secrets = f"/api/v1/namespaces/{NS}/secrets"

    async def hammer() -> list[int]:
        async with (
            _channel_serving(f"http://127.0.0.1:{_closed_port()}") as port,
            aiohttp.ClientSession() as client,
        ):
            statuses = []
            for _ in range(300):
                async with client.get(
                    f"http://127.0.0.1:{port}{secrets}", headers={"Authorization": "Bearer t"}
                ) as answer:
                    statuses.append(answer.status)
            return statuses

    with caplog.at_level(logging.WARNING, logger="vpcep.handlers.gateway_channel"):
        statuses = asyncio.run(hammer())
    refusal_lines = [r.getMessage() for r in caplog.records if "gateway channel: refused" in r.getMessage()]
    assert statuses == [403] * 300
    assert 1 <= len(refusal_lines) <= REFUSALS_LOGGED_PER_WINDOW
    assert secrets in refusal_lines[0]
    assert _refusals_counted("403") - before == 300


def test_the_first_refusal_logged_after_a_quiet_spell_says_how_many_went_unlogged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    refusals = RefusalLog(per_window=2, window_s=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="vpcep.handlers.gateway_channel"):
        for _ in range(5):
            refusals.refused(403, "GET", "/api/v1/secrets", "10.0.0.9", "not a gateway's request")
        now[0] = 61.0
        refusals.refused(401, "GET", "/api/v1/configmaps", "10.0.0.9", "no bearer token")
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 3  # two in the first minute, one after it
    assert "3 more refusals were not logged" in lines[2] and "no bearer token" in lines[2]
