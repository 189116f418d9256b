"""Helpers of the end-to-end tests: a Helm release installed with Helm's own engine, its operator pod run by
the kubelet stand-in, and waiting on what a user would watch."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kubelet import Container, Image, Kubelet

from helm_engine import CHART, helm

# The cluster DNS add-on's Service, which every conformant cluster has and the testbed lacks: the default
# `dns` cloud service's backend (R37). Created as the cluster would have it.
KUBE_DNS = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
    "spec": {
        "selector": {"k8s-app": "kube-dns"},
        "ports": [{"name": "dns-tcp", "protocol": "TCP", "port": 53}],
    },
}


def api_server_slice(cluster: Any) -> dict[str, Any]:
    """The EndpointSlice kube-apiserver keeps for the `kubernetes` Service in `default` (its own addresses).
    The testbed's API server runs without that reconciler, so the tests write it as kube-apiserver would: a
    stand-in, like KUBE_DNS. The chart reads it at install to admit only the API server to the webhook
    (R46)."""
    url = urlparse(cluster.server)
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "kubernetes"},
        },
        "addressType": "IPv6" if ":" in (url.hostname or "") else "IPv4",
        "endpoints": [{"addresses": [url.hostname], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "protocol": "TCP", "port": url.port}],
    }


def new_release(cluster: Any, prefix: str, namespace_prefix: str | None = None) -> tuple[str, str, Any]:
    """A release name and a namespace of their own, and Helm's client (a helm.Config, to close) for them, on a
    cluster that has the cluster DNS's Service and the API server's EndpointSlice as every cluster does
    (KUBE_DNS, api_server_slice)."""
    cluster.kubectl_run("apply", "-f", "-", input=json.dumps(KUBE_DNS))
    cluster.kubectl_run("apply", "-f", "-", input=json.dumps(api_server_slice(cluster)))
    name, namespace = (
        f"{prefix}-{uuid.uuid4().hex[:4]}",
        f"{namespace_prefix or prefix}-{uuid.uuid4().hex[:4]}",
    )
    return name, namespace, helm.Config(kubeconfig_path=str(cluster.kubeconfig), namespace=namespace)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def listen_ports(one_replica: bool = True) -> dict[str, Any]:
    """The values that differ from the defaults: the listen ports, and (`one_replica`) one operator replica
    with Recreate, as the stand-in's pods share this machine's network unless it gives each pod a network
    of its own (kubelet.py, pod_networks): a second replica, or a surge pod of a rolling update, could not
    bind the first one's ports. Without it, the chart's two replicas with RollingUpdate (R50)."""
    health, readiness, webhook, metrics, channel = free_ports(5)
    pinned = {"replicas": 1, "strategy": {"type": "Recreate"}} if one_replica else {}
    return {
        "operator": {"healthPort": health, "readinessPort": readiness, **pinned},
        "webhook": {"port": webhook},
        "gateway": {"apiChannel": {"port": channel}},
        # not the default 9090: another program on this machine may hold it (Prometheus's own default)
        "metrics": {"operator": {"port": metrics}},
    }


def wait_for(what: str, check: Callable[[], Any], timeout: float, logs: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs()}")


def get(cluster: Any, kind: str, namespace: str | None, name: str | None = None) -> dict[str, Any]:
    """The object (or list) as JSON; {} when it does not exist."""
    args = ["get", kind, *([name] if name else []), "-o", "json"]
    args += ["-n", namespace] if namespace else ["-A"] if not name else []
    proc = cluster.kubectl_run(*args, check=False)
    loaded: dict[str, Any] = json.loads(proc.stdout) if proc.returncode == 0 else {}
    return loaded


def status(cluster: Any, kind: str, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = get(cluster, kind, namespace, name).get("status") or {}
    return found


@dataclass
class Release:
    name: str
    namespace: str
    config: Any  # helm.Config, on the release's namespace
    kubelet: Kubelet
    operator: Container
    install_seconds: float
    ready_seconds: float


def install_and_run(
    cluster: Any,
    config: Any,
    name: str,
    namespace: str,
    values: dict[str, Any],
    workdir: Path,
    certificate: tuple[Path, Path],
) -> Release:
    """`helm install` (creating the namespace), then the operator pod, until it is ready."""
    started = time.monotonic()
    with helm.Chart.load(CHART) as chart:
        installed = config.install(
            chart, name, values, namespace=namespace, create_namespace=True, timeout=120
        )
    install_seconds = time.monotonic() - started
    assert installed["status"] == "deployed", installed
    kubelet = Kubelet(cluster, workdir, Image(), certificate)
    try:
        started = time.monotonic()
        (operator,) = kubelet.run_deployment(namespace, f"{name}-operator")
        wait_for("the operator to be ready", lambda: operator.ready, timeout=120, logs=kubelet.logs)
    except BaseException:
        kubelet.stop()
        raise
    return Release(name, namespace, config, kubelet, operator, install_seconds, time.monotonic() - started)


def tenant(
    cluster: Any, logs: Callable[[], str], backend_pod: Callable[[str], None] | None = None
) -> tuple[str, str]:
    """A provider publishing a Service backend (no approval, the consumer's account whitelisted), a consumer
    with an Endpoint `db` to it, allocated (with no gateway it stays Creating/GatewayNotReady). With
    `backend_pod`, the backend is the Pod `db` that it makes in the provider's namespace instead."""
    provider, consumer = cluster.create_namespace("provider"), cluster.create_namespace("consumer")
    backend = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "db", "namespace": provider},
        "spec": {"selector": {"app": "db"}, "ports": [{"port": 5432, "targetPort": 5432}]},
    }
    service = {
        "apiVersion": "vpcep.io/v1alpha1",
        "kind": "EndpointService",
        "metadata": {"name": "db", "namespace": provider},
        "spec": {
            "backend": {"kind": "Service" if backend_pod is None else "Pod", "name": "db"},
            "ports": [{"protocol": "TCP", "serverPort": 5432, "clientPort": 5432}],
            "approvalRequired": False,
        },
    }
    whitelist = {
        "apiVersion": "vpcep.io/v1alpha1",
        "kind": "Whitelist",
        "metadata": {"name": "db", "namespace": provider},
        "spec": {"endpointService": "db", "accounts": [f"iam:domain::{consumer}"]},
    }
    if backend_pod is not None:
        backend_pod(provider)
    for obj in ([] if backend_pod else [backend]) + [service, whitelist]:
        cluster.kubectl_run("apply", "-f", "-", input=json.dumps(obj))
    service_name = wait_for(
        "the service to be Available",
        lambda: (
            (s := status(cluster, "endpointservices", provider, "db")).get("phase") == "Available"
            and s.get("serviceName")
        ),
        timeout=60,
        logs=logs,
    )
    endpoint = {
        "apiVersion": "vpcep.io/v1alpha1",
        "kind": "Endpoint",
        "metadata": {"name": "db", "namespace": consumer},
        "spec": {"serviceName": service_name},
    }
    cluster.kubectl_run("apply", "-f", "-", input=json.dumps(endpoint))
    wait_for(
        "the endpoint's allocation",
        lambda: all(allocation(get(cluster, "endpoints.vpcep.io", consumer, "db")).values()),
        timeout=60,
        logs=logs,
    )
    return provider, consumer


def allocation(endpoint: dict[str, Any]) -> dict[str, Any]:
    """What a tenant's endpoint holds from the operator: its marker id, node IP, gateway ports, DNS name."""
    found = endpoint.get("status") or {}
    return {key: found.get(key) for key in ("markerId", "nodeIP", "gatewayPorts", "dnsName")}


def refusal_cause(stderr: str) -> str:
    """Why the API server refused a valid write during a switch of operators."""
    if "no such host" in stderr:
        return "stand-in routing window"
    if "connection refused" in stderr or "is starting" in stderr:
        return "no operator serving (Recreate)"
    return f"other: {stderr.strip()[:300]}"


class SteadyWrites:
    """A tenant's stream of valid vpcep.io writes, a new Whitelist of its service `db` every 0.2 s or so
    (the one before deleted), each outcome kept with its time (None when it passed, else the API server's
    message)."""

    def __init__(self, cluster: Any, provider: str, consumer: str):
        self.cluster, self.provider, self.consumer = cluster, provider, consumer
        self.outcomes: list[tuple[float, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, daemon=True)

    def _write(self) -> None:
        for n in range(100_000):
            if self._stop.is_set():
                return
            body = {
                "apiVersion": "vpcep.io/v1alpha1",
                "kind": "Whitelist",
                "metadata": {"name": f"w{n}", "namespace": self.provider},
                "spec": {"endpointService": "db", "accounts": [f"iam:domain::{self.consumer}"]},
            }
            proc = self.cluster.kubectl_run("create", "-f", "-", input=json.dumps(body), check=False)
            self.outcomes.append((time.monotonic(), None if proc.returncode == 0 else proc.stderr))
            # The one before goes: the account stays far below its Whitelist quota (R49)
            self.cluster.kubectl_run(
                "delete", "whitelist", f"w{n - 1}", "-n", self.provider, "--wait=false", check=False
            )
            time.sleep(0.2)

    def start(self) -> SteadyWrites:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def refused(self) -> Counter[str]:
        return Counter(refusal_cause(err) for _t, err in self.outcomes if err is not None)

    def refused_after(self, moment: float) -> list[str]:
        return [err for t, err in self.outcomes if t > moment and err is not None]
