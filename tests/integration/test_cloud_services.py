"""System ("cloud") services from the operator config (R37): open to every account; a Gateway-type one
gives the consumer an egress policy instead of a node IP (R38); tenants cannot delete them (R8, in
test_admission)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from integration.conftest import delete_namespaces, start_operator
from integration.helpers import Cluster, OperatorProcess, StandInGateway, phase_is, wait_for

pytestmark = pytest.mark.cluster
PID = os.getpid()
CONSUMER = f"cloud-cons-{PID}"
BACKENDS = f"cloud-backends-{PID}"


@pytest.fixture(scope="module")
def operator(kube: Cluster, operator_namespace: str) -> Iterator[OperatorProcess]:
    config = {
        "cloudServices": [
            {
                "name": "dns",
                "type": "Interface",
                "backend": {"kind": "Service", "name": "kube-dns", "namespace": BACKENDS},
                "ports": [{"serverPort": 53, "clientPort": 53}],
            },
            {
                "name": "storage",
                "type": "Gateway",
                "backend": {"kind": "Service", "name": "storage", "namespace": BACKENDS},
                "ports": [{"serverPort": 443, "clientPort": 443}],
                "egressCIDRs": ["192.0.2.0/24"],
            },
        ]
    }
    kube.namespace(BACKENDS)
    kube.apply("cloud-backend.yaml", name="kube-dns", namespace=BACKENDS, port="53")
    kube.apply("cloud-backend.yaml", name="storage", namespace=BACKENDS, port="443")
    process = start_operator(kube, operator_namespace, config=config)
    try:
        yield process
        delete_namespaces(kube, CONSUMER, BACKENDS, operator_namespace)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def consumer(kube: Cluster, operator: OperatorProcess, gateway: StandInGateway) -> str:
    kube.namespace(CONSUMER, f"anyone-{PID}")
    return CONSUMER


def test_any_account_reaches_the_dns_cloud_service(
    kube: Cluster, operator: OperatorProcess, consumer: str
) -> None:
    dns = wait_for("dns Available", phase_is(kube, "vpces", operator.namespace, "dns", "Available"))
    assert dns["serviceType"] == "Interface"
    kube.apply("cloud-endpoint.yaml", name="dns", namespace=consumer, cloud_service="dns")
    status = wait_for("dns endpoint Accepted", phase_is(kube, "vpce", consumer, "dns", "Accepted"))
    assert status["nodeIP"] and status["dnsName"] == f"vpce-dns.{consumer}.svc.cluster.local"
    assert [p["clientPort"] for p in status["gatewayPorts"]] == [53]


def test_gateway_type_service_opens_egress_instead_of_a_node_ip(
    kube: Cluster, operator: OperatorProcess, consumer: str
) -> None:
    storage = wait_for(
        "storage Available", phase_is(kube, "vpces", operator.namespace, "storage", "Available")
    )
    assert storage["serviceType"] == "Gateway"
    kube.apply("cloud-endpoint.yaml", name="storage", namespace=consumer, cloud_service="storage")
    status = wait_for("storage endpoint Accepted", phase_is(kube, "vpce", consumer, "storage", "Accepted"))
    assert status.get("nodeIP") is None and status["serviceType"] == "Gateway"
    policies = kube.get("networkpolicies", consumer, selector="app.kubernetes.io/managed-by=vpcep-operator")
    assert len(policies["items"]) == 1
    egress = policies["items"][0]["spec"]["egress"][0]
    assert egress["to"] == [{"ipBlock": {"cidr": "192.0.2.0/24"}}]
    assert egress["ports"] == [{"protocol": "TCP", "port": 443}]

    kube.delete("vpce", consumer, "storage", wait=True)
    wait_for(
        "the egress policy to go with the endpoint (R23)",
        lambda: (
            not kube.get("networkpolicies", consumer, selector="app.kubernetes.io/managed-by=vpcep-operator")[
                "items"
            ]
        ),
    )
