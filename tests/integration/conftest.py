"""Fixtures for operator integration tests: CRDs, one operator process per module, namespaces, a
stand-in gateway.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from integration.helpers import REPO, Cluster, OperatorProcess, StandInGateway, wait_for

pytestmark = pytest.mark.cluster


def _cluster(request: pytest.FixtureRequest) -> Cluster:
    """VPCEP_TEST_KUBECONFIG if set (with kubectl from PATH), else the test control plane (fixture `cluster`,
    tests/conftest.py) with the suite's kubectl."""
    explicit = os.environ.get("VPCEP_TEST_KUBECONFIG")
    if explicit:
        return Cluster(explicit, shutil.which("kubectl") or "kubectl")
    suite = request.getfixturevalue("cluster")
    return Cluster(str(suite.kubeconfig), suite.kubectl)


@pytest.fixture(scope="session")
def kube(request: pytest.FixtureRequest) -> Cluster:
    """kubectl-driven access to the API, with the CRDs applied."""
    kube = _cluster(request)
    kube.kubectl("apply", "-f", str(REPO / "crds"))
    for crd in ("endpointservices", "endpoints", "whitelists", "endpointconnections"):
        kube.kubectl("wait", "--for=condition=Established", f"crd/{crd}.vpcep.io", "--timeout=30s")
    return kube


def start_operator(kube: Cluster, namespace: str, *extra: str, config: dict | None = None) -> OperatorProcess:
    operator = OperatorProcess(kube, namespace, list(extra), config)
    operator.start()
    try:
        wait_for(  # a cloud service with a status: published, cache primed, work queue running
            "the operator to reconcile its cloud services",
            lambda: kube.status("endpointservices", namespace, "dns").get("phase") or not operator.alive(),
            timeout=30,
        )
        assert operator.alive(), operator.log()
    except BaseException:
        operator.stop()  # a fixture that fails before its yield gets no teardown: never leak the process
        raise
    return operator


def delete_namespaces(kube: Cluster, *namespaces: str) -> None:
    """Delete test namespaces while the operator still runs (it removes its finalizers), then wait."""
    for namespace in namespaces:
        kube.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)
    for namespace in namespaces:
        wait_for(
            f"namespace {namespace} to go",
            lambda ns=namespace: kube.get("namespace", None, ns) is None,
            timeout=60,
        )


@pytest.fixture(scope="module")
def operator_namespace(request: pytest.FixtureRequest) -> str:
    module = request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")[:30]
    return f"vpcep-{module}-{os.getpid()}"


@pytest.fixture(scope="module")
def operator(kube: Cluster, operator_namespace: str) -> Iterator[OperatorProcess]:
    process = start_operator(kube, operator_namespace)
    try:
        yield process
        if process.alive():  # its cloud services carry its finalizer: let it remove them
            delete_namespaces(kube, operator_namespace)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def gateway(kube: Cluster, operator: OperatorProcess) -> Iterator[StandInGateway]:
    stand_in = StandInGateway(kube, operator.namespace, f"stand-in-{os.getpid()}", "10.244.0.10")
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
