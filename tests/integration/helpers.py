"""Helpers for driving the operator on the test control plane: kubectl apply of YAML, polling status."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from gateway_pods import GATEWAY_DEPLOYMENT, create_gateway_pod
from gateway_pods import set_gateway_pod_ready as set_ready

REPO = pathlib.Path(__file__).resolve().parents[2]
MANIFESTS = pathlib.Path(__file__).resolve().parent / "manifests"
GROUP_VERSION = "vpcep.io/v1alpha1"


@dataclass
class Cluster:
    kubeconfig: str
    # the suite's kubectl (tests/conftest.py: on PATH, else the test control plane's own), never a bare name a
    # fresh machine may not have
    kubectl_binary: str

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": self.kubeconfig}

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.kubectl_binary, *args],
            input=input,
            text=True,
            capture_output=True,
            env=self.env,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def apply(self, template: str, check: bool = True, **values: str) -> subprocess.CompletedProcess[str]:
        """kubectl apply -f of a YAML file from manifests/, with ${placeholders} filled in."""
        text = render(template, **values)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
            handle.write(text)
        try:
            return self.kubectl("apply", "-f", handle.name, check=check)
        finally:
            os.unlink(handle.name)

    def apply_text(self, text: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.kubectl("apply", "-f", "-", input=text, check=check)

    def get(
        self, kind: str, namespace: str | None, name: str | None = None, selector: str | None = None
    ) -> Any:
        args = ["get", kind, "-o", "json"]
        if name:
            args.insert(2, name)
        if namespace:
            args += ["-n", namespace]
        else:
            args += ["-A"]
        if selector:
            args += ["-l", selector]
        result = self.kubectl(*args, check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise AssertionError(result.stderr)
        return json.loads(result.stdout)

    def status(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        body = self.get(kind, namespace, name)
        return (body or {}).get("status") or {}

    def namespace(self, name: str, account: str | None = None) -> None:
        labels = {"vpcep.io/account": account} if account else {}
        self.apply_text(
            yaml.safe_dump(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
            )
        )

    def delete(
        self, kind: str, namespace: str, name: str, wait: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return self.kubectl(
            "delete",
            kind,
            name,
            "-n",
            namespace,
            f"--wait={str(wait).lower()}",
            "--ignore-not-found",
            check=False,
        )


def render(template: str, **values: str) -> str:
    return string.Template((MANIFESTS / template).read_text()).substitute(values)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Poll until check() returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")


def publish_service(cluster: Cluster, namespace: str, name: str, approval: bool = False) -> str:
    """Backend + EndpointService; returns the published service name once Available (R5, R6)."""
    return publish_services(cluster, namespace, [name], approval)[name]


def publish_whitelisted(cluster: Cluster, namespace: str, name: str, accounts: list[str]) -> str:
    """publish_service, and a Whitelist of the same name permitting `accounts` (R12); the published name."""
    service_name = publish_service(cluster, namespace, name)
    entries = json.dumps([f"iam:domain::{account}" for account in accounts])
    cluster.apply("whitelist.yaml", name=name, namespace=namespace, service=name, accounts=entries)
    return service_name


def publish_services(
    cluster: Cluster, namespace: str, names: list[str], approval: bool = False
) -> dict[str, str]:
    """Several backends + EndpointServices, applied before any is awaited; name -> published service name."""
    for name in names:
        cluster.apply("backend-service.yaml", name=f"{name}-backend", namespace=namespace)
        cluster.apply(
            "endpoint-service.yaml",
            name=name,
            namespace=namespace,
            backend=f"{name}-backend",
            approval=str(approval).lower(),
        )
    published = {}
    for name in names:
        status = wait_for(
            f"EndpointService {name} Available", phase_is(cluster, "vpces", namespace, name, "Available")
        )
        published[name] = str(status["serviceName"])
    return published


def pod_running_at(cluster: Cluster, namespace: str, name: str, ip: str) -> None:
    """Stands in for kubelet: the Pod is Running at ``ip`` (the testbed schedules nothing)."""
    cluster.kubectl(
        "patch", "pod", name, "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"podIP": ip, "phase": "Running"}}),
    )  # fmt: skip


TRUSTED_GATEWAYS = {"verifyGatewayPods": True}  # operator config: believe only gateway pods (R47)


@contextlib.contextmanager
def gateway_pod(
    cluster: Cluster, namespace: str, name: str, ip: str, deployment: str = GATEWAY_DEPLOYMENT
) -> Iterator[None]:
    """A gateway pod `name` of `deployment`, Running and Ready at `ip` (gateway_pods.py, a stand-in for the
    Deployment controller and kubelet), for the block: what the operator checks before it believes the
    status ConfigMap ``vpcep-gateway-<name>`` (R47)."""
    create_gateway_pod(cluster.kubectl, namespace, name, ip, deployment)
    try:
        yield
    finally:
        cluster.delete("pod", namespace, name)


def set_gateway_pod_ready(cluster: Cluster, namespace: str, name: str, ip: str, ready: bool) -> None:
    set_ready(cluster.kubectl, namespace, name, ip, ready)


def slice_addresses(cluster: Cluster, namespace: str, endpoint: str) -> set[str]:
    """The addresses the operator put in the EndpointSlice(s) of Endpoint `endpoint`: its gateways'."""
    slices = cluster.get("endpointslices", namespace, selector=f"kubernetes.io/service-name=vpce-{endpoint}")
    return {
        address
        for item in (slices or {}).get("items", [])
        for entry in item.get("endpoints") or []
        for address in entry.get("addresses") or []
    }


def phase_is(cluster: Cluster, kind: str, namespace: str, name: str, *phases: str) -> Callable[[], Any]:
    def check() -> Any:
        status = cluster.status(kind, namespace, name)
        return status if status.get("phase") in phases else None

    return check


@dataclass
class OperatorProcess:
    """The operator as a real process: `python -m vpcep.main` with PYTHONPATH pointing at this worktree."""

    cluster: Cluster
    namespace: str
    extra_args: list[str] = field(default_factory=list)
    config: dict[str, Any] | None = None
    process: subprocess.Popen[bytes] | None = None
    log_path: pathlib.Path | None = None
    # Its name in the leader Lease (R50), kept across restart() as a pod's name is across container restarts.
    pod_name: str = field(default_factory=lambda: f"operator-{uuid.uuid4().hex[:8]}")

    def start(self) -> None:
        descriptor, log_name = tempfile.mkstemp(prefix="vpcep-operator-", suffix=".log")
        self.log_path = pathlib.Path(log_name)
        args = [sys.executable, "-m", "vpcep.main", "--namespace", self.namespace, *self.extra_args]
        if self.config is not None:
            config_path = self.log_path.with_suffix(".yaml")
            config_path.write_text(yaml.safe_dump(self.config))
            args += ["--config", str(config_path)]
        env = {**self.cluster.env, "PYTHONPATH": str(REPO / "operator"), "POD_NAME": self.pod_name}
        self.process = subprocess.Popen(args, stdout=descriptor, stderr=subprocess.STDOUT, env=env)
        os.close(descriptor)

    def kill(self) -> None:
        """SIGKILL: no clean-up handlers run (the crash case)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """A new process in place of a dead one (its earlier log is kept in front of the new one)."""
        earlier = self.log()
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
        self.start()
        if self.log_path is not None:
            self.log_path.write_text(earlier + "\n--- restarted ---\n")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.log_path is not None:  # failure reports copied the log already (conftest hook)
            self.log_path.unlink(missing_ok=True)
            self.log_path.with_suffix(".yaml").unlink(missing_ok=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class StandInGateway:
    """Writes a GatewayStatus ConfigMap, as a gateway agent does, that reports every route as applied -- and,
    when a test says so, what a real gateway also reports: a refused route, an unreachable backend, or no
    heartbeat at all (the agent hung or its pod went away).

    Only for control-plane tests (acceptance logic and the Endpoint conditions that follow from a gateway's
    report, R10-R23, R30, R32): it moves no bytes. The data path is tested with real HAProxy by the gateway's
    own tests and by test_routes_on_the_wire.py.
    """

    def __init__(self, cluster: Cluster, namespace: str, name: str, address: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.name = name
        self.address = address
        self.rejected_routes: dict[str, str] = {}  # endpointId -> why the route was refused
        self.unreachable_backends: dict[str, str] = {}  # endpointId -> health-check message
        self._beating = threading.Event()
        self._beating.set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._beating.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.cluster.delete("configmap", self.namespace, f"vpcep-gateway-{self.name}")

    def stop_heartbeat(self) -> None:
        """No more reports: the last one ages until the operator counts this gateway as not ready."""
        self._beating.clear()

    def resume_heartbeat(self) -> None:
        self._beating.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._beating.wait()
            if self._stop.is_set():
                return
            self._report()
            self._stop.wait(0.3)

    def _report(self) -> None:
        routes = self.cluster.get("configmaps", self.namespace, selector="vpcep.io/route=true")
        routes = routes or {"items": []}
        applied = max((int(item["metadata"]["resourceVersion"]) for item in routes["items"]), default=0)
        status = {
            "gateway": self.name,
            "address": self.address,
            "heartbeat": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "appliedResourceVersion": applied,
            "rejectedRoutes": dict(self.rejected_routes),
            "unhealthyBackends": [
                {"endpointId": endpoint_id, "reachable": False, "message": message}
                for endpoint_id, message in self.unreachable_backends.items()
            ],
        }
        manifest = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"vpcep-gateway-{self.name}",
                "namespace": self.namespace,
                "labels": {"vpcep.io/gateway-status": "true"},
            },
            "data": {"status.json": json.dumps(status)},
        }
        self.cluster.kubectl(
            "apply",
            "--server-side",
            "--field-manager=stand-in-gateway",
            "-f",
            "-",
            input=json.dumps(manifest),
            check=False,
        )


def names(prefix: str, count: int) -> Iterator[str]:
    for index in range(count):
        yield f"{prefix}-{index}"


def free_port_run(size: int, addresses: tuple[str, ...] = ("127.0.0.1",), start: int = 41000) -> int:
    """The first of `size` consecutive ports free on every one of `addresses` right now (a gateway listens on
    them, or a server the test starts). Different pytest processes start at different places."""
    for first in range(start + os.getpid() % 97 * 40, 60000, 40):
        probes: list[socket.socket] = []
        try:
            for address in addresses:
                for port in range(first, first + size):
                    probe = socket.socket()
                    probes.append(probe)
                    probe.bind((address, port))
            return first
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise RuntimeError(f"no run of {size} free ports")


def running_echo_pod(kube: Cluster, namespace: str) -> None:
    """The backend Pod "echo" in `namespace`, Running at 127.0.0.1 (kubelet's part: the test serves it)."""
    kube.apply("backend-pod.yaml", name="echo", namespace=namespace)
    kube.kubectl(
        "patch", "pod", "echo", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"podIP": "127.0.0.1", "phase": "Running"}}),
    )  # fmt: skip


def published_pod_endpoint(
    kube: Cluster, provider: str, consumer: str, account: str, backend_port: int
) -> dict[str, Any]:
    """An Accepted Endpoint "echo" in `consumer` for the Pod backend "echo" of `provider`, which the test
    serves on 127.0.0.1:backend_port (both namespaces in one account: no Whitelist needed); its status."""
    kube.namespace(provider, account)
    kube.namespace(consumer, account)
    running_echo_pod(kube, provider)
    kube.apply(
        "pod-endpoint-service.yaml",
        name="echo",
        namespace=provider,
        backend="echo",
        server_port=str(backend_port),
    )
    service = wait_for("echo Available", phase_is(kube, "vpces", provider, "echo", "Available"))
    kube.apply("endpoint.yaml", name="echo", namespace=consumer, service_name=service["serviceName"])
    try:
        return dict(wait_for("echo Accepted", phase_is(kube, "vpce", consumer, "echo", "Accepted")))
    except AssertionError:
        raise AssertionError(f"endpoint status: {kube.status('vpce', consumer, 'echo')}") from None


@contextlib.contextmanager
def running_gateway_agent(
    cluster: Cluster,
    namespace: str,
    name: str,
    *extra_args: str,
    prefix: str = "vpcep-gw",
    agent_kubeconfig: str | None = None,
) -> Iterator[str]:
    """A real gateway agent (`python -m vpcep.gateway.agent`, HAProxy on 127.0.0.1) for the duration of the
    block, once it has reported; yields its runtime directory (agent.log and agent.pid inside). Its status
    ConfigMap and the directory go with it. ``agent_kubeconfig``: the agent's own credentials and server, if
    not the suite's."""
    if shutil.which("haproxy") is None:
        raise AssertionError("haproxy is not installed (hack/setup installs it)")
    runtime = tempfile.mkdtemp(prefix=f"{prefix}-{os.getpid()}-")
    log = open(os.path.join(runtime, "agent.log"), "wb")  # noqa: SIM115 - closed below
    agent = subprocess.Popen(
        [
            sys.executable, "-m", "vpcep.gateway.agent",
            "--name", name, "--namespace", namespace,
            "--address", "127.0.0.1", "--bind-address", "127.0.0.1", "--runtime-dir", runtime,
            *extra_args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**cluster.env, "KUBECONFIG": agent_kubeconfig or cluster.kubeconfig,
             "PYTHONPATH": str(REPO / "operator")},
    )  # fmt: skip
    pathlib.Path(runtime, "agent.pid").write_text(str(agent.pid))
    try:
        wait_for(
            "the gateway's first report",
            lambda: cluster.get("configmap", namespace, f"vpcep-gateway-{name}") or agent.poll() is not None,
            timeout=30,
        )
        assert agent.poll() is None, pathlib.Path(runtime, "agent.log").read_text()
        yield runtime
    finally:
        agent.send_signal(signal.SIGCONT)  # a test that paused it may have failed before resuming it
        agent.terminate()
        try:
            agent.wait(timeout=15)
        except subprocess.TimeoutExpired:
            agent.kill()
        log.close()
        cluster.delete("configmap", namespace, f"vpcep-gateway-{name}")
        shutil.rmtree(runtime, ignore_errors=True)
