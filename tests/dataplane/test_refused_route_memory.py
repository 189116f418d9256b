"""R49 with the real agent and HAProxy: a route HAProxy refuses is found once and then remembered by its
content, so it costs no ``haproxy -c`` on the next tenant's change nor as time passes (the agent used to
re-validate the whole file every 5 s: ~8 s at 10,000 routes); its owner's fix is judged afresh and served.

``haproxy -c`` runs are counted by a wrapper around the real binary (a test-side stand-in that only
counts)."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import time

import pytest

from .conftest import PLAIN_BACKEND_PORT, GatewayAgent
from .helpers import route, wait_served
from .netns import Topology, wait_until

pytestmark = pytest.mark.netns

# HAProxy refuses this number in `sc0_conn_cur gt N` ("neither a number nor a supported operator"); the
# route's schema does not bound it, so only HAProxy's verdict catches it.
TOO_BIG = 10**20


def _counting_haproxy(directory: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    real = shutil.which("haproxy")
    assert real
    log = directory / "checks.log"
    wrapper = directory / "haproxy"
    wrapper.write_text(f'#!/bin/sh\ncase " $* " in *" -c "*) echo check >> {log} ;; esac\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, log


def _checks(log: pathlib.Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_refused_route_costs_no_check_on_the_next_change_nor_as_time_passes_R49(
    topology: Topology, backends: dict[str, subprocess.Popen[bytes]], tmp_path: pathlib.Path
) -> None:
    wrapper, log = _counting_haproxy(tmp_path)
    agent = GatewayAgent(topology, tmp_path, "--haproxy", str(wrapper), "--retry-interval", "0.3")
    net = topology
    try:
        agent.put_route(route("e-good", 91, (30049, net.provider_ip, PLAIN_BACKEND_PORT)))
        agent.put_route(
            route("e-hostile", 92, (30050, net.provider_ip, PLAIN_BACKEND_PORT), maxConnections=TOO_BIG)
        )
        agent.start()
        wait_served(agent, 30049)
        wait_until(
            lambda: "e-hostile" in agent.status().get("rejectedRoutes", {}), timeout=10, what="the refusal"
        )
        assert "HAProxy rejected the route" in agent.status()["rejectedRoutes"]["e-hostile"]

        # Time passes (ten retry intervals): nothing is checked again.
        found_after = _checks(log)
        time.sleep(3)
        assert _checks(log) == found_after, "the refused route was validated again without a change"

        # Another tenant's change: exactly one check, of the file with the new route and without the bad one.
        agent.put_route(route("e-other", 93, (30051, net.provider_ip, PLAIN_BACKEND_PORT)))
        wait_served(agent, 30051)
        assert _checks(log) == found_after + 1
        assert "e-hostile" in agent.status()["rejectedRoutes"]

        # The owner fixes it: the new content is judged afresh and served.
        agent.put_route(
            route("e-hostile", 92, (30050, net.provider_ip, PLAIN_BACKEND_PORT), maxConnections=100)
        )
        wait_served(agent, 30050)
        wait_until(
            lambda: "e-hostile" not in agent.status().get("rejectedRoutes", {}), timeout=5, what="the fix"
        )
    finally:
        agent.stop()
