"""R47: the gateway pod as the chart runs it -- HAProxy in a container of its own, without API credentials,
driven by the agent in the other container through the master CLI socket on their shared emptyDir.

Both processes are started from the rendered chart's container args (the image's entrypoint maps `gateway` to
the agent and runs `python3 -m ...` as given), with the emptyDir's mount path replaced by a directory of the
test: what the kubelet would run, minus the mount namespaces. Real HAProxy, real bytes between network
namespaces.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from .conftest import PLAIN_BACKEND_PORT, WORKTREE, GatewayAgent
from .helpers import call, read_line, refused, route, wait_refused, wait_served
from .netns import Topology, connect, spawn, wait_until

pytestmark = pytest.mark.netns

SHARED_DIR = "/run/vpcep"  # the chart's emptyDir mount path in both containers
HEALTH_PORT = 18081  # through the chart's value; unused by every other agent of the session


def rendered_gateway_containers(*sets: str) -> dict[str, dict[str, Any]]:
    argv = [str(WORKTREE / "hack" / "render-chart"), "vpcep", "--namespace", "vpcep-system"]
    for item in sets:
        argv += ["--set", item]
    rendered = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=True).stdout
    for doc in yaml.safe_load_all(rendered):
        if doc and doc["kind"] == "Deployment" and doc["metadata"]["name"] == "vpcep-gateway":
            return {c["name"]: c for c in doc["spec"]["template"]["spec"]["containers"]}
    raise AssertionError("the chart renders no gateway Deployment")


def as_local(args: list[str], shared_dir: pathlib.Path) -> list[str]:
    """The container's args as this machine runs them: the emptyDir is a directory of the test."""
    return [arg.replace(SHARED_DIR, str(shared_dir)) for arg in args]


def image_command(args: list[str]) -> list[str]:
    """The image's entrypoint (Dockerfile): `gateway ...` is the agent; anything else runs as given."""
    if args[0] == "gateway":
        return [sys.executable, "-m", "vpcep.gateway.agent", *args[1:]]
    assert args[0] == "python3", args
    return [sys.executable, *args[1:]]


class SplitGateway:
    """The two containers of one gateway pod as two processes in the gateway network namespace."""

    def __init__(
        self, topology: Topology, workdir: pathlib.Path, containers: dict[str, dict[str, Any]]
    ) -> None:
        self.containers = containers
        self.haproxy_log = workdir / "haproxy-container.log"
        self.env = dict(os.environ, PYTHONPATH=str(WORKTREE / "operator"))
        runtime_dir = workdir / "run"
        agent_args = as_local(containers["agent"]["args"], runtime_dir)
        # What the test adds: routes from a directory (no API server here), the test's addresses and pace.
        self.agent = GatewayAgent(topology, workdir, *image_command(agent_args)[3:])
        assert self.agent.runtime_dir == runtime_dir
        runtime_dir.mkdir(parents=True, exist_ok=True)
        self.haproxy: subprocess.Popen[bytes] | None = None

    def start_haproxy_container(self) -> None:
        command = image_command(as_local(self.containers["haproxy"]["args"], self.agent.runtime_dir))
        with self.haproxy_log.open("ab") as log:
            self.haproxy = spawn(
                self.agent.topology.gateway, command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def pre_stop_hook(self) -> subprocess.Popen[bytes]:
        hook = self.containers["haproxy"]["lifecycle"]["preStop"]["exec"]["command"]
        return subprocess.Popen(image_command(as_local(hook, self.agent.runtime_dir)), env=self.env)

    def stop(self) -> None:
        self.agent.stop()
        if self.haproxy is not None and self.haproxy.poll() is None:
            self.haproxy.kill()
            self.haproxy.wait()

    def logs(self) -> str:
        return self.agent.log() + self.haproxy_log.read_text(errors="replace")


@pytest.fixture
def split_gateway(
    topology: Topology, backends: dict[str, subprocess.Popen[bytes]], tmp_path: pathlib.Path
) -> Iterator[SplitGateway]:
    # A short R52 leave delay: the preStop hook keeps HAProxy accepting that long before its soft stop.
    containers = rendered_gateway_containers(
        "metrics.enabled=false", f"gateway.healthPort={HEALTH_PORT}", "gateway.drain.leaveSeconds=1"
    )
    gateway = SplitGateway(topology, tmp_path, containers)
    try:
        yield gateway
    finally:
        gateway.stop()


def _parent_of(pid: int) -> int:
    stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_the_chart_runs_haproxy_in_its_own_container_driven_only_through_the_master_socket_R47(
    split_gateway: SplitGateway,
) -> None:
    containers = split_gateway.containers
    assert set(containers) == {"haproxy", "agent"}
    assert "--external-haproxy" in containers["agent"]["args"]
    gateway, agent, net = split_gateway, split_gateway.agent, split_gateway.agent.topology

    # The HAProxy container comes first and waits for the agent's configuration.
    gateway.start_haproxy_container()
    assert gateway.haproxy is not None
    agent.put_route(route("e-split-a", 71, (30046, net.provider_ip, PLAIN_BACKEND_PORT)))
    agent.start()
    wait_served(agent, 30046)
    assert call(net.consumer, net.gateway_consumer_ip, 30046)["server"] == "provider-backend"

    # HAProxy is the container's own process (exec'ed), not a child of the agent: nothing the agent holds
    # (its token, in the cluster) is in HAProxy's process tree.
    master = agent.master_pid()
    assert master == gateway.haproxy.pid
    assert agent.process is not None
    assert all(_parent_of(pid) != agent.process.pid for pid in agent.haproxy_pids())

    # A route change is a reload through the master CLI: same master, an open session survives (R30).
    with connect(net.consumer, net.gateway_consumer_ip, 30046) as kept:
        read_line(kept)
        agent.put_route(route("e-split-b", 72, (30047, net.provider_ip, PLAIN_BACKEND_PORT)))
        wait_served(agent, 30047)
        assert agent.master_pid() == master
        kept.sendall(b"still here\n")
        assert read_line(kept) == b"still here\n"

    # The agent's container restarts: HAProxy keeps serving meanwhile, and the new agent adopts it.
    agent.process.kill()
    agent.process.wait()
    assert call(net.consumer, net.gateway_consumer_ip, 30046)["server"] == "provider-backend"
    agent.start()
    agent.remove_route("e-split-b")
    wait_refused(agent, 30047)
    assert agent.master_pid() == master, "the new agent started a second HAProxy instead of adopting"
    assert call(net.consumer, net.gateway_consumer_ip, 30046)["server"] == "provider-backend"
    assert " -W -S " not in agent.log(), "the agent must never start HAProxy itself in this mode"

    # The pod stops: the preStop hook soft-stops HAProxy (no new connections, open sessions end first).
    with connect(net.consumer, net.gateway_consumer_ip, 30046) as draining:
        read_line(draining)
        hook = gateway.pre_stop_hook()
        wait_until(
            lambda: refused(net.consumer, net.gateway_consumer_ip, 30046, timeout=1.0) is not None,
            timeout=10,
            what="HAProxy to stop listening",
        )
        draining.sendall(b"last words\n")
        assert read_line(draining) == b"last words\n"
        assert hook.poll() is None, "the hook must wait while a session is open"
    # (Here the test reaps the master, as tini does in the container; the hook then sees it gone.)
    gateway.haproxy.wait(timeout=30)
    assert hook.wait(timeout=10) == 0, gateway.logs()
