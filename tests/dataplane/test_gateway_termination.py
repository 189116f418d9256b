"""R52: a terminating gateway drains, then stops -- the agent's side, with real HAProxy and real TCP.

On SIGTERM the agent reports ``draining`` at once (the operator takes the gateway out of every EndpointSlice:
tests/integration/test_gateway_drain.py), HAProxy accepts new connections for the leave delay (kube-proxy may
still send some), then stops listening; open sessions keep passing bytes for the drain period and are cut at
its end, when HAProxy and the agent are gone. Before, the agent SIGKILLed HAProxy 10 s after SIGTERM whatever
the pod's grace period, and nothing drained.
"""

from __future__ import annotations

import pathlib
import signal
import socket
import time

import pytest

from .conftest import PLAIN_BACKEND_PORT, GatewayAgent
from .helpers import call, greeting, read_line, refused, route, wait_refused, wait_served
from .netns import Topology, connect, wait_until

pytestmark = pytest.mark.netns

LEAVE_S, SESSIONS_S = 1.5, 3.0
LATE_S = 3.0  # slack on a loaded two-core machine
PORT = 30061


def test_sigterm_reports_draining_serves_on_then_stops_listening_and_cuts_only_at_the_deadline_R52(
    topology: Topology, backends: object, tmp_path: pathlib.Path
) -> None:
    net = topology
    agent = GatewayAgent(
        net, tmp_path, "--drain-leave-seconds", str(LEAVE_S), "--drain-seconds", str(SESSIONS_S)
    )
    agent.start()
    try:
        agent.put_route(route("e-term", 91, (PORT, net.provider_ip, PLAIN_BACKEND_PORT)))
        wait_served(agent, PORT)
        session = connect(net.consumer, net.gateway_consumer_ip, PORT, timeout=3.0)
        assert greeting(session)["server"] == "provider-backend"
        assert agent.process is not None
        agent.process.send_signal(signal.SIGTERM)
        terminated = time.monotonic()

        wait_until(lambda: agent.status().get("draining") is True, timeout=2, what="a draining report")
        # The leave delay: still accepting, for connections kube-proxy sends before it follows the slice.
        assert time.monotonic() - terminated < LEAVE_S
        assert call(net.consumer, net.gateway_consumer_ip, PORT)["server"] == "provider-backend"
        wait_refused(agent, PORT, timeout=LEAVE_S + LATE_S)
        listening_for = time.monotonic() - terminated
        assert listening_for >= LEAVE_S - 0.2

        # The open session passes bytes until the drain period is over, then it is cut.
        cut_after = None
        while time.monotonic() - terminated < LEAVE_S + SESSIONS_S + LATE_S:
            try:
                session.sendall(b"tick\n")
                alive = read_line(session) == b"tick\n"
            except OSError:
                alive = False
            if not alive:
                cut_after = time.monotonic() - terminated
                break
            time.sleep(0.1)
        assert cut_after is not None, "the session outlived the drain period"
        assert cut_after >= LEAVE_S + SESSIONS_S - 0.3, f"cut after {cut_after:.1f} s, before the drain ended"
        agent.process.wait(timeout=LATE_S)
        wait_until(lambda: not agent.haproxy_pids(), timeout=LATE_S, what="HAProxy to be gone")
        assert refused(net.consumer, net.gateway_consumer_ip, PORT) is not None
        print(f"\nR52 agent drain: accepting for {listening_for:.2f} s, session cut after {cut_after:.2f} s")
    finally:
        agent.stop()


def test_a_route_revoked_while_the_gateway_drains_still_loses_its_sessions_after_its_own_drain_R52_R43(
    topology: Topology, backends: object, tmp_path: pathlib.Path
) -> None:
    """The drain period is the gateway's; R43's revocation drain is the endpoint's and stays short: a tenant
    rejected while the gateway drains must not keep its sessions for the gateway's whole drain."""
    net = topology
    revoked_port, kept_port = PORT + 1, PORT + 2
    agent = GatewayAgent(
        net, tmp_path, "--drain-leave-seconds", "0.5", "--drain-seconds", "20",
        "--revocation-drain-seconds", "1",
    )  # fmt: skip
    agent.start()
    try:
        agent.put_route(route("e-revoked", 92, (revoked_port, net.provider_ip, PLAIN_BACKEND_PORT)))
        agent.put_route(route("e-kept", 93, (kept_port, net.provider_ip, PLAIN_BACKEND_PORT)))
        wait_served(agent, revoked_port)
        wait_served(agent, kept_port)
        revoked = connect(net.consumer, net.gateway_consumer_ip, revoked_port, timeout=3.0)
        kept = connect(net.consumer, net.gateway_consumer_ip, kept_port, timeout=3.0)
        for session in (revoked, kept):
            assert greeting(session)["server"] == "provider-backend"
        assert agent.process is not None
        agent.process.send_signal(signal.SIGTERM)
        wait_refused(agent, kept_port, timeout=LATE_S)  # draining, listeners closed

        agent.remove_route("e-revoked")
        removed = time.monotonic()

        def talks(session: socket.socket) -> bool:
            try:
                session.sendall(b"tick\n")
                return read_line(session) == b"tick\n"
            except OSError:
                return False

        wait_until(
            lambda: not talks(revoked), timeout=1 + LATE_S, interval=0.2, what="the revoked session cut"
        )
        assert time.monotonic() - removed >= 0.8, "cut before the revocation drain"
        assert talks(kept), "the other endpoint's session goes on draining (R30)"
    finally:
        agent.stop()
