"""Fixtures for the data-plane tests: a consumer/gateway/provider topology, backends, the gateway agent."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from .netns import Topology, require_netns, spawn, wait_until

WORKTREE = pathlib.Path(__file__).resolve().parents[2]
BACKEND_SERVER = pathlib.Path(__file__).with_name("backend_server.py")

# Ports inside our own namespaces: nobody else can hold them.
PLAIN_BACKEND_PORT = 8080
PROXY_BACKEND_PORT = 8081
# The gateway's Prometheus /metrics, in the gateway namespace.
GATEWAY_METRICS_PORT = 9464


@pytest.fixture(scope="session")
def topology() -> Iterator[Topology]:
    require_netns("DATA-PLANE TESTS")
    if not shutil.which("haproxy"):
        pytest.fail("haproxy is not installed (apt-get install haproxy)")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # R21 holds 3000+ sockets in this process
    net = Topology.create()
    yield net
    net.destroy()


def _start_backend(ns: str, listen: str, name: str, proxy_v2: bool) -> subprocess.Popen[bytes]:
    argv = [sys.executable, str(BACKEND_SERVER), "--listen", listen, "--name", name]
    if proxy_v2:
        argv.append("--proxy-v2")
    process = spawn(ns, argv, stdout=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"READY", f"backend {name} did not start"
    return process


@pytest.fixture(scope="session")
def backends(topology: Topology) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    processes = {
        "plain": _start_backend(
            topology.provider, f"0.0.0.0:{PLAIN_BACKEND_PORT}", "provider-backend", False
        ),
        "proxy": _start_backend(
            topology.provider, f"0.0.0.0:{PROXY_BACKEND_PORT}", "provider-proxy-backend", True
        ),
        # The consumer's own service on the overlapping address: must never be what the endpoint reaches.
        "consumer-decoy": _start_backend(
            topology.consumer, f"{topology.overlap_ip}:{PLAIN_BACKEND_PORT}", "consumer-decoy", False
        ),
    }
    yield processes
    for process in processes.values():
        process.kill()
        process.wait()


class GatewayAgent:
    """The vpcep-gateway agent running in the gateway namespace, fed from a routes directory."""

    def __init__(
        self, topology: Topology, workdir: pathlib.Path, *extra_args: str, prefix: Sequence[str] = ()
    ) -> None:
        self.topology = topology
        self.extra_args = extra_args  # more agent flags, e.g. --revocation-drain-seconds
        self.prefix = prefix  # a command the agent runs under, e.g. prlimit
        self.routes_dir = workdir / "routes"
        self.runtime_dir = workdir / "run"
        self.log_path = workdir / "agent.log"
        self.routes_dir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(WORKTREE / "operator"))
        with self.log_path.open("ab") as log:
            self.process = spawn(
                self.topology.gateway,
                [
                    *self.prefix, sys.executable, "-m", "vpcep.gateway.agent",
                    "--routes-dir", str(self.routes_dir),
                    "--runtime-dir", str(self.runtime_dir),
                    "--name", f"gw-{self.topology.tag}",
                    "--address", self.topology.gateway_consumer_ip,
                    "--heartbeat-interval", "0.5",
                    "--health-check-interval-ms", "300",
                    "--debounce", "0.05",
                    "--max-debounce", "0.2",
                    *self.extra_args,
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        previous = self.status().get("heartbeat")
        wait_until(
            lambda: self.status().get("heartbeat") not in (None, previous),
            timeout=15,
            what="the agent's first status report",
        )

    def status(self) -> dict[str, Any]:
        try:
            return json.loads((self.runtime_dir / "status.json").read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def put_route(self, route: dict[str, Any]) -> None:
        path = self.routes_dir / f"{route['endpointId']}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(route))
        temporary.rename(path)

    def remove_route(self, endpoint_id: str) -> None:
        (self.routes_dir / f"{endpoint_id}.json").unlink(missing_ok=True)

    def haproxy_pids(self) -> list[int]:
        """Master and workers: every haproxy whose config is ours."""
        found = []
        marker = str(self.runtime_dir / "haproxy.cfg").encode()
        for entry in pathlib.Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"haproxy" in cmdline.split(b"\0")[0] and marker in cmdline:
                found.append(int(entry.name))
        return found

    def master_pid(self) -> int:
        return int((self.runtime_dir / "haproxy.pid").read_text().split()[0])

    def kill_everything(self) -> None:
        """SIGKILL the agent and every HAProxy process of this gateway, as a node crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        for pid in self.haproxy_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not self.haproxy_pids(), timeout=5, what="HAProxy to die")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for pid in self.haproxy_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture(scope="session")
def agent(
    topology: Topology, backends: dict[str, subprocess.Popen[bytes]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayAgent]:
    # Only this agent serves /metrics: other tests start more agents in the same namespace.
    gateway = GatewayAgent(
        topology, tmp_path_factory.mktemp("gateway"), "--metrics-port", str(GATEWAY_METRICS_PORT)
    )
    gateway.start()
    yield gateway
    gateway.stop()


BASIC_PORT = 30001


@pytest.fixture
def basic_port(agent: GatewayAgent) -> int:
    """A plain route (endpoint e-basic, gateway port 30001 -> the plain backend), served: tests that need some
    other endpoint's traffic ask for it instead of relying on a test that ran before them."""
    from .helpers import route, wait_served  # helpers imports this module

    agent.put_route(route("e-basic", 11, (BASIC_PORT, agent.topology.provider_ip, PLAIN_BACKEND_PORT)))
    wait_served(agent, BASIC_PORT)
    return BASIC_PORT
