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
