"""R49 with real HAProxy: a gateway whose memory limit is small stops accepting at the session budget derived
from it; the flood's next connection waits in the kernel's backlog instead of growing HAProxy, HAProxy stays
up and answers its agent, and the waiting connection is served as soon as a session ends."""

from __future__ import annotations

import contextlib
import pathlib
import socket
import subprocess
import time

import pytest

from vpcep.builders.gateway_capacity import BASE_BYTES, IDLE_SESSION_BYTES, PER_LISTENER_BYTES, session_budget
from vpcep.gateway.haproxy_process import unix_command

from .conftest import PLAIN_BACKEND_PORT, GatewayAgent
from .helpers import greeting, read_line, route, wait_served
from .netns import Topology, connect

pytestmark = pytest.mark.netns

FLOOD_PORT = 30048
SESSIONS = 120  # what the small limit below allows


def _show_info(agent: GatewayAgent) -> dict[str, str]:
    answer = unix_command(str(agent.runtime_dir / "haproxy.sock"), "show info")
    return dict(line.split(": ", 1) for line in answer.splitlines() if ": " in line)


def test_a_flood_stops_at_the_memory_derived_maxconn_and_haproxy_stays_up_R49(
    topology: Topology, backends: dict[str, subprocess.Popen[bytes]], tmp_path: pathlib.Path
) -> None:
    # A limit that leaves room for SESSIONS idle sessions beside one listener (gateway_capacity.py).
    limit = BASE_BYTES + PER_LISTENER_BYTES + 2 * IDLE_SESSION_BYTES * SESSIONS
    expected = session_budget(limit, 1, 65536).max_connections
    assert expected == SESSIONS
    agent = GatewayAgent(topology, tmp_path, "--memory-limit-bytes", str(limit))
    held: list[socket.socket] = []
    try:
        net = topology
        # The endpoint's own cap (R21) is far above: the gateway-wide bound is what stops the flood.
        agent.put_route(
            route("e-flood", 81, (FLOOD_PORT, net.provider_ip, PLAIN_BACKEND_PORT), maxConnections=3000)
        )
        agent.start()
        wait_served(agent, FLOOD_PORT)
        assert _show_info(agent)["Maxconn"] == str(expected)
        worker = _show_info(agent)["Pid"]

        for _ in range(expected):
            sock = connect(net.consumer, net.gateway_consumer_ip, FLOOD_PORT, timeout=5.0)
            held.append(sock)
            assert greeting(sock)["server"] == "provider-backend"
        # One more: the kernel completes the handshake (backlog) but HAProxy does not take it.
        waiting = connect(net.consumer, net.gateway_consumer_ip, FLOOD_PORT, timeout=1.5)
        held.append(waiting)
        with pytest.raises(TimeoutError):
            waiting.recv(4096)

        # HAProxy is up, the same worker, at its bound, and still answers the agent's CLI.
        info = _show_info(agent)
        assert info["Pid"] == worker and int(info["CurrConns"]) == expected
        assert agent.status().get("heartbeat")

        # A session ends: the waiting connection is served.
        held.pop(0).close()
        waiting.settimeout(5.0)
        assert read_line(waiting).startswith(b"{"), "the queued connection was not served once a slot freed"
        deadline = time.monotonic() + 5
        while int(_show_info(agent)["CurrConns"]) != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert int(_show_info(agent)["CurrConns"]) == expected
    finally:
        for sock in held:
            with contextlib.suppress(OSError):
                sock.close()
        agent.stop()


def test_a_low_open_file_limit_bounds_maxconn_instead_of_keeping_haproxy_down_R49(
    topology: Topology, backends: dict[str, subprocess.Popen[bytes]], tmp_path: pathlib.Path
) -> None:
    """The chart's 1 GiB asks HAProxy for ~96,000 descriptors. Under a container's hard open-file limit below
    that (4,096 here; some hosts' runtimes give 20,000 or less) HAProxy refused to start ("Cannot raise FD
    limit"): the gateway pod's HAProxy container crash-looped. The agent now bounds maxconn by the limit as
    well, and the gateway serves."""
    limit = 1 << 30
    agent = GatewayAgent(
        topology, tmp_path, "--memory-limit-bytes", str(limit), prefix=("prlimit", "--nofile=4096:4096", "--")
    )
    try:
        net = topology
        agent.put_route(route("e-files", 82, (FLOOD_PORT, net.provider_ip, PLAIN_BACKEND_PORT)))
        agent.start()
        wait_served(agent, FLOOD_PORT)
        expected = session_budget(limit, 1, 65536, None, 4096)
        assert expected.bounded_by_open_files and expected.max_connections < 2048
        assert _show_info(agent)["Maxconn"] == str(expected.max_connections)
        with connect(net.consumer, net.gateway_consumer_ip, FLOOD_PORT, timeout=5.0) as sock:
            assert greeting(sock)["server"] == "provider-backend"
    finally:
        agent.stop()
