"""Helpers of the end-to-end tests: a Helm release installed with Helm's own engine, its operator pod run by
the kubelet stand-in, and waiting on what a user would watch."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def listen_ports() -> dict[str, Any]:
    """The values that differ from the defaults: the listen ports, as the stand-in's pods share this
    machine's network (kubelet.py)."""
    health, readiness, webhook = free_ports(3)
    return {"operator": {"healthPort": health, "readinessPort": readiness}, "webhook": {"port": webhook}}


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
