"""The operator's readiness endpoint: 200 once this process can serve, 503 before.

Liveness (kopf's `--liveness` endpoint) says whether the process is alive: kopf opens it once the start-up
activities are done and answers while the event loop runs. Readiness says whether it can serve: its caches
hold a full LIST of every kind, so the admission webhook answers from them instead of refusing with
"starting". The chart points the pod's readinessProbe here, so the webhook Service sends the API server only
to a ready process. A standby replica is ready as soon as it is primed: it serves the webhook while the leader
reconciles (R50); the answer says which of the two it is. It is served from the first start-up activity on,
so a probe sees 503 (not a refused connection) while the operator starts.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import aiohttp.web
import kopf


def _address(endpoint: str) -> tuple[str, int, str]:
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme != "http" or parts.port is None:
        raise ValueError(f"readiness endpoint must be http://HOST:PORT/PATH, not {endpoint!r}")
    return parts.hostname or "0.0.0.0", parts.port, parts.path or "/readyz"


def register(endpoint: str | None) -> None:
    """Serve readiness at `endpoint` (e.g. http://0.0.0.0:8082/readyz); None serves nothing."""
    if endpoint is None:
        return
    host, port, path = _address(endpoint)

    async def ready(request: aiohttp.web.Request) -> aiohttp.web.Response:
        operator = getattr(request.app["memo"], "operator", None)
        if operator is not None and operator.primed:
            elector = getattr(request.app["memo"], "elector", None)
            return aiohttp.web.json_response({"ready": True, "leader": elector is None or elector.leading})
        return aiohttp.web.json_response({"ready": False, "reason": "caches not primed yet"}, status=503)

    @kopf.on.startup(id="readiness-endpoint")
    async def serve_readiness(memo: Any, **_: Any) -> None:
        app = aiohttp.web.Application()
        app["memo"] = memo
        app.router.add_get(path, ready)
        runner = aiohttp.web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        await aiohttp.web.TCPSite(runner, host, port).start()
        memo.readiness_runner = runner

    @kopf.on.cleanup(id="readiness-endpoint-stop")
    async def stop_readiness(memo: Any, **_: Any) -> None:
        runner = getattr(memo, "readiness_runner", None)
        if runner is not None:
            await runner.cleanup()
