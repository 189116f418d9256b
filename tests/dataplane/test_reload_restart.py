"""R30: reloads under load lose nothing; a killed gateway gets its full configuration back.

They share the session's gateway with test_gateway_paths.py, but each puts the routes it needs itself, so
each passes when run alone.
"""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest

from vpcep.gateway.haproxy_process import parse_show_proc, unix_command

from .conftest import PLAIN_BACKEND_PORT, PROXY_BACKEND_PORT, GatewayAgent
from .helpers import call, greeting, read_line, refused, route, wait_refused, wait_served
from .netns import in_netns, wait_until

pytestmark = pytest.mark.netns

RELOADS = 20


class Load:
    """Short connections in a loop plus long-lived ones that keep talking, all counted."""

    def __init__(self, agent: GatewayAgent, port: int, short_workers: int = 4, long_lived: int = 8) -> None:
        self.net = agent.topology
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.completed = 0
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._short_loop, daemon=True) for _ in range(short_workers)]
        self.threads += [threading.Thread(target=self._long_lived, daemon=True) for _ in range(long_lived)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)

    def wait_for_exchanges(self, count: int) -> None:
        """Until ``count`` more exchanges have completed than now: traffic is flowing at this point."""
        target = self.completed + count
        wait_until(
            lambda: self.completed >= target or bool(self.failures), timeout=30, what=f"{count} exchanges"
        )

    def _record(self, error: BaseException | None) -> None:
        with self.lock:
            if error is None:
                self.completed += 1
            else:
                self.failures.append(repr(error))

    def _short_loop(self) -> None:
        with in_netns(self.net.consumer):
            while not self.stop.is_set():
                try:
                    address = (self.net.gateway_consumer_ip, self.port)
                    with socket.create_connection(address, timeout=5) as sock:
                        assert greeting(sock)["server"] == "provider-backend"
                        sock.sendall(b"x" * 100 + b"\n")
                        assert read_line(sock) == b"x" * 100 + b"\n"
                    self._record(None)
                except Exception as error:
                    self._record(error)

    def _long_lived(self) -> None:
        try:
            with in_netns(self.net.consumer):
                sock = socket.create_connection((self.net.gateway_consumer_ip, self.port), timeout=5)
            with sock:
                assert greeting(sock)["server"] == "provider-backend"
                while not self.stop.is_set():
                    sock.sendall(b"tick\n")
                    assert read_line(sock) == b"tick\n"
                    self._record(None)
                    time.sleep(0.02)
        except Exception as error:
            self._record(error)


def master_table(agent: GatewayAgent):  # type: ignore[no-untyped-def]
    """The master's process table (its CLI is briefly away while the master re-executes on a reload)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return parse_show_proc(unix_command(str(agent.runtime_dir / "master.sock"), "show proc"))
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_reloads_under_load_lose_no_connection_R30(agent: GatewayAgent) -> None:
    net = agent.topology
    agent.put_route(route("e-load", 21, (30020, net.provider_ip, PLAIN_BACKEND_PORT)))
    wait_served(agent, 30020)
    before = master_table(agent)
    with Load(agent, 30020) as load:
        load.wait_for_exchanges(20)
        for n in range(RELOADS):
            version = agent.status()["appliedResourceVersion"]
            if n % 2 == 0:
                churn = route(f"e-churn-{n}", 100 + n, (30100 + n, net.provider_ip, PLAIN_BACKEND_PORT))
                agent.put_route(churn)
            else:
                agent.remove_route(f"e-churn-{n - 1}")
            wait_until(lambda v=version: agent.status()["appliedResourceVersion"] > v, timeout=10)
        load.wait_for_exchanges(20)  # traffic after the last reload too
    after = master_table(agent)
    assert after.master_pid == before.master_pid, "the master never restarts"
    assert after.reloads - before.reloads >= RELOADS
    assert after.failed_reloads == before.failed_reloads
    assert load.failures == [], f"{len(load.failures)} failed of {load.completed + len(load.failures)}"
    assert load.completed > 200
    crashed = len(re.findall(r"exited with code 139", agent.log()))
    print(f"\n{RELOADS} reloads, {load.completed} exchanges, 0 failed; old workers SIGSEGV: {crashed}")


def test_a_killed_agent_adopts_the_running_haproxy_without_a_cut_R30(
    agent: GatewayAgent, basic_port: int
) -> None:
    net = agent.topology
    master_before = agent.master_pid()
    with Load(agent, basic_port, short_workers=2, long_lived=2) as load:
        load.wait_for_exchanges(10)
        assert agent.process is not None
        agent.process.kill()
        agent.process.wait()
        agent.put_route(route("e-while-down", 22, (30021, net.provider_ip, PLAIN_BACKEND_PORT)))
        agent.start()
        wait_served(agent, 30021)  # the restarted agent has reloaded the adopted HAProxy
        load.wait_for_exchanges(10)  # and the old routes' traffic goes on after that reload
    assert load.failures == [], "a restarted agent must not cut or refuse the routes HAProxy already serves"
    assert load.completed > 20
    assert agent.status()["rejectedRoutes"].keys() <= {"garbage.json"}
    assert agent.master_pid() == master_before


def test_killing_agent_and_haproxy_then_restarting_restores_every_route_R30(agent: GatewayAgent) -> None:
    """The gateway's whole configuration comes back from the routes alone: plain routes, PROXY v2 with the
    marker, source CIDRs (its own routes: it depends on no other test's)."""
    net = agent.topology
    plain = {f"e-restart-{n}": 30040 + n for n in range(6)}
    for n, (endpoint_id, port) in enumerate(plain.items()):
        agent.put_route(route(endpoint_id, 300 + n, (port, net.provider_ip, PLAIN_BACKEND_PORT)))
    agent.put_route(
        route("e-restart-proxy", 616161, (30046, net.provider_ip, PROXY_BACKEND_PORT), proxyProtocolV2=True)
    )
    agent.put_route(
        route(
            "e-restart-cidr", 302, (30047, net.provider_ip, PLAIN_BACKEND_PORT),
            sourceCIDRs=[f"{net.consumer_ip}/32"],
        )
    )  # fmt: skip
    ports = [*plain.values(), 30046, 30047]
    for port in ports:
        wait_served(agent, port)
    agent.kill_everything()
    wait_refused(agent, ports[0], timeout=5)
    agent.start()
    for port in ports:
        wait_served(agent, port, timeout=10)
    proxied = call(net.consumer, net.gateway_consumer_ip, 30046)
    assert proxied["marker"] == "616161" and proxied["client"].startswith(net.consumer_ip + ":")
    assert refused(net.consumer, net.gateway_consumer_ip, 30047, source=net.consumer_other_ip) in (
        "reset at once",
        "closed at once",
    )
    mine = {*plain, "e-restart-proxy", "e-restart-cidr"}
    assert not mine & set(agent.status()["rejectedRoutes"])
