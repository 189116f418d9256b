"""A gateway-wide configuration error is reported in the gateway's status (GatewayStatus.error), not only
logged: the operator quotes it to the endpoints that wait on that gateway (R30, R39).

The agent runs as a real process with real `haproxy -c`; `--threads 100000` is a setting HAProxy refuses for
every configuration (nbthread must be 1..64), so no route can be the culprit."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Any

from vpcep.api.routing import GatewayStatus

from .factories import make_route

WORKTREE = pathlib.Path(__file__).resolve().parents[2]


def _status(path: pathlib.Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def test_a_gateway_wide_haproxy_error_is_in_the_status(tmp_path: pathlib.Path, haproxy_binary: str) -> None:
    routes, runtime = tmp_path / "routes", tmp_path / "run"
    routes.mkdir()
    (routes / "e1.json").write_text(make_route("e1").model_dump_json())
    log = (tmp_path / "agent.log").open("wb")
    agent = subprocess.Popen(
        [
            sys.executable, "-m", "vpcep.gateway.agent",
            "--name", f"gw-broken-{os.getpid()}", "--address", "127.0.0.1", "--bind-address", "127.0.0.1",
            "--routes-dir", str(routes), "--runtime-dir", str(runtime), "--haproxy", haproxy_binary,
            "--threads", "100000", "--heartbeat-interval", "0.3",
        ],
        env={**os.environ, "PYTHONPATH": str(WORKTREE / "operator")},
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        status: dict[str, Any] = {}
        while time.monotonic() < deadline and not status.get("error"):
            time.sleep(0.1)
            status = _status(runtime / "status.json")
        assert status.get("error"), (tmp_path / "agent.log").read_text(errors="replace")
        assert "gateway configuration is invalid" in status["error"]
        assert "nbthread" in status["error"], "HAProxy's own words, so the cluster operator can fix it"
        assert status["appliedResourceVersion"] == 0, "nothing was applied"
        assert "e1" not in status.get("rejectedRoutes", {}), "no route is blamed for a gateway-wide error"
        assert agent.poll() is None, "an invalid configuration is reported, never a crash loop"
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(timeout=15)
        except subprocess.TimeoutExpired:
            agent.kill()
        log.close()


def test_older_gateway_reports_without_an_error_field_still_parse() -> None:
    """Gateways of the previous version write no `error`: the operator reads that as no error."""
    status = GatewayStatus.model_validate(
        {
            "gateway": "g",
            "address": "10.0.0.1",
            "heartbeat": "2026-01-01T00:00:00Z",
            "appliedResourceVersion": 1,
        }
    )
    assert status.error == ""
