"""The gateway agent against a real Kubernetes API (hack/testbed): route ConfigMaps in, status ConfigMap out.

The agent runs as the ``vpcep-gateway`` service account with only the RBAC it needs (R36), in the
host's network namespace (it must reach the test API server on loopback), with HAProxy and the
backend on free loopback ports.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import BACKEND_SERVER, WORKTREE
from .helpers import greeting, read_line
from .netns import wait_until

pytestmark = pytest.mark.cluster

GATEWAY_RULES = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: vpcep-gateway, namespace: NS}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: vpcep-gateway, namespace: NS}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: vpcep-gateway}
subjects:
- {kind: ServiceAccount, name: vpcep-gateway, namespace: NS}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def route_configmap(
    endpoint_id: str, gateway_port: int, backend_port: int, payload: str | None = None
) -> str:
    listener = {
        "gatewayPort": gateway_port,
        "clientPort": 80,
        "backendHost": "127.0.0.1",
        "serverPort": backend_port,
    }
    route = {"endpointId": endpoint_id, "markerId": 7, "listeners": [listener]}
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"vpcep-route-{endpoint_id}", "labels": {"vpcep.io/route": "true"}},
            "data": {"route.json": payload if payload is not None else json.dumps(route)},
        }
    )


class ClusterGateway:
    def __init__(self, cluster: Any, namespace: str, workdir: pathlib.Path) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.workdir = workdir
        self.kubeconfig = cluster.kubeconfig_for(f"system:serviceaccount:{namespace}:vpcep-gateway")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(WORKTREE / "operator"), KUBECONFIG=str(self.kubeconfig))
        with (self.workdir / "agent.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "vpcep.gateway.agent",
                    "--namespace", self.namespace, "--name", "gw-0",
                    "--address", "127.0.0.1", "--bind-address", "127.0.0.1",
                    "--runtime-dir", str(self.workdir / "run"),
                    "--heartbeat-interval", "0.5", "--debounce", "0.05", "--max-debounce", "0.2",
                ],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def status(self) -> dict[str, Any]:
        got = self.cluster.kubectl_run(
            "get", "configmap", "vpcep-gateway-gw-0", "-n", self.namespace, "-o", "json", check=False
        )
        if got.returncode != 0:
            return {}
        configmap = json.loads(got.stdout)
        assert configmap["metadata"]["labels"]["vpcep.io/gateway-status"] == "true"
        return dict(json.loads(configmap["data"]["status.json"]))

    def apply(self, manifest: str) -> int:
        applied = self.cluster.kubectl_run(
            "apply", "-n", self.namespace, "-o", "json", "-f", "-", input=manifest
        )
        return int(json.loads(applied.stdout)["metadata"]["resourceVersion"])

    def wait_applied(self, resource_version: int) -> dict[str, Any]:
        wait_until(
            lambda: self.status().get("appliedResourceVersion", 0) >= resource_version,
            timeout=15,
            what=f"the gateway to apply resourceVersion {resource_version}",
        )
        return self.status()

    def stop(self, hard: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
            self.process.wait(timeout=20)
        pid_file = self.workdir / "run" / "haproxy.pid"
        if hard and pid_file.exists():
            master = int(pid_file.read_text().split()[0])
            for proc in pathlib.Path("/proc").iterdir():
                if proc.name.isdigit():
                    try:
                        stat = (proc / "stat").read_text()
                    except OSError:
                        continue
                    if int(stat.rsplit(")", 1)[1].split()[1]) == master or int(proc.name) == master:
                        os.kill(int(proc.name), signal.SIGKILL)


@pytest.fixture
def cluster_gateway(cluster: Any, tmp_path: pathlib.Path) -> Iterator[ClusterGateway]:
    namespace = cluster.create_namespace("gw")
    cluster.kubectl_run("apply", "-f", "-", input=GATEWAY_RULES.replace("NS", namespace))
    gateway = ClusterGateway(cluster, namespace, tmp_path)
    gateway.start()
    yield gateway
    gateway.stop(hard=True)
    cluster.kubectl_run("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture
def backend_port() -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(BACKEND_SERVER), "--listen", f"127.0.0.1:{port}", "--name", "api-backend"],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == b"READY"
    yield port
    process.kill()
    process.wait()


def served_by(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        name = str(greeting(sock)["server"])
        sock.sendall(b"ping\n")
        assert read_line(sock) == b"ping\n"
        return name


def test_routes_from_configmaps_reach_the_backend_and_status_reports_them_R30(
    cluster_gateway: ClusterGateway, backend_port: int
) -> None:
    first_port, second_port = free_port(), free_port()
    version = cluster_gateway.apply(route_configmap("e-one", first_port, backend_port))
    status = cluster_gateway.wait_applied(version)
    assert status["gateway"] == "gw-0" and status["address"] == "127.0.0.1" and status["heartbeat"]
    assert served_by(first_port) == "api-backend"

    # A broken route is reported and changes nothing for the others.
    broken = route_configmap("e-bad", free_port(), backend_port, payload='{"endpointId": 1')
    bad = cluster_gateway.apply(broken)
    status = cluster_gateway.wait_applied(bad)
    assert "Invalid JSON" in status["rejectedRoutes"]["e-bad"]
    assert served_by(first_port) == "api-backend"

    version = cluster_gateway.apply(route_configmap("e-two", second_port, backend_port))
    cluster_gateway.wait_applied(version)
    assert served_by(second_port) == "api-backend"

    # Killing the agent and HAProxy: the restarted agent rebuilds everything from the API.
    cluster_gateway.stop(hard=True)
    wait_until(lambda: _refused(first_port), timeout=5, what="HAProxy to be gone")
    cluster_gateway.start()
    wait_until(lambda: served_by(first_port) == "api-backend", timeout=20, what="e-one restored")
    assert served_by(second_port) == "api-backend"

    namespace = cluster_gateway.namespace
    cluster_gateway.cluster.kubectl_run("delete", "configmap", "vpcep-route-e-one", "-n", namespace)
    wait_until(lambda: _refused(first_port), timeout=10, what="e-one removed")
    assert served_by(second_port) == "api-backend"


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False
