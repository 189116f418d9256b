"""Fixtures of the testbed's own tests: the test CRD and a namespace per test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

if TYPE_CHECKING:
    from conftest import Cluster

T = TypeVar("T")

WIDGET_CRD = Path(__file__).with_name("widget_crd.yaml")


def wait_for(
    condition: Callable[[], T], timeout: float = 15.0, interval: float = 0.1, what: str = "condition"
) -> T:
    """Polls ``condition`` until it returns a truthy value; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def widget_crd(cluster: Cluster) -> str:
    cluster.kubectl_run("apply", "-f", str(WIDGET_CRD))
    cluster.kubectl_run(
        "wait", "--for=condition=Established", "crd/widgets.testbed.vpcep.io", "--timeout=30s"
    )
    # Established means served; discovery follows within a moment.
    wait_for(
        lambda: cluster.kubectl_run("get", "widgets", "-A", check=False).returncode == 0,
        what="widgets in discovery",
    )
    return "widgets.testbed.vpcep.io"


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = cluster.create_namespace("tb")
    yield name
    cluster.kubectl_run("delete", "namespace", name, "--wait=false", check=False)
