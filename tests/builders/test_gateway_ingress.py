"""The gateway ingress NetworkPolicy of a consumer namespace (R42): valid, narrow, and read back exactly."""

from __future__ import annotations

import kubernetes_validate
import pytest

from vpcep.builders.gateway_ingress import (
    CONSUMER_NAMESPACE_LABEL,
    admitted_ports,
    build_gateway_ingress_policy,
    gateway_ingress_policy_name,
    port_ranges,
)
from vpcep.builders.meta import MANAGED_BY, MANAGED_BY_LABEL, spec_hash_of

K8S_VERSION = "1.36.0"
GATEWAY_LABELS = {"app.kubernetes.io/name": "vpcep-gateway", "app.kubernetes.io/instance": "vpcep"}


def _policy(ports: list[int], namespace: str = "shop-web") -> dict:
    return build_gateway_ingress_policy(namespace, ports, "vpcep-system", GATEWAY_LABELS)


def test_passes_the_strict_kubernetes_schema_R42() -> None:
    kubernetes_validate.validate(_policy([20000, 20001, 20002, 20007]), K8S_VERSION, strict=True)


def test_admits_only_the_consumer_namespace_to_its_ports_on_the_gateway_pods_R42() -> None:
    policy = _policy([20003, 20000, 20001, 20007, 20001])
    assert policy["metadata"]["namespace"] == "vpcep-system"  # the gateways' namespace, not the consumer's
    labels = policy["metadata"]["labels"]
    assert labels == {MANAGED_BY_LABEL: MANAGED_BY, CONSUMER_NAMESPACE_LABEL: "shop-web"}
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": GATEWAY_LABELS}
    assert spec["policyTypes"] == ["Ingress"]
    [rule] = spec["ingress"]
    # One peer, the namespace: no ipBlock (it would be OR-ed with it and admit other namespaces' pods).
    only_namespace = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop-web"}}}
    assert rule["from"] == [only_namespace]
    assert rule["ports"] == [
        {"protocol": "TCP", "port": 20000, "endPort": 20001},
        {"protocol": "TCP", "port": 20003},
        {"protocol": "TCP", "port": 20007},
    ]


def test_what_is_stored_reads_back_as_the_same_ports() -> None:
    ports = {20000, 20001, 20002, 20010, 20012, 20013}
    assert admitted_ports(_policy(sorted(ports))) == frozenset(ports)


def test_an_edited_policy_reads_back_as_what_it_admits_now() -> None:
    policy = _policy([20000, 20001])
    policy["spec"]["ingress"][0]["ports"].append({"protocol": "UDP", "port": 20005})
    policy["spec"]["ingress"].append({"ports": [{"port": "http"}, {"port": 20009}]})
    assert admitted_ports(policy) == frozenset({20000, 20001, 20009})


@pytest.mark.parametrize(
    ("ports", "runs"),
    [
        ([], []),
        ([5], [(5, 5)]),
        ([3, 1, 2, 2], [(1, 3)]),
        ([1, 3, 4, 9], [(1, 1), (3, 4), (9, 9)]),
    ],
)
def test_port_runs(ports: list[int], runs: list[tuple[int, int]]) -> None:
    assert port_ranges(ports) == runs


def test_name_is_per_namespace_and_content_is_hashed() -> None:
    assert gateway_ingress_policy_name("shop-web") == "vpcep-ingress-shop-web"
    long_namespace = "n" * 63
    assert gateway_ingress_policy_name(long_namespace) == f"vpcep-ingress-{long_namespace}"
    assert spec_hash_of(_policy([20000])) != spec_hash_of(_policy([20001]))
    assert spec_hash_of(_policy([20000])) == spec_hash_of(_policy([20000]))
