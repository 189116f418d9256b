"""The gateway channel (R45) when the API server does not answer: the agent gets a Kubernetes Status it
reports and retries (503, naming the channel), not a bare 500; a port where nothing listens plays the API
server being down (the real one cannot be stopped under a running suite)."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
from aiohttp import web

from vpcep.handlers.gateway_channel import GatewayChannel

NS = "vpcep-system"
ROUTES = f"/api/v1/namespaces/{NS}/configmaps?labelSelector=vpcep.io%2Froute%3Dtrue"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once the probe is closed


async def _ask_channel(upstream: str) -> tuple[int, dict[str, object]]:
    channel = GatewayChannel(NS, upstream, False)
    channel.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", channel.forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"http://127.0.0.1:{port}{ROUTES}", headers={"Authorization": "Bearer t"}) as answer,
        ):
            return answer.status, await answer.json()
    finally:
        await channel.session.close()
        await runner.cleanup()


def test_an_unreachable_api_server_is_a_503_status_the_agent_can_report() -> None:
    status, body = asyncio.run(_ask_channel(f"http://127.0.0.1:{_closed_port()}"))
    assert status == 503
    assert body["kind"] == "Status" and "vpcep gateway channel" in str(body["message"])
