"""The gateway channel's HTTPS server (R45; the rule on what passes: vpcep.domain.gateway_channel).

Every replica serves it (it holds no state): a gateway agent started with ``--api-server`` pointing here
sends its Kubernetes API requests to the operator instead of the API server, so the gateway pods' egress
policy need not admit the API server. A request the domain admits goes on unchanged (method, path, query,
body, the agent's own ``Authorization``), and the API server's answer comes back as it is, streamed, so a
watch stays a watch. The channel never lends the operator's identity: it sends no credentials of its own
(the upstream TLS context carries the cluster CA only, never a client certificate), and a request without a
bearer token is refused here.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import aiohttp.web
import kopf
from yarl import URL

from vpcep.config import GatewayChannelConfig
from vpcep.domain.gateway_channel import ChannelRequest, refusal
from vpcep.handlers.metrics import CHANNEL_REFUSALS

log = logging.getLogger(__name__)
# A status ConfigMap is a few KB (vpcep.gateway.status bounds it); nothing an agent sends comes near this.
MAX_BODY_BYTES = 256 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
FORWARDED_HEADERS = ("Authorization", "Content-Type", "Accept")
WATCH_READ_TIMEOUT_S = 600.0  # longer than any watch the channel lets through (domain: timeoutSeconds <= 600)
REFUSALS_LOGGED_PER_WINDOW = 10
REFUSAL_LOG_WINDOW_S = 60.0


def bearer_token_present(authorization: str) -> bool:
    """An ``Authorization: Bearer <token>`` header; the scheme in any case, as the API server takes it (the
    in-cluster client sends "bearer ...")."""
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and token.strip() != ""


def upstream_ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    """Verifies the API server by the cluster CA; presents no client certificate (never the operator's)."""
    if info.insecure:
        return False
    cadata = base64.b64decode(info.ca_data).decode() if info.ca_data else None
    return ssl.create_default_context(cafile=info.ca_path, cadata=cadata)


def status_answer(code: int, reason: str, message: str) -> aiohttp.web.Response:
    """A Kubernetes Status object, which the agent's client reports like any API error."""
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason}
    return aiohttp.web.json_response({**body, "code": code}, status=code)


def created_name(body: bytes) -> str | None:
    """metadata.name of a POST body, if it is JSON and names one."""
    try:
        name = json.loads(body).get("metadata", {}).get("name")
    except (ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


class RefusalLog:
    """Logs refusals, at most `per_window` lines per `window_s`; the first line logged after some went
    unlogged says how many. Why: any pod that reaches the port can send refused requests as fast as it likes,
    and a line each would let it flood the operator's log (and the node's disk). Every refusal is still
    counted (vpcep_gateway_channel_refusals_total)."""

    def __init__(
        self,
        per_window: int = REFUSALS_LOGGED_PER_WINDOW,
        window_s: float = REFUSAL_LOG_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_window, self.window_s, self.clock = per_window, window_s, clock
        self.window_started = -window_s
        self.logged = 0
        self.unlogged = 0

    def refused(self, code: int, method: str, path: str, remote: str | None, reason: str) -> None:
        CHANNEL_REFUSALS.labels(str(code)).inc()
        now = self.clock()
        if now - self.window_started >= self.window_s:
            self.window_started, self.logged = now, 0
        if self.logged >= self.per_window:
            self.unlogged += 1
            return
        self.logged += 1
        unlogged = (
            f" ({self.unlogged} more refusals were not logged before this one)" if self.unlogged else ""
        )
        self.unlogged = 0
        log.warning("gateway channel: refused %s %r from %s: %s%s", method, path, remote, reason, unlogged)


class GatewayChannel:
    def __init__(self, namespace: str, server: str, upstream_ssl: ssl.SSLContext | bool) -> None:
        self.namespace = namespace
        self.server = URL(server)
        self.upstream_ssl = upstream_ssl
        self.session: aiohttp.ClientSession | None = None
        self.refusals = RefusalLog()

    async def forward(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        method = request.method.upper()
        query = {key: request.query.getall(key) for key in request.query}
        # Judged before anything is read: a caller without a token, or asking for what is never passed on,
        # costs no body read (a POST is judged again below, once its body names what it creates).
        reason = refusal(ChannelRequest(method, request.path, query, body_read=False), self.namespace)
        if reason is None and not bearer_token_present(request.headers.get("Authorization", "")):
            self.refusals.refused(401, method, request.raw_path, request.remote, "no bearer token")
            return status_answer(401, "Unauthorized", "vpcep gateway channel: a bearer token is required")
        body = await request.read() if reason is None and method in BODY_METHODS else b""
        if reason is None and method == "POST":
            reason = refusal(ChannelRequest(method, request.path, query, created_name(body)), self.namespace)
        if reason is not None:
            self.refusals.refused(403, method, request.raw_path, request.remote, reason)
            return status_answer(403, "Forbidden", f"vpcep gateway channel: {reason}")
        # The path and query that were judged are the ones sent (rebuilt, never the raw request line).
        url = self.server.with_path(request.path).with_query(list(request.query.items()))
        headers = {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}
        try:
            return await self._pass_on(request, method, url, headers, body)
        except aiohttp.ClientError as error:
            # Before any answer (the API server unreachable): a Status the agent's client reports and retries,
            # not a bare 500 and a traceback here.
            log.warning(
                "gateway channel: the API server did not answer %s %s: %s", method, request.path, error
            )
            return status_answer(
                503, "ServiceUnavailable", "vpcep gateway channel: the API server did not answer"
            )

    async def _pass_on(
        self, request: aiohttp.web.Request, method: str, url: URL, headers: dict[str, str], body: bytes
    ) -> aiohttp.web.StreamResponse:
        assert self.session is not None
        async with self.session.request(
            method,
            url,
            data=body or None,
            allow_redirects=False,
            headers=headers,
            ssl=self.upstream_ssl,
            # Sent as the agent sent it: a body without a type stays without one (aiohttp would call it
            # application/octet-stream, which the API server refuses).
            skip_auto_headers=("Content-Type",),
        ) as upstream:
            answer = aiohttp.web.StreamResponse(
                status=upstream.status,
                headers={"Content-Type": upstream.headers.get("Content-Type", "application/json")},
            )
            await answer.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await answer.write(chunk)
            except (
                aiohttp.ClientError
            ) as error:  # the answer started: end it (a watch ends; the agent relists)
                log.info(
                    "gateway channel: the API server's answer to %s %s broke off: %s", method, url.path, error
                )
            await answer.write_eof()
            return answer


def register(config: GatewayChannelConfig, namespace: str, login: Any) -> None:
    """Serve the channel from start-up to clean-up when enabled; ``login`` gives the API server's address."""
    if not config.enabled:
        return
    cert_file, key_file = config.certFile, config.keyFile
    assert cert_file and key_file  # GatewayChannelConfig refuses an enabled channel without them

    @kopf.on.startup(id="gateway-channel")
    async def serve_channel(memo: Any, **_: Any) -> None:
        info = login()
        channel = GatewayChannel(namespace, info.server, upstream_ssl_context(info))
        channel.session = aiohttp.ClientSession(
            # One long watch per gateway: no cap on upstream connections (aiohttp's default of 100 would make
            # the 101st gateway wait forever), and a connection that cannot be made fails in seconds.
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(
                total=None, connect=10, sock_connect=10, sock_read=WATCH_READ_TIMEOUT_S
            ),
            cookie_jar=aiohttp.DummyCookieJar(),  # nothing one caller's answer sets is sent for another
        )
        app = aiohttp.web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", channel.forward)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            tls.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as error:
            raise RuntimeError(
                f"gateway channel: cannot load its certificate (gatewayChannel.certFile {cert_file}, keyFile "
                f"{key_file}): {error}; mount the chart's Secret <release>-gateway-channel-tls there, or set "
                "gatewayChannel.enabled false"
            ) from error
        runner = aiohttp.web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        await aiohttp.web.TCPSite(runner, config.address, config.port, ssl_context=tls).start()
        memo.channel_runner, memo.channel = runner, channel
        log.info("gateway channel: serving on %s:%d (R45)", config.address, config.port)

    @kopf.on.cleanup(id="gateway-channel-stop")
    async def stop_channel(memo: Any, **_: Any) -> None:
        runner, channel = getattr(memo, "channel_runner", None), getattr(memo, "channel", None)
        if runner is not None:
            await runner.cleanup()
        if channel is not None and channel.session is not None:
            await channel.session.close()
