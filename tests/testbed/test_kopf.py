"""kopf, the operator's framework, works against the testbed: it watches a custom resource, patches its
status through /status, adopts a child (collected with its owner) and posts an Event."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .conftest import wait_for

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.cluster

OPERATOR = textwrap.dedent(
    """
    import kopf
    import kubernetes

    @kopf.on.startup()
    def configure(settings: kopf.OperatorSettings, **_):
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="vpcep.io")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="vpcep.io")
        settings.posting.level = 0

    @kopf.on.create("testbed.vpcep.io", "v1", "widgets")
    def create(spec, name, namespace, body, patch, **_):
        child = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-child"},
                 "data": {"size": str(spec["size"])}}
        kopf.adopt(child)
        kubernetes.client.CoreV1Api().create_namespaced_config_map(namespace, child)
        kopf.info(body, reason="ChildCreated", message=f"{name}-child holds the size")
        patch.status["phase"] = "Ready"
    """
)


def test_kopf_handler_patches_status_adopts_a_child_and_posts_an_event(
    cluster: Cluster, widget_crd: str, namespace: str, tmp_path: Path
) -> None:
    operator = tmp_path / "operator.py"
    operator.write_text(OPERATOR)
    log = (tmp_path / "kopf.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", namespace, str(operator)],
        env=dict(os.environ, KUBECONFIG=str(cluster.kubeconfig)),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        widget = {
            "apiVersion": "testbed.vpcep.io/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": namespace},
            "spec": {"size": 4},
        }
        cluster.kubectl_run("apply", "-f", "-", input=json.dumps(widget))

        def phase() -> str:
            return cluster.kubectl_run(
                "get", "widget", "w", "-n", namespace, "-o", "jsonpath={.status.phase}"
            ).stdout

        wait_for(
            lambda: phase() == "Ready", timeout=30, what=f"kopf to mark the widget Ready (log: {log.name})"
        )
        child = json.loads(
            cluster.kubectl_run("get", "configmap", "w-child", "-n", namespace, "-o", "json").stdout
        )
        assert child["data"] == {"size": "4"}
        assert child["metadata"]["ownerReferences"][0]["kind"] == "Widget"
        events = cluster.kubectl_run(
            "get", "events", "-n", namespace, "--field-selector", "reason=ChildCreated", "-o", "name"
        ).stdout
        assert events.strip()

        cluster.kubectl_run("delete", "widget", "w", "-n", namespace)
        wait_for(
            lambda: (
                cluster.kubectl_run("get", "configmap", "w-child", "-n", namespace, check=False).returncode
                != 0
            ),
            what="the adopted ConfigMap to be collected",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
