"""``haproxy -c`` on a candidate configuration, and finding the route(s) that make it fail.

A route HAProxy rejects must never take the others down: the agent renders all routes, and if
the check fails it blames the routes at the reported lines (or, when HAProxy names no line of
a route, finds the culprit by checking halves), drops them, reports them in ``rejectedRoutes``
and serves the rest.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from vpcep.api.routing import Route
from vpcep.builders.haproxy_config import HaproxySettings, RenderedConfig, render_config

ALERT_LINE = re.compile(r"\[ALERT\].*?\[(?P<file>[^:\]]+):(?P<line>\d+)\]\s*:\s*(?P<message>.*)")
ALERT = re.compile(r"\[ALERT\][^:]*:\s*(?:config\s*:\s*)?(?P<message>.*)")


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    # (line or None, message) for every alert HAProxy printed.
    alerts: tuple[tuple[int | None, str], ...] = ()

    def summary(self) -> str:
        return "; ".join(message for _, message in self.alerts[:3]) or "haproxy -c failed"


def check_config(text: str, haproxy_binary: str, workdir: pathlib.Path) -> CheckResult:
    """Run ``haproxy -c`` on ``text``; the file never becomes the live config here."""
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", dir=workdir, delete=True) as candidate:
        candidate.write(text)
        candidate.flush()
        completed = subprocess.run(
            [haproxy_binary, "-c", "-f", candidate.name],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    if completed.returncode == 0:
        return CheckResult(ok=True)
    return CheckResult(ok=False, alerts=tuple(parse_alerts(completed.stdout + completed.stderr)))


def parse_alerts(output: str) -> list[tuple[int | None, str]]:
    alerts: list[tuple[int | None, str]] = []
    for line in output.splitlines():
        if match := ALERT_LINE.search(line):
            alerts.append((int(match["line"]), match["message"].strip()))
        elif match := ALERT.search(line):
            message = match["message"].strip()
            if not message.startswith(("Error(s) found", "Fatal errors found")):
                alerts.append((None, message))
    return alerts


@dataclass(frozen=True)
class ValidatedConfig:
    rendered: RenderedConfig | None  # None: even the configuration without any route fails
    routes: tuple[Route, ...]
    rejected: dict[str, str] = field(default_factory=dict)
    error: str = ""


Checker = Callable[[str], CheckResult]


def validate_routes(routes: Sequence[Route], settings: HaproxySettings, check: Checker) -> ValidatedConfig:
    """Largest set of routes HAProxy accepts, with the reason for every route left out."""
    rejected: dict[str, str] = {}
    remaining = list(routes)
    base_checked = False
    for _ in range(len(routes) + 1):
        rendered = render_config(remaining, settings)
        result = check(rendered.text)
        if result.ok:
            return ValidatedConfig(rendered, tuple(remaining), rejected)
        if not base_checked:
            # A gateway-wide setting can break every route's lines: blame no route for that.
            base = check(render_config([], settings).text)
            if not base.ok:
                return ValidatedConfig(None, (), {}, f"gateway configuration is invalid: {base.summary()}")
            base_checked = True
        blamed = _blame_by_line(rendered, result) or _bisect(remaining, settings, check)
        if not blamed:
            return ValidatedConfig(None, (), rejected, result.summary())
        remaining = [r for r in remaining if r.endpointId not in blamed]
        rejected.update(blamed)
    return ValidatedConfig(None, (), rejected, "could not find a valid configuration")


def _blame_by_line(rendered: RenderedConfig, result: CheckResult) -> dict[str, str]:
    blamed: dict[str, str] = {}
    for line, message in result.alerts:
        if line is None:
            continue
        endpoint_id = rendered.route_at_line(line)
        if endpoint_id is not None:
            blamed.setdefault(endpoint_id, f"HAProxy rejected the route: {message}")
    return blamed


def _bisect(routes: Sequence[Route], settings: HaproxySettings, check: Checker) -> dict[str, str]:
    """Find one route that fails on its own (errors that HAProxy reports without a line)."""
    if not routes:
        return {}
    candidates = list(routes)
    while len(candidates) > 1:
        half = candidates[: len(candidates) // 2]
        candidates = half if not check(render_config(half, settings).text).ok else candidates[len(half) :]
    culprit = candidates[0]
    result = check(render_config([culprit], settings).text)
    if result.ok:  # only a combination fails; nothing to blame on one route
        return {}
    return {culprit.endpointId: f"HAProxy rejected the route: {result.summary()}"}
