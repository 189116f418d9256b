"""A transient start-up error is retried, not turned into a crash loop (issue 18, healthy defaults).

kopf retries a failed start-up activity after 60 s and opens /healthz only once the activities are done.
With a liveness probe alone (10 s delay, 3 x 20 s) the kubelet killed the operator before the retry, every
time. Since R50 the start-up activity makes no API call (the watches, the Lease and the cloud services come
after it, each retrying with its own backoff), so /healthz opens at once and the start-up probe is the
safety net. Here the operator's ClusterRoleBinding is missing for its first seconds (its first API calls are
refused, as when RBAC is applied after the pod starts): the operator must become ready once it is back,
without a restart."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubelet import Image, Kubelet
from releases import listen_ports, new_release, wait_for

from helm_engine import CHART, helm

pytestmark = pytest.mark.cluster

RBAC_MISSING_SECONDS = 10


def test_a_failed_start_up_is_retried_within_the_start_up_probe(
    fresh_cluster: Any, loopback_certificate: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    cluster = fresh_cluster
    name, namespace, config = new_release(cluster, "slow")
    with config:
        with helm.Chart.load(CHART) as chart:
            config.install(
                chart, name, listen_ports(), namespace=namespace, create_namespace=True, timeout=120
            )
        binding = json.loads(
            cluster.kubectl_run("get", "clusterrolebinding", f"{name}-operator", "-o", "json").stdout
        )
        cluster.kubectl_run("delete", "clusterrolebinding", f"{name}-operator")
        restored = {k: v for k, v in binding.items() if k != "status"}
        restored["metadata"] = {k: binding["metadata"][k] for k in ("name", "labels", "annotations")}

        def restore_later() -> None:
            time.sleep(RBAC_MISSING_SECONDS)
            cluster.kubectl_run("create", "-f", "-", input=json.dumps(restored))

        kubelet = Kubelet(cluster, tmp_path_factory.mktemp("slow"), Image(), loopback_certificate)
        restorer = threading.Thread(target=restore_later)
        try:
            started = time.monotonic()
            (operator,) = kubelet.run_deployment(namespace, f"{name}-operator")
            restorer.start()
            wait_for("the operator to be ready", lambda: operator.ready, timeout=180, logs=kubelet.logs)
            ready_after = time.monotonic() - started
            log = operator.log.read_text(errors="replace")
            assert "is forbidden" in log, log[-3000:]  # its first calls were refused
            assert ready_after >= RBAC_MISSING_SECONDS
            assert operator.restarts == 0, kubelet.logs()
            print(f"first calls refused, ready {ready_after:.0f} s after start, without a restart")
        finally:
            restorer.join()
            kubelet.stop()
