"""`helm upgrade` of a running release while a tenant writes (issue 18 deliverable 3, the figures that run
here): a changed configuration restarts the operator (one replica with Recreate: the kubelet stand-in's pods
share one network, see releases.listen_ports; the chart's default is two with RollingUpdate, R50), and every
vpcep.io write during the switch passes through the webhook (failurePolicy Fail). Measured: writes refused
during the switch, seconds until the new operator reconciles, whether the endpoint changed phase or
allocation.

A refused write is expected while no operator serves: one replica with Recreate leaves a gap (issue 11's
highly available operator, R50, is what closes it); the test asserts that every refusal is that gap, never a
webhook denial of a valid write, that writes succeed again once the new operator is ready, and that the
endpoint keeps its phase and allocation. The stand-in routes the webhook to the local pod by patching its
configuration, which Helm's server-side apply would see as a conflict, so it gives it back to the Service just
before `helm upgrade` (the refusals of that window are counted apart: "no such host")."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from releases import allocation, get, install_and_run, listen_ports, new_release, tenant, wait_for

from helm_engine import CHART, helm

pytestmark = pytest.mark.cluster


def _cause(stderr: str) -> str:
    if "no such host" in stderr:
        return "stand-in routing window"
    if "connection refused" in stderr or "is starting" in stderr:
        return "no operator serving (Recreate)"
    return f"other: {stderr.strip()[:300]}"


def test_an_upgrade_that_restarts_the_operator(
    fresh_cluster: Any, loopback_certificate: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    cluster = fresh_cluster
    name, namespace, config = new_release(cluster, "live")
    values = listen_ports()
    with config:
        release = install_and_run(
            cluster, config, name, namespace, values, tmp_path_factory.mktemp("live"), loopback_certificate
        )
        kubelet = release.kubelet
        try:
            provider, consumer = tenant(cluster, kubelet.logs)
            endpoint_before = get(cluster, "endpoints.vpcep.io", consumer, "db")
            outcomes: list[tuple[float, str | None]] = []
            stop = threading.Event()

            def write_steadily() -> None:
                """A tenant's stream of valid writes: a new Whitelist of its service every 0.2 s or so."""
                for n in range(10_000):
                    if stop.is_set():
                        return
                    body = {
                        "apiVersion": "vpcep.io/v1alpha1",
                        "kind": "Whitelist",
                        "metadata": {"name": f"w{n}", "namespace": provider},
                        "spec": {"endpointService": "db", "accounts": [f"iam:domain::{consumer}"]},
                    }
                    proc = cluster.kubectl_run("create", "-f", "-", input=json.dumps(body), check=False)
                    outcomes.append((time.monotonic(), None if proc.returncode == 0 else proc.stderr))
                    time.sleep(0.2)

            writer = threading.Thread(target=write_steadily)
            writer.start()
            time.sleep(3)
            switch = time.monotonic()
            kubelet.unroute_webhooks()
            with helm.Chart.load(CHART) as chart:
                upgraded = config.upgrade(
                    chart,
                    name,
                    values | {"operator": values["operator"] | {"logLevel": "debug"}},
                    timeout=120,
                )
            assert upgraded["revision"] == 2
            (operator,) = kubelet.roll_out(namespace, f"{name}-operator")
            wait_for("the new operator to be ready", lambda: operator.ready, timeout=120, logs=kubelet.logs)
            ready_seconds = time.monotonic() - switch
            time.sleep(5)
            stop.set()
            writer.join()

            refused = Counter(_cause(err) for _t, err in outcomes if err is not None)
            after_ready = [err for t, err in outcomes if t > switch + ready_seconds + 1 and err is not None]
            endpoint_after = get(cluster, "endpoints.vpcep.io", consumer, "db")
            print(
                f"switch: {len(outcomes)} writes, refused {dict(refused)}; new operator ready "
                f"{ready_seconds:.1f} s after the upgrade began; endpoint phase "
                f"{endpoint_before['status']['phase']} -> {endpoint_after['status']['phase']}"
            )
            assert not [cause for cause in refused if cause.startswith("other")], refused
            assert after_ready == []
            assert endpoint_after["status"]["phase"] == endpoint_before["status"]["phase"]
            assert allocation(endpoint_after) == allocation(endpoint_before)
            assert "--verbose" in operator.argv[-1]  # the new template runs
        finally:
            kubelet.stop()
