"""End-to-end: the chart installed by Helm's own engine on a control plane of its own, its pods run by the
kubelet stand-in (kubelet.py). A Helm release owns cluster-wide objects (CRDs, ClusterRoles, the webhook
configuration), so these tests get a fresh testbed as a user gets a fresh cluster, not the session's one."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fresh_cluster(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if cluster.kind != "testbed":
        yield cluster  # an existing cluster (kind): the caller chose it
        return
    instance = tmp_path_factory.mktemp("e2e-testbed")
    # Started exactly as the suite starts its own, by tests/conftest.py's function (found through the module
    # that defines the cluster's class: every conftest.py is imported under the one name `conftest`).
    start_testbed = type(cluster).kubectl_run.__globals__["_start_testbed"]
    started = start_testbed(instance)
    try:
        yield started
    finally:
        subprocess.run(
            [str(REPO / "hack" / "testbed"), "down", "--purge"],
            env=dict(os.environ, VPCEP_TESTBED_DIR=str(instance)),
            capture_output=True,
            timeout=120,
        )
