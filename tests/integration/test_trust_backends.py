"""R45 as a hostile provider tries it: a backend the gateway would dial but the provider does not own is
refused with a reason naming the fix -- an ExternalName Service, a selector-less Service (unless the cluster
admin opted the namespace in), a Pod that is not Running or uses hostNetwork -- and a Pod backend that
finishes stops being routed to at once (its IP may be someone else's next); the consumer keeps its node IP.

The operator runs as a real process (webhook off) with `selectorlessBackendNamespaces` set; gateway status
comes from the stand-in."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from integration.conftest import delete_namespaces, start_operator
from integration.helpers import Cluster, OperatorProcess, StandInGateway, phase_is, wait_for

pytestmark = pytest.mark.cluster
PID = os.getpid()
PROVIDER = f"bk-prov-{PID}"
OPTED_IN = f"bk-legacy-{PID}"  # the cluster admin vouches for hand-written Endpoints here
CONSUMER = f"bk-cons-{PID}"
ACCOUNT = f"bk-{PID}"


@pytest.fixture(scope="module")
def operator(kube: Cluster, operator_namespace: str) -> Iterator[OperatorProcess]:
    process = start_operator(kube, operator_namespace, config={"selectorlessBackendNamespaces": [OPTED_IN]})
    try:
        yield process
        if process.alive():
            delete_namespaces(kube, operator_namespace)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def scene(kube: Cluster, operator: OperatorProcess, gateway: StandInGateway) -> Iterator[None]:
    for namespace in (PROVIDER, OPTED_IN, CONSUMER):
        kube.namespace(namespace, ACCOUNT)
    yield
    delete_namespaces(kube, PROVIDER, OPTED_IN, CONSUMER)


def apply(kube: Cluster, *objects: dict[str, Any]) -> None:
    kube.apply_text(yaml.safe_dump_all(list(objects)))


def service(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    body = {"ports": [{"name": "http", "port": 8080, "targetPort": 8080}], **spec}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def publish(kube: Cluster, name: str, namespace: str, kind: str) -> None:
    apply(
        kube,
        {
            "apiVersion": "vpcep.io/v1alpha1",
            "kind": "EndpointService",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "backend": {"kind": kind, "name": name},
                "ports": [{"protocol": "TCP", "serverPort": 8080, "clientPort": 80}],
            },
        },
    )


def service_phase(kube: Cluster, namespace: str, name: str, phase: str, reason: str | None = None) -> Any:
    def check() -> Any:
        status = kube.status("vpces", namespace, name)
        return status if status.get("phase") == phase and reason in (None, status.get("reason")) else None

    return wait_for(f"EndpointService {namespace}/{name} {phase} {reason or ''}", check)


def pod_status(kube: Cluster, namespace: str, name: str, **status: Any) -> None:
    kube.kubectl(
        "patch", "pod", name, "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


def pod(name: str, namespace: str, host_network: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "hostNetwork": host_network,
            "containers": [{"name": "server", "image": "example.invalid/echo"}],
        },
    }


def test_an_external_name_service_is_refused_naming_the_fix_R45(kube: Cluster, scene: None) -> None:
    apply(kube, service("ext", PROVIDER, type="ExternalName", externalName="kubernetes.default.svc"))
    publish(kube, "ext", PROVIDER, "Service")
    status = service_phase(kube, PROVIDER, "ext", "Failed", "BackendExternalName")
    assert "Service with a selector" in status["message"] and "(see docs/rules.md#r45)" in status["message"]
    found = {c["type"]: c for c in status["conditions"]}["BackendFound"]
    assert (found["status"], found["reason"]) == ("False", "BackendExternalName")
    events = kube.get("events", PROVIDER)["items"]
    assert any(e["reason"] == "BackendExternalName" and e["type"] == "Warning" for e in events)


def test_a_selectorless_service_is_refused_unless_the_namespace_is_opted_in_R45(
    kube: Cluster, scene: None
) -> None:
    apply(kube, service("manual", PROVIDER), service("manual", OPTED_IN))
    publish(kube, "manual", PROVIDER, "Service")
    publish(kube, "manual", OPTED_IN, "Service")
    status = service_phase(kube, PROVIDER, "manual", "Failed", "BackendWithoutSelector")
    assert "selectorlessBackendNamespaces" in status["message"]
    service_phase(kube, OPTED_IN, "manual", "Available")
    # Giving it a selector is the fix the message names: it recovers by itself.
    kube.kubectl(
        "patch",
        "service",
        "manual",
        "-n",
        PROVIDER,
        "--type=merge",
        "-p",
        '{"spec":{"selector":{"app":"m"}}}',
    )
    service_phase(kube, PROVIDER, "manual", "Available")


def test_a_host_network_pod_is_refused_R45(kube: Cluster, scene: None) -> None:
    apply(kube, pod("nodey", PROVIDER, host_network=True))
    pod_status(kube, PROVIDER, "nodey", phase="Running", podIP="192.0.2.10", hostIP="192.0.2.10")
    publish(kube, "nodey", PROVIDER, "Pod")
    status = service_phase(kube, PROVIDER, "nodey", "Failed", "BackendHostNetwork")
    assert "192.0.2.10" not in json.dumps(status)


def test_a_pod_backend_serves_only_while_it_runs_R45(
    kube: Cluster, scene: None, operator: OperatorProcess
) -> None:
    apply(kube, pod("job", PROVIDER))
    publish(kube, "job", PROVIDER, "Pod")
    service_phase(kube, PROVIDER, "job", "Failed", "BackendPodNotRunning")  # Pending: no address of its own

    pod_status(kube, PROVIDER, "job", phase="Running", podIP="10.244.7.7")
    available = service_phase(kube, PROVIDER, "job", "Available")
    kube.apply("endpoint.yaml", name="job", namespace=CONSUMER, service_name=available["serviceName"])
    accepted = wait_for("Endpoint Accepted", phase_is(kube, "vpce", CONSUMER, "job", "Accepted"))
    route_name = f"vpcep-route-{accepted['endpointId']}"
    route = kube.get("configmap", operator.namespace, route_name)
    assert "10.244.7.7" in route["data"]["route.json"]

    # It finishes: its IP may go to another tenant's pod next, so no gateway may dial it any more.
    pod_status(kube, PROVIDER, "job", phase="Succeeded")
    service_phase(kube, PROVIDER, "job", "Failed", "BackendPodNotRunning")
    wait_for("the route to go", lambda: kube.get("configmap", operator.namespace, route_name) is None)
    waiting = kube.status("vpce", CONSUMER, "job")
    assert waiting["phase"] == "Creating" and "BackendPodNotRunning" in waiting["message"]
    assert waiting["nodeIP"] == accepted["nodeIP"]  # the consumer's node IP and DNS name stay
    assert "10.244.7.7" not in json.dumps(waiting)
