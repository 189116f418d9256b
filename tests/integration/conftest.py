"""Fixtures for operator integration tests: CRDs, one operator process per module, namespaces, a
stand-in gateway.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from integration.helpers import REPO, Cluster, OperatorProcess, StandInGateway, wait_for

pytestmark = pytest.mark.cluster


def _kubeconfig(request: pytest.FixtureRequest) -> str:
    """The test control plane from tests/conftest.py (hack/testbed), or VPCEP_TEST_KUBECONFIG if set."""
    explicit = os.environ.get("VPCEP_TEST_KUBECONFIG")
    if explicit:
        return explicit
    testbed = request.getfixturevalue("testbed")
    return str(getattr(testbed, "kubeconfig", testbed))


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Cluster:
    cluster = Cluster(_kubeconfig(request))
    cluster.kubectl("apply", "-f", str(REPO / "crds"))
    for crd in ("endpointservices", "endpoints", "whitelists", "endpointconnections"):
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}.vpcep.io", "--timeout=30s")
    return cluster


def start_operator(
    cluster: Cluster, namespace: str, *extra: str, config: dict | None = None
) -> OperatorProcess:
    operator = OperatorProcess(cluster, namespace, list(extra), config)
    operator.start()
    wait_for(
        "the operator to publish its cloud services",
        lambda: cluster.get("endpointservices", namespace, "dns") is not None or not operator.alive(),
        timeout=30,
    )
    assert operator.alive(), operator.log()
    return operator


def delete_namespaces(cluster: Cluster, *namespaces: str) -> None:
    """Delete test namespaces while the operator still runs (it removes its finalizers), then wait."""
    for namespace in namespaces:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)
    for namespace in namespaces:
        wait_for(
            f"namespace {namespace} to go",
            lambda ns=namespace: cluster.get("namespace", None, ns) is None,
            timeout=60,
        )


@pytest.fixture(scope="module")
def operator_namespace(request: pytest.FixtureRequest) -> str:
    module = request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")[:30]
    return f"vpcep-{module}-{os.getpid()}"


@pytest.fixture(scope="module")
def operator(cluster: Cluster, operator_namespace: str) -> Iterator[OperatorProcess]:
    process = start_operator(cluster, operator_namespace)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def gateway(cluster: Cluster, operator: OperatorProcess) -> Iterator[StandInGateway]:
    stand_in = StandInGateway(cluster, operator.namespace, f"stand-in-{os.getpid()}", "10.244.0.10")
    stand_in.start()
    yield stand_in
    stand_in.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, attach the operator's log: the one place that says why a status never came."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        process = item.funcargs.get("operator") if hasattr(item, "funcargs") else None
        if isinstance(process, OperatorProcess):
            report.sections.append(("operator log (tail)", process.log()[-6000:]))
