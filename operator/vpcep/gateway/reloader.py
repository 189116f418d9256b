"""Turn a route snapshot into a running configuration: render, validate, write, reload.

``Applier.apply`` is idempotent and always starts from the whole snapshot. It keeps the last
configuration that HAProxy accepted: if a new one fails, the old one keeps serving. Bursts of
route changes are folded into one reload by ``wait_for_quiet``.

A route HAProxy refused is remembered by its content (R49): HAProxy's verdict on a route depends only on
the route and the gateway's settings, so until the route changes it is left out at once with the same
reason, and finding it again (``haproxy -c`` of the whole file, then blame or bisection: seconds at 10,000
routes) costs nothing on the next change, nor every few seconds. Only a route refused because another process
holds its port is tried again unchanged (``AppliedState.retry_wanted``).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import pathlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from vpcep.api.denied_addresses import Network, why_denied
from vpcep.api.routing import Route
from vpcep.builders.haproxy_config import HaproxySettings, plan_routes, render_config
from vpcep.gateway.haproxy_process import HaproxyError, HaproxyMaster
from vpcep.gateway.route_source import RouteSnapshot
from vpcep.gateway.validator import CheckResult, ValidatedConfig, validate_routes

log = logging.getLogger(__name__)


def wait_for_quiet(event: threading.Event, quiet_s: float, max_delay_s: float) -> None:
    """After a first change, wait until none came for ``quiet_s`` (but at most ``max_delay_s``)."""
    deadline = time.monotonic() + max_delay_s
    while True:
        event.clear()
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not event.wait(min(quiet_s, remaining)):
            return


@dataclass
class AppliedState:
    """What HAProxy serves now, and what was left out of it and why."""

    version: int = 0
    live_routes: dict[str, Route] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    error: str = ""
    reloads: int = 0
    # Some route was left out for a reason that may pass by itself (its port is held by another process).
    retry_wanted: bool = False


class Applier:
    def __init__(
        self,
        master: HaproxyMaster,
        settings: HaproxySettings,
        check: Callable[[str], CheckResult],
        port_is_free: Callable[[str, int], bool] | None = None,
        denied: tuple[Network, ...] = (),
    ) -> None:
        self._master = master
        self._denied = denied
        self._settings = settings
        self._check = check
        self._port_is_free = port_is_free or bind_probe
        self.state = AppliedState()
        self._live_text: str | None = None
        # content hash -> why HAProxy refused a route with exactly that content (see the module's docstring)
        self._refused_content: dict[str, str] = {}

    def adopt(self, running_text: str) -> None:
        """The configuration a surviving HAProxy runs: its ports are ours, not another process's."""
        self._live_text = running_text

    def apply(self, snapshot: RouteSnapshot) -> AppliedState:
        plan = plan_routes(snapshot.routes.values(), incumbents=frozenset(self.state.live_routes))
        rejected = dict(snapshot.unreadable)
        rejected.update(plan.rejected)
        allowed = without_denied_backends(plan.accepted, self._denied, rejected)
        before = len(rejected)
        candidates = self._without_taken_ports(allowed, rejected)
        retry_wanted = len(rejected) > before
        candidates = self._without_known_refusals(candidates, rejected)
        validated = self._validate(candidates)
        rejected.update(validated.rejected)
        self._remember_refusals(candidates, validated.rejected, snapshot.routes.values())
        if validated.rendered is None:
            # Nothing renders: keep serving the last good configuration.
            self.state.error = validated.error
            self.state.rejected = rejected
            self.state.retry_wanted = retry_wanted
            log.error("new configuration refused, keeping the previous one: %s", validated.error)
            return self.state
        text = validated.rendered.text
        try:
            if text != self._live_text or not self._master.running():
                self._install(text)
        except (HaproxyError, OSError) as error:
            self.state.error = str(error)
            self.state.rejected = rejected
            self.state.retry_wanted = retry_wanted
            log.error("%s", error)
            if self._live_text is not None:
                _write_atomically(self._master.config_path, self._live_text)  # a restart uses the good one
            return self.state
        self._live_text = text
        self.state = AppliedState(
            version=snapshot.version,
            live_routes={route.endpointId: route for route in validated.routes},
            rejected=rejected,
            reloads=self.state.reloads + 1,
            retry_wanted=retry_wanted,
        )
        for endpoint_id, reason in rejected.items():
            log.warning("route %s left out: %s", endpoint_id, reason)
        return self.state

    def _install(self, text: str) -> None:
        _write_atomically(self._master.config_path, text)
        if self._master.running():
            table = self._master.reload()
            log.info(
                "reloaded: worker %s, %d old worker(s) draining", table.current_worker, len(table.old_workers)
            )
        else:
            self._master.start()
            log.info("HAProxy started")

    def _validate(self, candidates: list[Route]) -> ValidatedConfig:
        """``haproxy -c`` (seconds at 10,000 routes) only for a file HAProxy does not run already."""
        rendered = render_config(candidates, self._settings)
        if rendered.text == self._live_text and self._master.running():
            return ValidatedConfig(rendered, tuple(candidates))
        return validate_routes(candidates, self._settings, self._check)

    def _without_known_refusals(self, routes: list[Route], rejected: dict[str, str]) -> list[Route]:
        kept: list[Route] = []
        for route in routes:
            reason = self._refused_content.get(route_content_hash(route))
            if reason is None:
                kept.append(route)
            else:
                rejected[route.endpointId] = reason
        return kept

    def _remember_refusals(
        self, candidates: list[Route], refused: dict[str, str], current: Iterable[Route]
    ) -> None:
        """Remember what HAProxy refused now; forget what no current route has (bounded by the routes)."""
        for route in candidates:
            if route.endpointId in refused:
                self._refused_content[route_content_hash(route)] = refused[route.endpointId]
        in_use = {route_content_hash(route) for route in current}
        for content in set(self._refused_content) - in_use:
            del self._refused_content[content]

    def _without_taken_ports(self, routes: Iterable[Route], rejected: dict[str, str]) -> list[Route]:
        """``haproxy -c`` does not bind; a port held by another process would fail the reload for all."""
        live_ports = bound_ports(self._live_text or "") if self._master.running() else set()
        kept: list[Route] = []
        for route in routes:
            taken = [
                listener.gatewayPort
                for listener in route.listeners
                if listener.gatewayPort not in live_ports
                and not self._port_is_free(self._settings.bind_address, listener.gatewayPort)
            ]
            if taken:
                rejected[route.endpointId] = (
                    f"gatewayPort {taken[0]} is in use on the gateway by another process"
                )
            else:
                kept.append(route)
        return kept


def without_denied_backends(
    routes: Iterable[Route], denied: tuple[Network, ...], rejected: dict[str, str]
) -> list[Route]:
    """R45, defence in depth: the operator refuses such backends, but no route the agent reads ever becomes
    a server line aimed at link-local, cloud metadata or a denied address. The reason names no address (the
    status is read by the operator, whose messages reach consumers: R46)."""
    kept: list[Route] = []
    for route in routes:
        why = next(
            (w for listener in route.listeners if (w := why_denied(listener.backendHost, denied))), None
        )
        if why is None:
            kept.append(route)
        else:
            rejected[route.endpointId] = f"the backend address is {why}: no gateway dials it (R45)"
    return kept


BIND_LINE = re.compile(r"^\s+bind\s+\S*:(\d+)(?:\s|$)", re.MULTILINE)


def bound_ports(config_text: str) -> set[int]:
    """TCP ports the ``bind`` lines of a rendered haproxy.cfg listen on."""
    return {int(port) for port in BIND_LINE.findall(config_text)}


def route_content_hash(route: Route) -> str:
    """Everything that goes into the route's lines of haproxy.cfg, and more: equal hash, equal verdict."""
    return hashlib.sha256(route.model_dump_json().encode()).hexdigest()


def bind_probe(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as error:
            return error.errno != errno.EADDRINUSE
    return True


def _write_atomically(path: pathlib.Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
