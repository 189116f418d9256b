"""A gateway that cannot apply any configuration says why in its status, and the operator quotes it to the
endpoints that wait on it (R30, R39: a reason and a message a person can act on, not only an agent log line).

The real operator and a real gateway agent (ConfigMap route source, real `haproxy -c`) whose HAProxy setting
`--threads 100000` is refused for every configuration."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest

from integration.conftest import delete_namespaces
from integration.helpers import REPO, Cluster, OperatorProcess, phase_is, wait_for

pytestmark = pytest.mark.cluster
PID = os.getpid()
PROVIDER, CONSUMER = f"gwerr-prov-{PID}", f"gwerr-cons-{PID}"
GATEWAY = f"gw-broken-{PID}"


@pytest.fixture(scope="module")
def broken_gateway(kube: Cluster, operator: OperatorProcess) -> Iterator[str]:
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed (hack/setup installs it)")
    runtime = tempfile.mkdtemp(prefix=f"vpcep-gwerr-{PID}-")
    log = open(os.path.join(runtime, "agent.log"), "wb")  # noqa: SIM115 - closed in teardown
    agent = subprocess.Popen(
        [
            sys.executable, "-m", "vpcep.gateway.agent",
            "--name", GATEWAY, "--namespace", operator.namespace,
            "--address", "127.0.0.1", "--bind-address", "127.0.0.1", "--runtime-dir", runtime,
            "--threads", "100000", "--heartbeat-interval", "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**kube.env, "PYTHONPATH": str(REPO / "operator")},
    )  # fmt: skip
    try:
        wait_for(
            "the gateway's first report",
            lambda: (
                kube.get("configmap", operator.namespace, f"vpcep-gateway-{GATEWAY}")
                or agent.poll() is not None
            ),
            timeout=30,
        )
        assert agent.poll() is None, pathlib.Path(runtime, "agent.log").read_text()
        yield runtime
    finally:
        agent.terminate()
        try:
            agent.wait(timeout=15)
        except subprocess.TimeoutExpired:
            agent.kill()
        log.close()
        kube.delete("configmap", operator.namespace, f"vpcep-gateway-{GATEWAY}")
        delete_namespaces(kube, PROVIDER, CONSUMER)
        shutil.rmtree(runtime, ignore_errors=True)


def test_an_endpoint_waiting_on_a_broken_gateway_names_it_and_its_error(
    kube: Cluster, operator: OperatorProcess, broken_gateway: str
) -> None:
    kube.namespace(PROVIDER, f"gwerr-{PID}")
    kube.namespace(CONSUMER, f"gwerr-{PID}")
    kube.apply("backend-service.yaml", name="web-backend", namespace=PROVIDER)
    kube.apply(
        "endpoint-service.yaml", name="web", namespace=PROVIDER, backend="web-backend", approval="false"
    )
    service = wait_for("web Available", phase_is(kube, "vpces", PROVIDER, "web", "Available"))
    kube.apply("endpoint.yaml", name="web", namespace=CONSUMER, service_name=service["serviceName"])

    status = wait_for(
        "the endpoint to quote the gateway's error",
        lambda: (s := kube.status("vpce", CONSUMER, "web")) and GATEWAY in (s.get("message") or "") and s,
    )
    assert (status["phase"], status["reason"]) == ("Creating", "RoutePending")
    assert f"gateway {GATEWAY}: gateway configuration is invalid" in status["message"]
    assert "nbthread" in status["message"], "HAProxy's own words reach the user"
