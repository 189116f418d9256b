"""Namespace scope (SPEC §5): `vpcep-operator --watch-namespace A --watch-namespace B` serves A, B and its own
namespace only; and backends are noticed by metadata-only watches in those namespaces (R1).
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
from collections.abc import Iterator

import pytest

from integration.conftest import delete_namespaces, start_operator
from integration.helpers import Cluster, OperatorProcess, StandInGateway, phase_is, pod_running_at, wait_for

pytestmark = pytest.mark.cluster
PID = os.getpid()
SERVED_A, SERVED_B, OUTSIDE = f"scope-a-{PID}", f"scope-b-{PID}", f"scope-c-{PID}"
ACCOUNT = f"scope-{PID}"  # one account: permission (R12) never stands in the way here
WEBHOOK = f"vpcep-scope-{PID}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def operator(
    kube: Cluster, operator_namespace: str, loopback_certificate: tuple[pathlib.Path, pathlib.Path]
) -> Iterator[OperatorProcess]:
    """This module's operator serves A and B only (overrides the cluster-wide one of conftest), with its
    admission webhook on."""
    for namespace in (SERVED_A, SERVED_B, OUTSIDE):
        kube.namespace(namespace, ACCOUNT)
    cert, key = loopback_certificate
    process = start_operator(
        kube,
        operator_namespace,
        "--watch-namespace",
        SERVED_A,
        "--watch-namespace",
        SERVED_B,
        "--webhook-managed",
        WEBHOOK,
        "--webhook-address",
        "127.0.0.1",
        "--webhook-port",
        str(_free_port()),
        "--webhook-cert",
        str(cert),
        "--webhook-key",
        str(key),
        "--webhook-ca",
        str(cert),
    )
    try:
        wait_for("the managed webhook", lambda: kube.get("validatingwebhookconfiguration", None, WEBHOOK))
        yield process
        if process.alive():
            delete_namespaces(kube, SERVED_A, SERVED_B, operator_namespace)
    finally:
        process.stop()
        kube.kubectl("delete", "validatingwebhookconfiguration", WEBHOOK, "--ignore-not-found", check=False)
        delete_namespaces(kube, OUTSIDE)  # nothing of the operator's lives there: no finalizer to wait for


@pytest.fixture(scope="module")
def published(kube: Cluster, operator: OperatorProcess, gateway: StandInGateway) -> str:
    """An Available EndpointService in B (backend Service present); returns its published name."""
    kube.apply("backend-service.yaml", name="orders", namespace=SERVED_B)
    kube.apply("endpoint-service.yaml", name="orders", namespace=SERVED_B, backend="orders", approval="false")
    status = wait_for("orders Available", phase_is(kube, "vpces", SERVED_B, "orders", "Available"))
    return str(status["serviceName"])


def test_an_endpoint_in_one_served_namespace_reaches_a_service_in_another(
    kube: Cluster, published: str
) -> None:
    """§5 scope {A, B}: A's Endpoint to B's service is served like in a cluster-wide run (R18)."""
    kube.apply("endpoint.yaml", name="orders", namespace=SERVED_A, service_name=published)
    status = wait_for("the Endpoint in A Accepted", phase_is(kube, "vpce", SERVED_A, "orders", "Accepted"))
    assert status["nodeIP"] and status["dnsName"]
    assert kube.get("service", SERVED_A, "vpce-orders") is not None


def test_an_endpoint_outside_the_scope_gets_nothing_from_this_operator(kube: Cluster, published: str) -> None:
    """An Endpoint in C (not served) targeting B's service is simply not served: no status, no finalizer,
    no node-IP Service, no EndpointConnection in B (docs/operator.md)."""
    kube.apply("endpoint.yaml", name="stray", namespace=OUTSIDE, service_name=published)
    # Created after the stray one, and Accepted: an operator that saw the stray one at all has seen it first
    # (one watch stream per kind, in resourceVersion order) and has had the time it took to serve this one.
    kube.apply("endpoint.yaml", name="after-stray", namespace=SERVED_A, service_name=published)
    wait_for("after-stray Accepted", phase_is(kube, "vpce", SERVED_A, "after-stray", "Accepted"))
    stray = kube.get("vpce", OUTSIDE, "stray")
    assert stray.get("status") in (None, {}), stray.get("status")
    assert "vpcep.io/finalizer" not in (stray["metadata"].get("finalizers") or [])
    assert kube.get("service", OUTSIDE, "vpce-stray") is None
    connections = kube.get("vpcec", SERVED_B)["items"]
    assert stray["metadata"]["uid"] not in json.dumps(connections)
    assert kube.get("configmap", OUTSIDE, "vpcep-quota") is None


def test_a_pod_backend_appearing_later_recovers_its_service(kube: Cluster, published: str) -> None:
    """R1 with a Pod backend: Failed/BackendNotFound until the Pod exists and has an IP, then Available, by
    the watch's event alone (the cache re-list is minutes away)."""
    kube.apply(
        "pod-endpoint-service.yaml", name="worker", namespace=SERVED_B, backend="worker", server_port="9000"
    )
    failed = wait_for("worker Failed", phase_is(kube, "vpces", SERVED_B, "worker", "Failed"))
    assert failed["reason"] == "BackendNotFound"

    kube.apply("backend-pod.yaml", name="worker", namespace=SERVED_B)
    pod_running_at(kube, SERVED_B, "worker", "10.244.1.7")
    wait_for("worker Available", phase_is(kube, "vpces", SERVED_B, "worker", "Available"), timeout=20)

    kube.delete("pod", SERVED_B, "worker", wait=True)
    gone = wait_for("worker Failed again", phase_is(kube, "vpces", SERVED_B, "worker", "Failed"), timeout=20)
    assert gone["reason"] == "BackendNotFound"


def test_the_webhook_judges_only_served_namespaces(kube: Cluster, published: str) -> None:
    """R15 at admission in A; in C the scoped operator has no say (kopf allows what no handler claims)."""
    wrong = "local-1.no-such-service.00000000-0000-0000-0000-000000000000"
    refused = kube.apply("endpoint.yaml", check=False, name="wrong", namespace=SERVED_A, service_name=wrong)
    assert refused.returncode != 0 and "denied the request" in refused.stderr, refused.stderr
    admitted = kube.apply("endpoint.yaml", check=False, name="wrong", namespace=OUTSIDE, service_name=wrong)
    assert admitted.returncode == 0, admitted.stderr
