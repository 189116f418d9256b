"""Upgrade from the previous release and roll back (issue 18 deliverable 3, the part that runs here).

The previous release is rebuilt from the commit CHANGELOG.md records for it: a `git worktree` of this clone's
history, its package installed into a virtualenv of its own (previous_release.py; no network fetch of the
code). Its chart is installed by Helm; tenants store
objects under its CRDs (the examples/ of that commit); `helm upgrade` to this tree's chart must keep every
stored object valid under the new CRDs (each one is re-submitted with a server-side dry run: a CRD change
that would strand stored objects fails here), then this tree's operator, run by the kubelet stand-in, must
reconcile them; `helm rollback` to the previous revision must succeed and keep them valid under the old CRDs.

The previous release's operator is not run in this module: its stored objects are the examples, checked
for validity under each revision's CRDs. Its operator runs from its virtualenv, with a tenant's live traffic
through a real gateway, in test_helm_traffic.py. The release is installed with
`webhook.failurePolicy=Ignore`, as 0.1.0's operator cannot start under its own webhook (R51, fixed in 0.2.0).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import previous_release
import pytest
import yaml
from kubelet import Image, Kubelet
from previous_release import PreviousRelease
from releases import get, listen_ports, new_release, wait_for

from helm_engine import CHART, helm

pytestmark = pytest.mark.cluster

EXAMPLE_NAME = (
    "local-1.orders.6f0e4c1a-3b7d-4f27-9a51-0c3d2e8b9f10"  # the placeholder SERVICE_NAME stands for
)
TENANT_KINDS = ("endpointservices", "endpoints.vpcep.io", "whitelists")


@pytest.fixture(scope="module")
def previous() -> PreviousRelease:
    """The previous release, built from the clone's history into its own virtualenv (previous_release.py)."""
    return previous_release.build()


def _example_objects(tree: Path) -> list[dict[str, Any]]:
    objects = []
    for path in sorted((tree / "examples").glob("*/*.yaml")):
        text = path.read_text().replace("SERVICE_NAME", EXAMPLE_NAME)
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


def _stored(cluster: Any) -> list[dict[str, Any]]:
    return [obj for kind in TENANT_KINDS for obj in get(cluster, kind, None).get("items", []) if obj]


def _still_valid(cluster: Any, objects: list[dict[str, Any]]) -> list[str]:
    """Each stored object re-submitted as it is, server-side dry run: what the CRDs now refuse. The API server
    validates against the CRD's schema and rules before it calls validating webhooks, so a call that reaches
    the webhook (unanswered while no operator runs) has passed the CRDs."""
    refused = []
    for obj in objects:
        body = {k: v for k, v in obj.items() if k != "status"}
        proc = cluster.kubectl_run(
            "replace", "--dry-run=server", "-f", "-", input=json.dumps(body), check=False
        )
        if proc.returncode != 0 and "failed calling webhook" not in proc.stderr:
            refused.append(
                f"{obj['kind']} {obj['metadata']['namespace']}/{obj['metadata']['name']}: {proc.stderr}"
            )
    return refused


@pytest.fixture(scope="module")
def upgraded(
    fresh_cluster: Any, previous: PreviousRelease, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, Any, str, dict[str, Any]]]:
    cluster = fresh_cluster
    _name, namespace, config = new_release(cluster, "vpcep")  # the release is named vpcep, as 0.1.0 needs
    ports = listen_ports()
    old_values = {
        "operator": {"healthPort": ports["operator"]["healthPort"]},
        "webhook": {"port": ports["webhook"]["port"], "failurePolicy": "Ignore"},
    }
    with config:
        with helm.Chart.load(previous.chart) as chart:
            config.install(
                chart, "vpcep", old_values, namespace=namespace, create_namespace=True, timeout=120
            )
        examples = _example_objects(previous.tree)
        for namespace_object in [o for o in examples if o["kind"] == "Namespace"]:
            cluster.kubectl_run("apply", "-f", "-", input=json.dumps(namespace_object))
        for obj in [o for o in examples if o["kind"] != "Namespace"]:
            cluster.kubectl_run("apply", "-f", "-", input=json.dumps(obj))
        yield cluster, config, namespace, ports


def test_upgrade_keeps_stored_objects_valid_and_the_new_operator_reconciles_them(
    upgraded: Any, loopback_certificate: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    cluster, config, namespace, ports = upgraded
    stored = _stored(cluster)
    assert {o["kind"] for o in stored} >= {"EndpointService", "Endpoint", "Whitelist"}, stored
    started = time.monotonic()
    with helm.Chart.load(CHART) as chart:
        result = config.upgrade(chart, "vpcep", ports, namespace=namespace, timeout=120)
    upgrade_seconds = time.monotonic() - started
    assert result["status"] == "deployed" and result["revision"] == 2
    assert _still_valid(cluster, _stored(cluster)) == []
    assert [o["metadata"]["uid"] for o in _stored(cluster)] == [o["metadata"]["uid"] for o in stored]

    kubelet = Kubelet(cluster, tmp_path_factory.mktemp("upgraded"), Image(), loopback_certificate)
    try:
        started = time.monotonic()
        kubelet.run_deployment(namespace, "vpcep-operator")

        def reconciled() -> bool:
            objects = _stored(cluster)
            return bool(objects) and all(
                (o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"]
                for o in objects
            )

        wait_for("every stored object reconciled", reconciled, timeout=120, logs=kubelet.logs)
        print(
            f"upgrade: helm upgrade {upgrade_seconds:.1f} s; new operator reconciled all after "
            f"{time.monotonic() - started:.1f} s"
        )
    finally:
        kubelet.stop()


def test_rollback_to_the_previous_revision_keeps_stored_objects_valid(upgraded: Any) -> None:
    cluster, config, _namespace, _ports = upgraded
    before = _stored(cluster)
    config.rollback("vpcep", version=1, timeout=120)
    (release,) = [r for r in config.list() if r["name"] == "vpcep"]
    assert release["revision"] == 3 and release["status"] == "deployed"
    assert _still_valid(cluster, _stored(cluster)) == []
    assert {o["metadata"]["uid"] for o in _stored(cluster)} == {o["metadata"]["uid"] for o in before}
