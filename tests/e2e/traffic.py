"""A tenant's live traffic through a real gateway, for the end-to-end tests (issue 18 deliverables 3 and 4).

Three network namespaces (tests/dataplane/netns.py): the consumer, the gateway and the provider. The gateway
is either the chart's gateway pod, both containers as rendered, run by the kubelet stand-in inside the gateway
namespace (Kubelet.run_pod_in: tests/e2e/test_helm_install.py), or (`Scene.start_gateway`) this tree's agent
run on this machine, starting HAProxy inside the gateway namespace through a wrapper, as hack/demo and the
data-plane tests do: the upgrade tests keep that one, so that the gateway stays the same process while the
operator changes release under it. It reports as a pod of the release's gateway Deployment
(tests/gateway_pods.py, the Deployment controller's and kubelet's part), so the operator believes it (R47).
The backend is a process in the provider namespace behind a Pod backend.

The consumer dials the Endpoint's node IP and client port; a kube-proxy stand-in (DNAT in the consumer
namespace, from the Service and EndpointSlice the operator wrote) sends it to the gateway. `Traffic` keeps one
long-lived stream (a ping echoed every 0.3 s) and opens a new connection every 0.2 s, counting what fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from releases import get, wait_for

from dataplane.helpers import greeting, read_line
from dataplane.netns import Topology, connect, haproxy_in_netns, require_netns, sh, spawn
from gateway_pods import create_gateway_pod

REPO = Path(__file__).resolve().parents[2]
BACKEND_SERVER = REPO / "tests" / "dataplane" / "backend_server.py"
BACKEND_PORT = 5432


@dataclass
class Gateway:
    name: str
    runtime: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return (self.runtime / "agent.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Scene:
    """The topology, the backend process and the gateway; `close()` removes them."""

    def __init__(self, cluster: Any, workdir: Path):
        require_netns("END-TO-END TRAFFIC TESTS")
        self.cluster = cluster
        self.workdir = workdir
        self.net = Topology.create()
        self.gateways: list[Gateway] = []
        # A consumer pod sends everything to its node: node IPs (ClusterIPs) leave through the gateway side.
        self.net.ip(self.net.consumer, "route", "add", "default", "via", self.net.gateway_consumer_ip)
        argv = [sys.executable, str(BACKEND_SERVER), "--listen", f"0.0.0.0:{BACKEND_PORT}", "--name", "db"]
        self.backend = spawn(self.net.provider, argv, stdout=subprocess.PIPE)
        assert self.backend.stdout is not None and self.backend.stdout.readline().strip() == b"READY"

    def backend_pod(self, namespace: str) -> None:
        """The provider's backend Pod `db`, Running at the provider namespace's address (kubelet's part)."""
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "db", "namespace": namespace, "labels": {"app": "db"}},
            "spec": {"containers": [{"name": "server", "image": "example.invalid/db"}]},
        }
        self.cluster.kubectl_run("apply", "-f", "-", input=json.dumps(pod))
        running = {"status": {"podIP": self.net.provider_ip, "phase": "Running"}}
        self.cluster.kubectl_run(
            "patch", "pod", "db", "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps(running),
        )  # fmt: skip

    def start_gateway(self, release: str, namespace: str) -> Gateway:
        """A gateway agent + HAProxy, reporting as pod `<release>-gateway-<n>` of the release's Deployment."""
        name = f"{release}-gateway-{len(self.gateways)}"
        create_gateway_pod(
            self.cluster.kubectl_run,
            namespace,
            name,
            self.net.gateway_consumer_ip,
            deployment=f"{release}-gateway",
            labels={"app.kubernetes.io/name": "vpcep-gateway", "app.kubernetes.io/instance": release},
        )
        runtime = self.workdir / name
        runtime.mkdir(parents=True)
        wrapper = haproxy_in_netns(runtime, self.net.gateway)
        argv = [
            sys.executable, "-m", "vpcep.gateway.agent", "--name", name, "--namespace", namespace,
            "--address", self.net.gateway_consumer_ip, "--bind-address", self.net.gateway_consumer_ip,
            "--runtime-dir", str(runtime), "--haproxy", str(wrapper), "--heartbeat-interval", "1",
            "--health-check-interval-ms", "300", "--debounce", "0.05", "--max-debounce", "0.2",
        ]  # fmt: skip
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig), "PYTHONPATH": str(REPO / "operator")}
        with (runtime / "agent.log").open("wb") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        gateway = Gateway(name, runtime, process)
        self.gateways.append(gateway)
        wait_for(
            "the gateway's first report",
            lambda: (
                get(self.cluster, "configmap", namespace, f"vpcep-gateway-{name}")
                or process.poll() is not None
            ),
            timeout=30,
            logs=gateway.log,
        )
        assert process.poll() is None, gateway.log()
        return gateway

    def stop_gateways(self) -> None:
        for gateway in self.gateways:
            gateway.stop()

    def route(self, consumer: str, endpoint: str) -> str:
        """The kube-proxy stand-in: DNAT nodeIP:clientPort to the gateway address and port the operator's
        EndpointSlice names, in the consumer namespace (rules replaced, not added to). Returns the node IP."""
        service = get(self.cluster, "service", consumer, f"vpce-{endpoint}")
        slices = get(self.cluster, "endpointslices", consumer)["items"]
        (endpoint_slice,) = [
            s
            for s in slices
            if s["metadata"]["labels"].get("kubernetes.io/service-name") == f"vpce-{endpoint}"
        ]
        address = endpoint_slice["endpoints"][0]["addresses"][0]
        targets = {port["name"]: port["port"] for port in endpoint_slice["ports"]}
        node_ip = str(service["spec"]["clusterIP"])
        sh("ip", "netns", "exec", self.net.consumer, "iptables", "-t", "nat", "-F", "OUTPUT")
        for port in service["spec"]["ports"]:
            sh(
                "ip", "netns", "exec", self.net.consumer,
                "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp",
                "-d", node_ip, "--dport", str(port["port"]),
                "-j", "DNAT", "--to-destination", f"{address}:{targets[port['name']]}",
            )  # fmt: skip
        return node_ip

    def logs(self) -> str:
        return "\n".join(f"--- gateway {g.name}\n{g.log()}" for g in self.gateways)

    def close(self) -> None:
        self.stop_gateways()
        self.backend.kill()
        self.backend.wait()
        self.net.destroy()


@dataclass
class Traffic:
    """A consumer's traffic to `node_ip:port`: one long-lived stream and a new connection every 0.2 s."""

    net: Topology
    node_ip: str
    port: int = BACKEND_PORT
    connections: int = 0
    failed: list[tuple[float, str]] = field(default_factory=list)
    pings: int = 0
    broken: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def one_connection(self) -> None:
        """Connect, be greeted by the backend, one echo, close: raises on any failure."""
        with connect(
            self.net.consumer, self.node_ip, self.port, timeout=3, source=self.net.consumer_ip
        ) as sock:
            assert greeting(sock)["server"] == "db"
            sock.sendall(b"hello\n")
            if read_line(sock) != b"hello\n":
                raise ConnectionError("no echo")

    def passes(self) -> bool:
        """Whether one connection passes now (for waiting until bytes flow)."""
        try:
            self.one_connection()
        except (OSError, AssertionError, ValueError):
            return False
        return True

    def _connect_steadily(self) -> None:
        while not self._stop.wait(0.2):
            self.connections += 1
            try:
                self.one_connection()
            except (OSError, AssertionError, ValueError) as error:
                self.failed.append((time.monotonic(), repr(error)))

    def _stream(self) -> None:
        try:
            sock = connect(self.net.consumer, self.node_ip, self.port, timeout=5, source=self.net.consumer_ip)
            greeting(sock)
        except (OSError, ValueError) as error:
            self.broken.append((time.monotonic(), f"could not open: {error!r}"))
            return
        with sock:
            while not self._stop.wait(0.3):
                line = b"ping %d\n" % self.pings
                try:
                    sock.sendall(line)
                    if read_line(sock) != line:
                        raise ConnectionError("the echo stopped")
                except OSError as error:
                    self.broken.append((time.monotonic(), f"after {self.pings} pings: {error!r}"))
                    return
                self.pings += 1

    def start(self) -> Traffic:
        for target in (self._stream, self._connect_steadily):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def summary(self) -> str:
        return (
            f"{self.connections} new connections, {len(self.failed)} failed {self.failed[:3]}; "
            f"stream {self.pings} pings, broken {self.broken}"
        )
