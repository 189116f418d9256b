"""R43 with a real HAProxy on loopback: the drainer's commands do what the module says they do.

The usual path (a reload drops the route, old workers drain) runs through the whole agent in
tests/dataplane/test_revocation_drain.py. This covers the path no agent test can provoke: a reload that
was refused after a revocation, so the current worker still holds the revoked endpoint's listener.
"""

from __future__ import annotations

import pathlib
import socket
import time
from collections.abc import Iterator

import pytest

from line_echo import stream_echo_server, talks
from vpcep.api.routing import Listener
from vpcep.builders.haproxy_config import HaproxySettings, haproxy_config
from vpcep.gateway.haproxy_process import HaproxyMaster
from vpcep.gateway.revocation import RevocationDrainer

from .factories import make_route

DRAIN_S = 1.0


@pytest.fixture
def echo_port() -> Iterator[int]:
    with stream_echo_server() as port:
        yield port


def free_ports(count: int) -> list[int]:
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


@pytest.fixture
def haproxy(
    tmp_path: pathlib.Path, haproxy_binary: str, echo_port: int
) -> Iterator[tuple[HaproxyMaster, dict[str, int]]]:
    ports = dict(zip(("a", "b"), free_ports(2), strict=True))
    routes = [
        make_route(
            endpoint_id,
            listeners=[
                Listener(gatewayPort=port, clientPort=80, backendHost="127.0.0.1", serverPort=echo_port)
            ],
        )
        for endpoint_id, port in ports.items()
    ]
    settings = HaproxySettings(runtime_dir=str(tmp_path), bind_address="127.0.0.1")
    master = HaproxyMaster(haproxy_binary, tmp_path)
    master.config_path.write_text(haproxy_config(routes, settings))
    master.start()
    yield master, ports
    master.stop(graceful=False)


def reaches_backend(port: int) -> bool:
    """A new connection passes bytes. A stopped frontend in master-worker mode keeps its socket for a later
    worker, so the kernel may still complete the handshake; what counts is that nothing is echoed."""
    try:
        connection = socket.create_connection(("127.0.0.1", port), timeout=1)
    except OSError:
        return False
    with connection:
        return talks(connection)


def test_after_a_refused_reload_the_revoked_listener_closes_at_once_and_its_sessions_after_the_drain_R43(
    haproxy: tuple[HaproxyMaster, dict[str, int]],
) -> None:
    master, ports = haproxy
    sessions = {
        name: socket.create_connection(("127.0.0.1", port), timeout=2) for name, port in ports.items()
    }
    assert all(talks(connection) for connection in sessions.values())
    drainer = RevocationDrainer(master, DRAIN_S)
    drainer.observe({"a", "b"}, serving={"a", "b"})
    drainer.sweep()

    drainer.observe({"b"}, serving={"a", "b"})  # a is revoked, but the reload dropping it was refused
    revoked_at = time.monotonic()
    time.sleep(drainer.seconds_to_next_sweep() or 0)  # at most the resweep pace after the sweep above
    drainer.sweep()
    assert not reaches_backend(ports["a"]), "the revoked listener takes no new session"
    assert talks(sessions["a"]), "the open session drains"
    while (wait := drainer.seconds_to_next_sweep()) is not None and time.monotonic() < revoked_at + 5:
        time.sleep(wait)
        drainer.sweep()
        assert talks(sessions["b"])
    assert not talks(sessions["a"]), "cut once the drain is over"
    assert time.monotonic() - revoked_at >= DRAIN_S
    assert talks(sessions["b"]) and drainer.sessions_cut == 1
    assert reaches_backend(ports["b"]), "the other endpoint still takes new connections"
    for connection in sessions.values():
        connection.close()
