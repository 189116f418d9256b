"""R43: a revoked endpoint's open sessions end after the drain period, in every HAProxy process.

Real long-lived TCP sessions from the consumer namespace through a real gateway agent and HAProxy
to the provider's backend, spread over old workers by reloads. Removing one endpoint's route (what
the operator does on Reject, deletion or a Failed phase) refuses its new connections at once and
cuts its open sessions once the drain is over, old workers included; the other endpoint's
sessions, in the same old workers, keep passing bytes (R30).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator

import pytest

from vpcep.gateway.haproxy_process import ProcessTable, parse_show_proc, unix_command
from vpcep.gateway.revocation import parse_show_sess

from .conftest import PLAIN_BACKEND_PORT, GatewayAgent
from .helpers import greeting, read_line, refused, route, wait_served
from .netns import Topology, connect, wait_until

pytestmark = pytest.mark.netns

DRAIN_S = 3.0
REVOKED, KEPT = "e-revoked", "e-kept"
# Slack for the cut after the drain on a loaded two-core machine: the agent sweeps at the deadline.
LATE_S = 3.0


class Session:
    """One long-lived consumer connection through the gateway; ``exchange`` sends a line and reads it back."""

    def __init__(self, net: Topology, port: int) -> None:
        self.port = port
        self.sock = connect(net.consumer, net.gateway_consumer_ip, port, timeout=3.0)
        assert greeting(self.sock)["server"] == "provider-backend"
        self.closed_at: float | None = None

    def exchange(self) -> bool:
        if self.closed_at is not None:
            return False
        try:
            self.sock.sendall(b"tick\n")
            echoed = read_line(self.sock)
        except TimeoutError:
            raise AssertionError(f"a session on port {self.port} hangs instead of passing bytes") from None
        except OSError:
            echoed = b""
        if echoed == b"tick\n":
            return True
        self.closed_at = time.monotonic()
        self.sock.close()
        return False


def master(agent: GatewayAgent, command: str) -> str:
    return unix_command(str(agent.runtime_dir / "master.sock"), command)


def process_table(agent: GatewayAgent) -> ProcessTable:
    def answer() -> ProcessTable | None:
        try:
            return parse_show_proc(master(agent, "show proc"))
        except OSError:
            return None  # the master re-executes itself during a reload

    wait_until(lambda: answer() is not None, timeout=5, what="the HAProxy master CLI")
    table = answer()
    assert table is not None
    return table


def processes_carrying(agent: GatewayAgent, endpoint_id: str) -> set[int]:
    """HAProxy processes (current and old workers) holding a session of this endpoint."""
    table = process_table(agent)
    pids = [*table.old_workers, *([table.current_worker] if table.current_worker else [])]
    return {
        pid
        for pid in pids
        if any(fe == f"ep_{endpoint_id}" for _, fe in parse_show_sess(master(agent, f"@!{pid} show sess")))
    }


def reload_with(agent: GatewayAgent, change: Callable[[], None]) -> None:
    """Make a route change and wait until the agent reloaded HAProxy with it."""
    version = agent.status()["appliedResourceVersion"]
    reloads = process_table(agent).reloads
    change()
    wait_until(lambda: agent.status().get("appliedResourceVersion", 0) > version, timeout=10, what="apply")
    wait_until(lambda: process_table(agent).reloads > reloads, timeout=10, what="a reload")


def watch_until_cut(revoked: list[Session], kept: list[Session], timeout: float) -> None:
    """Exchange bytes on every session until the revoked ones are all closed; the kept ones must pass."""
    deadline = time.monotonic() + timeout
    while any(s.closed_at is None for s in revoked) and time.monotonic() < deadline:
        for session in revoked:
            session.exchange()
        for session in kept:
            assert session.exchange(), "a session of an endpoint that stays was cut (R30)"
        time.sleep(0.05)


def spread_over_workers(agent: GatewayAgent, base: int) -> tuple[list[Session], list[Session]]:
    """Sessions of both endpoints, opened across two reloads: two old workers and the current one."""
    net = agent.topology
    agent.put_route(route(REVOKED, 41, (base + 1, net.provider_ip, PLAIN_BACKEND_PORT)))
    agent.put_route(route(KEPT, 42, (base + 2, net.provider_ip, PLAIN_BACKEND_PORT)))
    wait_served(agent, base + 1)
    wait_served(agent, base + 2)
    revoked = [Session(net, base + 1)]
    kept = [Session(net, base + 2)]
    reload_with(
        agent, lambda: agent.put_route(route("e-churn", 43, (base + 3, net.provider_ip, PLAIN_BACKEND_PORT)))
    )
    revoked.append(Session(net, base + 1))
    kept.append(Session(net, base + 2))
    # The kept endpoint's route is re-rendered (new source CIDRs, new cap): a change, not a revocation.
    changed_kept = route(
        KEPT,
        42,
        (base + 2, net.provider_ip, PLAIN_BACKEND_PORT),
        sourceCIDRs=[f"{net.consumer_ip}/32"],
        maxConnections=50,
    )
    reload_with(agent, lambda: agent.put_route(changed_kept))
    revoked.append(Session(net, base + 1))
    assert all(s.exchange() for s in revoked + kept)
    table = process_table(agent)
    assert len(table.old_workers) >= 2, f"expected two old workers holding sessions: {table}"
    assert len(processes_carrying(agent, REVOKED)) >= 3, "the revoked endpoint's sessions span 3 processes"
    assert len(processes_carrying(agent, KEPT)) >= 2
    return revoked, kept


@pytest.fixture
def gateway_with_drain(
    topology: Topology, backends: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[float], GatewayAgent]]:
    started: list[GatewayAgent] = []

    def start(drain_s: float) -> GatewayAgent:
        workdir = tmp_path_factory.mktemp("gateway-drain")
        agent = GatewayAgent(topology, workdir, "--revocation-drain-seconds", str(drain_s))
        started.append(agent)
        agent.start()
        return agent

    yield start
    for agent in started:
        agent.stop()


def test_revoked_sessions_end_after_the_drain_in_every_worker_and_others_keep_flowing_R43(
    gateway_with_drain: Callable[[float], GatewayAgent],
) -> None:
    agent = gateway_with_drain(DRAIN_S)
    net = agent.topology
    revoked, kept = spread_over_workers(agent, 31400)

    removed_at = time.monotonic()
    agent.remove_route(REVOKED)
    # New connections are refused at once: well before the drain ends, while old sessions still flow.
    wait_until(
        lambda: refused(net.consumer, net.gateway_consumer_ip, 31401, timeout=1.0) == "refused at connect",
        timeout=DRAIN_S / 2,
        interval=0.02,
        what="the revoked endpoint's port to refuse new connections",
    )
    refused_after = time.monotonic() - removed_at
    assert all(s.exchange() for s in revoked), "the revoked sessions are cut only after the drain"

    watch_until_cut(revoked, kept, timeout=DRAIN_S + LATE_S)
    cut_after = [s.closed_at - removed_at for s in revoked if s.closed_at is not None]
    assert len(cut_after) == len(revoked), "every revoked session, old workers included, is cut"
    assert min(cut_after) >= DRAIN_S, f"cut before the drain was over: {cut_after}"
    assert max(cut_after) <= DRAIN_S + LATE_S
    assert not processes_carrying(agent, REVOKED)
    # The other endpoint's long-lived sessions, in the same old workers, still pass bytes a while later.
    time.sleep(0.5)
    assert all(s.exchange() for s in kept)
    assert processes_carrying(agent, KEPT)
    print(
        f"\nrefused new connections {refused_after:.2f} s after the route left; "
        f"drain {DRAIN_S} s, sessions cut after {min(cut_after):.2f}..{max(cut_after):.2f} s"
    )


def test_a_zero_drain_cuts_at_once_R43(gateway_with_drain: Callable[[float], GatewayAgent]) -> None:
    agent = gateway_with_drain(0)
    revoked, kept = spread_over_workers(agent, 31500)
    removed_at = time.monotonic()
    agent.remove_route(REVOKED)
    watch_until_cut(revoked, kept, timeout=LATE_S)
    cut_after = [s.closed_at - removed_at for s in revoked if s.closed_at is not None]
    assert len(cut_after) == len(revoked)
    assert max(cut_after) <= 2.0, f"a zero drain cuts as the route goes: {cut_after}"
    assert all(s.exchange() for s in kept)
    print(f"\ndrain 0: sessions cut {min(cut_after):.2f}..{max(cut_after):.2f} s after the route left")


def test_a_route_removed_while_the_agent_was_down_is_still_drained_and_cut_R43(
    gateway_with_drain: Callable[[float], GatewayAgent],
) -> None:
    agent = gateway_with_drain(DRAIN_S)
    revoked, kept = spread_over_workers(agent, 31600)
    assert agent.process is not None
    agent.process.send_signal(signal.SIGKILL)  # HAProxy keeps running without its agent
    agent.process.wait()
    agent.remove_route(REVOKED)
    time.sleep(DRAIN_S)  # longer than the drain: nobody is there to cut
    assert all(s.exchange() for s in revoked + kept), "HAProxy serves on while the agent is away"
    restarted_at = time.monotonic()
    agent.start()
    watch_until_cut(revoked, kept, timeout=DRAIN_S + LATE_S + 3)
    cut_after = [s.closed_at - restarted_at for s in revoked if s.closed_at is not None]
    assert len(cut_after) == len(revoked), "the new agent finds the old workers' revoked sessions"
    # Their removal time is unknown to the new agent: a full drain from when it finds them.
    assert min(cut_after) >= DRAIN_S
    assert max(cut_after) <= DRAIN_S + LATE_S + 3
    assert all(s.exchange() for s in kept)
    print(f"\nagent restart: cut {min(cut_after):.2f}..{max(cut_after):.2f} s after it began")


def test_sessions_of_a_route_restored_within_the_drain_are_kept_R43(
    gateway_with_drain: Callable[[float], GatewayAgent],
) -> None:
    agent = gateway_with_drain(DRAIN_S)
    net = agent.topology
    agent.put_route(route(REVOKED, 44, (31701, net.provider_ip, PLAIN_BACKEND_PORT)))
    wait_served(agent, 31701)
    session = Session(net, 31701)
    restored = (agent.routes_dir / f"{REVOKED}.json").read_text()
    reload_with(agent, lambda: agent.remove_route(REVOKED))
    reload_with(agent, lambda: (agent.routes_dir / f"{REVOKED}.json").write_text(restored))
    deadline = time.monotonic() + DRAIN_S + 1.5
    while time.monotonic() < deadline:
        assert session.exchange(), (
            "a route back within the drain keeps its sessions (e.g. a recreated object)"
        )
        time.sleep(0.1)
