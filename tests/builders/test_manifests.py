"""Built-in manifests the operator builds are valid Kubernetes objects (strict schemas of the real types).

The testbed does not validate built-in kinds, so these tests are where a typo in a field name is caught.
"""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from vpcep.api.endpoint import EndpointPhase, EndpointStatus, GatewayPort
from vpcep.api.routing import ROUTE_DATA_KEY, Listener, Route
from vpcep.builders.connection import build_connection
from vpcep.builders.consumer import (
    build_consumer_service,
    build_endpoint_slice,
    build_gateway_egress_policy,
    consumer_service_name,
    dns_name,
)
from vpcep.builders.meta import SPEC_HASH_ANNOTATION, Manifest, Owner, dns_label, spec_hash_of, status_patch
from vpcep.builders.provider_policy import build_provider_policy
from vpcep.builders.quota_view import QuotaUsage, build_quota_view
from vpcep.builders.route import build_route_config_map

K8S_VERSION = "1.36.0"
ENDPOINT = Owner("vpcep.io/v1alpha1", "Endpoint", "consumer", "db", "0b8c3c6e-2a8f-4d9b-9a57-3b9a2f1f0e11")
SERVICE = Owner(
    "vpcep.io/v1alpha1", "EndpointService", "provider", "pg", "5d0d0a52-0c7b-4f8e-b1c3-1f2e3d4c5b6a"
)
PORTS = (GatewayPort(clientPort=5432, gatewayPort=20001), GatewayPort(clientPort=80, gatewayPort=20000))
BACKEND_HOST = "10.96.7.7"


def _valid(manifest: Manifest) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def _route() -> Route:
    return Route(
        endpointId=ENDPOINT.uid,
        markerId=7,
        listeners=[Listener(gatewayPort=20000, clientPort=80, backendHost=BACKEND_HOST, serverPort=8080)],
        proxyProtocolV2=True,
        sourceCIDRs=["10.0.0.0/8"],
        maxConnections=3000,
    )


BUILT = {
    "consumer service": lambda: build_consumer_service(ENDPOINT, PORTS),
    "endpoint slice": lambda: build_endpoint_slice(ENDPOINT, PORTS, ["10.244.0.5", "10.244.1.9"]),
    "egress policy": lambda: build_gateway_egress_policy(
        ENDPOINT, ["10.96.0.10", "192.168.0.0/16"], [443, 443]
    ),
    "provider policy": lambda: build_provider_policy(
        SERVICE, {"app": "pg"}, [5432, "metrics"], "vpcep-system", {"app.kubernetes.io/name": "vpcep-gateway"}
    ),
    "route": lambda: build_route_config_map(_route(), "vpcep-system", ENDPOINT.uid),
    "quota view": lambda: build_quota_view("consumer", QuotaUsage("team-a", 3, 20, 51, 50, 7, 200, 2, 50)),
}


@pytest.mark.parametrize("what", sorted(BUILT))
def test_built_in_manifests_pass_the_strict_kubernetes_schema(what: str) -> None:
    _valid(BUILT[what]())


def test_schema_validation_catches_a_misspelt_field() -> None:
    """Guards the guard: the strict schema must refuse an unknown field, or the tests above prove nothing."""
    manifest = build_consumer_service(ENDPOINT, PORTS)
    manifest["spec"]["clusterIp"] = "None"
    with pytest.raises(kubernetes_validate.ValidationError):
        _valid(manifest)


def test_consumer_service_maps_client_ports_to_gateway_ports_without_selector() -> None:  # R18
    service = build_consumer_service(ENDPOINT, PORTS)
    assert "selector" not in service["spec"]
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(80, 20000), (5432, 20001)]
    assert service["metadata"]["ownerReferences"][0]["uid"] == ENDPOINT.uid
    assert service["metadata"]["namespace"] == "consumer"


def test_endpoint_slice_lists_ready_gateways_with_the_service_port_names() -> None:
    service = build_consumer_service(ENDPOINT, PORTS)
    slice_ = build_endpoint_slice(ENDPOINT, PORTS, ["10.244.1.9", "10.244.0.5", "fd00::1"])
    assert slice_["metadata"]["labels"]["kubernetes.io/service-name"] == service["metadata"]["name"]
    assert [e["addresses"] for e in slice_["endpoints"]] == [["10.244.0.5"], ["10.244.1.9"]]
    assert {p["name"]: p["port"] for p in slice_["ports"]} == {
        p["name"]: p["targetPort"] for p in service["spec"]["ports"]
    }


def test_no_consumer_object_carries_the_backend_or_provider_details() -> None:
    """Consumers can read their namespace's Services and EndpointSlices; the backend stays in the
    route (R19).
    """
    consumer_side = json.dumps([BUILT["consumer service"](), BUILT["endpoint slice"]()])
    for secret in (BACKEND_HOST, "provider", "pg", SERVICE.uid):
        assert secret not in consumer_side
    route = build_route_config_map(_route(), "vpcep-system", ENDPOINT.uid)
    assert route["metadata"]["namespace"] == "vpcep-system"
    assert Route.model_validate_json(route["data"][ROUTE_DATA_KEY]) == _route()


def test_connection_leaves_the_decision_to_the_provider() -> None:  # R10
    connection = build_connection(ENDPOINT.uid, "provider", "pg")
    assert connection["metadata"]["namespace"] == "provider"
    assert connection["spec"] == {}
    assert "consumer" not in json.dumps(connection)


def test_provider_policy_admits_only_gateway_pods_to_the_target_ports() -> None:  # R31
    policy = BUILT["provider policy"]()
    rule = policy["spec"]["ingress"][0]
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app": "pg"}}
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "vpcep-system"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "vpcep-gateway"}},
        }
    ]
    assert [p["port"] for p in rule["ports"]] == [5432, "metrics"]


def test_gateway_egress_policy_opens_only_the_destinations() -> None:  # R38
    policy = BUILT["egress policy"]()
    assert policy["spec"]["policyTypes"] == ["Egress"]
    assert policy["spec"]["egress"][0]["to"] == [
        {"ipBlock": {"cidr": "10.96.0.10/32"}},
        {"ipBlock": {"cidr": "192.168.0.0/16"}},
    ]
    assert policy["spec"]["egress"][0]["ports"] == [{"protocol": "TCP", "port": 443}]


def test_quota_view_has_the_documented_keys() -> None:  # R41
    data = BUILT["quota view"]()["data"]
    assert data == {
        "account": "team-a",
        "servicesUsed": "3",
        "servicesLimit": "20",
        "endpointsUsed": "51",
        "endpointsLimit": "50",
        "gatewayPortsUsed": "7",  # R49
        "gatewayPortsLimit": "200",
        "whitelistsUsed": "2",
        "whitelistsLimit": "50",
    }


def test_content_hash_changes_with_content_and_only_then() -> None:
    first = build_endpoint_slice(ENDPOINT, PORTS, ["10.244.0.5"])
    again = build_endpoint_slice(ENDPOINT, PORTS, ["10.244.0.5"])
    moved = build_endpoint_slice(ENDPOINT, PORTS, ["10.244.0.6"])
    assert (
        spec_hash_of(first) == spec_hash_of(again) == first["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    )
    assert spec_hash_of(first) != spec_hash_of(moved)


@pytest.mark.parametrize(
    "name",
    ["db", "a.b.c", "x" * 63, "UPPER", "y" * 253],
)
def test_child_names_are_dns_labels_and_distinct(name: str) -> None:
    label = dns_label("vpce", name)
    assert len(label) <= 63
    assert label[0].isalpha() and label[-1].isalnum()
    assert all(c.isdigit() or c == "-" or ("a" <= c <= "z") for c in label)
    assert dns_label("vpce", name + "z") != label


def test_dns_name_is_the_cluster_service_name() -> None:  # R18
    assert (
        dns_name(consumer_service_name("db"), "consumer", "cluster.local")
        == "vpce-db.consumer.svc.cluster.local"
    )
    # Issue 11: clusters with another domain (kubelet --cluster-domain) get names that resolve there.
    assert dns_name("vpce-db", "consumer", "corp.example") == "vpce-db.consumer.svc.corp.example"


def test_status_patch_removes_what_is_no_longer_set_R11() -> None:
    """A merge patch leaves absent keys alone: a Rejected endpoint kept showing its old nodeIP and dnsName."""
    rejected = EndpointStatus(phase=EndpointPhase.REJECTED, reason="Rejected", endpointId="e1", markerId=1)
    patch = status_patch(rejected)
    assert (patch["nodeIP"], patch["dnsName"], patch["phase"]) == (None, None, "Rejected")
    assert patch["gatewayPorts"] == [] and patch["conditions"] == []
