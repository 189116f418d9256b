"""R31: the NetworkPolicy the operator writes in the provider namespace admits exactly the gateway pods, to
exactly the backend's serverPorts (as the backend pods see them: a Service's targetPorts, a Pod's own ports),
and nothing is written when the cluster operator turns it off (Helm `networkPolicy.enabled: false`, config
`networkPolicy: false`).

Two operators on the same API server, each scoped to its own provider namespace (--watch-namespace): one with
the default config and its own gateway pod labels, one with the policy switched off.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from integration.conftest import delete_namespaces, start_operator
from integration.helpers import Cluster, OperatorProcess, phase_is, pod_running_at, wait_for
from vpcep.builders.provider_policy import provider_policy_name

pytestmark = pytest.mark.cluster
PID = os.getpid()
POLICY_ON, POLICY_OFF = f"r31-on-{PID}", f"r31-off-{PID}"
GATEWAY_LABELS = {"app.kubernetes.io/name": "vpcep-gateway", "vpcep.io/gateway-set": f"r31-{PID}"}

BACKEND_SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: db, namespace: NAMESPACE}
spec:
  selector: {app: db, tier: backend}
  ports:
    - {name: sql, port: 5432, targetPort: 15432}
    - {name: metrics, port: 9090, targetPort: metrics}
    - {name: admin, port: 7000, targetPort: 7000}
---
apiVersion: vpcep.io/v1alpha1
kind: EndpointService
metadata: {name: db, namespace: NAMESPACE}
spec:
  backend: {kind: Service, name: db}
  ports:
    - {protocol: TCP, serverPort: 5432, clientPort: 5432}
    - {protocol: TCP, serverPort: 9090, clientPort: 9090}
"""

BACKEND_POD = """
apiVersion: v1
kind: Pod
metadata: {name: cache, namespace: NAMESPACE, labels: {app: cache, role: primary}}
spec:
  containers: [{name: server, image: example.invalid/cache}]
---
apiVersion: vpcep.io/v1alpha1
kind: EndpointService
metadata: {name: cache, namespace: NAMESPACE}
spec:
  backend: {kind: Pod, name: cache}
  ports:
    - {protocol: TCP, serverPort: 6379, clientPort: 6379}
    - {protocol: TCP, serverPort: 6380, clientPort: 16380}
"""


def _scoped_operator(kube: Cluster, namespace: str, served: str, config: dict[str, Any]) -> OperatorProcess:
    kube.namespace(served)
    return start_operator(kube, namespace, "--watch-namespace", served, config=config)


@pytest.fixture(scope="module")
def operators(kube: Cluster, operator_namespace: str) -> Iterator[dict[str, OperatorProcess]]:
    started: dict[str, OperatorProcess] = {}
    try:
        started[POLICY_ON] = _scoped_operator(
            kube, operator_namespace, POLICY_ON, {"gatewayPodLabels": GATEWAY_LABELS}
        )
        started[POLICY_OFF] = _scoped_operator(
            kube, f"{operator_namespace}-off", POLICY_OFF, {"networkPolicy": False}
        )
        yield started
        delete_namespaces(kube, POLICY_ON, POLICY_OFF, *(p.namespace for p in started.values()))
    finally:
        for process in started.values():
            process.stop()


def publish(kube: Cluster, namespace: str) -> None:
    """Both backends and their EndpointServices, Available: the operator writes the policy (when on) before
    it writes Available, so from then on what is there is what it wrote."""
    kube.apply_text(BACKEND_SERVICE.replace("NAMESPACE", namespace))
    kube.apply_text(BACKEND_POD.replace("NAMESPACE", namespace))
    pod_running_at(kube, namespace, "cache", "10.244.3.4")
    for name in ("db", "cache"):
        wait_for(f"{namespace}/{name} Available", phase_is(kube, "vpces", namespace, name, "Available"))


def admitted_from(operator_namespace: str) -> list[dict[str, Any]]:
    return [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": operator_namespace}},
            "podSelector": {"matchLabels": GATEWAY_LABELS},
        }
    ]


def test_the_policy_admits_the_gateway_pods_to_the_backends_target_ports_R31(
    kube: Cluster, operators: dict[str, OperatorProcess]
) -> None:
    publish(kube, POLICY_ON)
    operator_namespace = operators[POLICY_ON].namespace
    expected = {
        # A Service backend: its selector, and the targetPorts behind the serverPorts (a named one stays a
        # name: the pods resolve it). Port 7000 of the Service is not published and is not admitted.
        "db": ({"app": "db", "tier": "backend"}, [15432, "metrics"]),
        # A Pod backend: its labels, the serverPorts as they are.
        "cache": ({"app": "cache", "role": "primary"}, [6379, 6380]),
    }
    for service, (selector, ports) in expected.items():
        policy = kube.get("networkpolicy", POLICY_ON, provider_policy_name(service))
        assert policy is not None, f"no NetworkPolicy for {service}"
        assert policy["spec"]["podSelector"] == {"matchLabels": selector}, yaml.safe_dump(policy["spec"])
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        (rule,) = policy["spec"]["ingress"]
        assert rule["from"] == admitted_from(operator_namespace), "only the gateway pods, only from there"
        assert rule["ports"] == [{"protocol": "TCP", "port": port} for port in ports]
        owner = policy["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"]) == ("EndpointService", service), "it goes with the service"


def test_no_policy_is_written_when_switched_off_R31(
    kube: Cluster, operators: dict[str, OperatorProcess]
) -> None:
    publish(kube, POLICY_OFF)
    assert kube.get("networkpolicies", POLICY_OFF)["items"] == []
