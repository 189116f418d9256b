"""crds/ on a real apiextensions-apiserver: good objects accepted, bad ones refused by schema/CEL with a
message naming the field (R3, R4, R2, R12, R15, R16, R34); defaults, status subresource, names, columns.

No operator runs here: everything below is the API server enforcing the CRDs alone (webhook off).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
UID = "0b0e8a52-6c43-4c5a-9a55-5ed4f39c2f6a"
PLURALS = ("endpointservices", "endpoints", "whitelists", "endpointconnections")


@pytest.fixture(scope="module")
def crds(cluster: Any) -> Any:
    cluster.kubectl_run("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    for plural in PLURALS:
        cluster.kubectl_run("wait", "--for=condition=Established", f"crd/{plural}.vpcep.io", "--timeout=60s")
    return cluster


@pytest.fixture(scope="module")
def namespace(crds: Any) -> Iterator[str]:
    name = crds.create_namespace("vpcep-crds")
    yield name
    crds.kubectl_run("delete", "namespace", name, "--wait=false", check=False)


def manifest(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> str:
    body = {
        "apiVersion": "vpcep.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
    }
    return yaml.safe_dump({**body, "spec": spec})


def apply(cluster: Any, text: str) -> Any:
    return cluster.kubectl_run("apply", "-f", "-", input=text, check=False)


def service_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "backend": {"kind": "Service", "name": "web"},
        "ports": [{"serverPort": 8080, "clientPort": 80}],
    }
    spec.update(overrides)
    return spec


def refused(cluster: Any, text: str, *expected: str) -> str:
    result = apply(cluster, text)
    assert result.returncode != 0, f"the API server accepted:\n{text}"
    for fragment in expected:
        assert fragment in result.stderr, f"{fragment!r} not in:\n{result.stderr}"
    return str(result.stderr)


def test_valid_objects_are_accepted_with_defaults(crds: Any, namespace: str) -> None:
    assert apply(crds, manifest("EndpointService", "ok", namespace, service_spec())).returncode == 0
    got = json.loads(crds.kubectl_run("get", "vpces", "ok", "-n", namespace, "-o", "json").stdout)
    assert got["spec"]["approvalRequired"] is False
    assert got["spec"]["proxyProtocol"] == "None"
    assert got["spec"]["ports"][0]["protocol"] == "TCP"
    endpoint = manifest("Endpoint", "ok", namespace, {"serviceName": f"local-1.ok.{UID}"})
    assert apply(crds, endpoint).returncode == 0
    whitelist = manifest(
        "Whitelist", "ok", namespace, {"endpointService": "ok", "accounts": ["*", "iam:domain::b"]}
    )
    assert apply(crds, whitelist).returncode == 0
    connection = manifest("EndpointConnection", "ok", namespace, {})
    assert apply(crds, connection).returncode == 0
    got = json.loads(crds.kubectl_run("get", "vpcec", "ok", "-n", namespace, "-o", "json").stdout)
    assert got["spec"]["decision"] == "Pending"


def test_short_names_and_the_vpcep_category(crds: Any, namespace: str) -> None:
    apply(crds, manifest("EndpointService", "listed", namespace, service_spec()))
    for short in ("vpces", "vpce", "vpcewl", "vpcec"):
        crds.kubectl_run("get", short, "-n", namespace)
    listed = crds.kubectl_run("get", "vpcep", "-n", namespace, "-o", "name").stdout
    assert "endpointservice.vpcep.io/listed" in listed


def test_printer_columns(crds: Any, namespace: str) -> None:
    apply(crds, manifest("EndpointService", "cols", namespace, service_spec()))
    header = crds.kubectl_run("get", "vpces", "cols", "-n", namespace).stdout.splitlines()[0].split()
    assert header[:7] == ["NAME", "SERVICENAME", "BACKEND-KIND", "BACKEND", "PHASE", "APPROVAL", "TYPE"]
    row = crds.kubectl_run("get", "vpces", "cols", "-n", namespace).stdout.splitlines()[1]
    assert "Service" in row and "web" in row and "false" in row


def test_r3_duplicate_client_port_is_refused_naming_the_field(crds: Any, namespace: str) -> None:
    ports = [{"serverPort": 1, "clientPort": 80}, {"serverPort": 2, "clientPort": 80}]
    refused(
        crds,
        manifest("EndpointService", "dup", namespace, service_spec(ports=ports)),
        "spec.ports",
        "each clientPort may appear only once",
    )


@pytest.mark.parametrize(
    ("ports", "fragments"),
    [
        ([{"serverPort": 70000, "clientPort": 80}], ("spec.ports[0].serverPort", "65535")),
        ([{"serverPort": 80, "clientPort": 0}], ("spec.ports[0].clientPort", "1")),
        ([{"protocol": "UDP", "serverPort": 53, "clientPort": 53}], ("spec.ports[0].protocol", "TCP")),
        ([], ("spec.ports",)),
        ([{"serverPort": p, "clientPort": p} for p in range(1, 52)], ("spec.ports", "50")),
    ],
    ids=["port-too-high", "port-zero", "udp", "no-ports", "51-ports"],
)
def test_r3_bad_ports_are_refused_naming_the_field(
    crds: Any, namespace: str, ports: list[dict[str, Any]], fragments: tuple[str, ...]
) -> None:
    refused(crds, manifest("EndpointService", "bad", namespace, service_spec(ports=ports)), *fragments)


def test_r4_ports_are_immutable_and_r2_backend_too(crds: Any, namespace: str) -> None:
    assert apply(crds, manifest("EndpointService", "fixed", namespace, service_spec())).returncode == 0
    moved = service_spec(ports=[{"serverPort": 8080, "clientPort": 81}])
    refused(crds, manifest("EndpointService", "fixed", namespace, moved), "spec.ports is immutable")
    rebacked = service_spec(backend={"kind": "Pod", "name": "web-0"})
    refused(crds, manifest("EndpointService", "fixed", namespace, rebacked), "spec.backend is immutable")
    edited = service_spec(description="edited", approvalRequired=True)
    assert apply(crds, manifest("EndpointService", "fixed", namespace, edited)).returncode == 0


def test_r2_backend_kind_is_an_enum(crds: Any, namespace: str) -> None:
    spec = service_spec(backend={"kind": "Deployment", "name": "web"})
    refused(crds, manifest("EndpointService", "kind", namespace, spec), "spec.backend.kind", "Service", "Pod")


@pytest.mark.parametrize(
    "spec", [{}, {"serviceName": f"local-1.web.{UID}", "cloudService": "dns"}], ids=["none", "both"]
)
def test_r15_endpoint_needs_exactly_one_target(crds: Any, namespace: str, spec: dict[str, Any]) -> None:
    refused(crds, manifest("Endpoint", "one", namespace, spec), "exactly one of serviceName")


def test_r16_endpoint_target_is_immutable(crds: Any, namespace: str) -> None:
    assert apply(crds, manifest("Endpoint", "fixed", namespace, {"cloudService": "dns"})).returncode == 0
    refused(crds, manifest("Endpoint", "fixed", namespace, {"cloudService": "ntp"}), "immutable")
    refused(crds, manifest("Endpoint", "fixed", namespace, {"serviceName": f"local-1.x.{UID}"}), "immutable")
    narrowed = {"cloudService": "dns", "accessControl": {"sourceCIDRs": ["10.0.0.0/8"]}}
    assert apply(crds, manifest("Endpoint", "fixed", namespace, narrowed)).returncode == 0


def test_r12_malformed_whitelist_entry_is_refused_naming_it(crds: Any, namespace: str) -> None:
    spec = {"endpointService": "web", "accounts": ["iam:domain::ok", "team-b"]}
    refused(
        crds, manifest("Whitelist", "bad", namespace, spec), "spec.accounts[1]", '"team-b"', "iam:domain::"
    )


def test_r49_a_whitelist_of_more_entries_than_the_bound_is_refused_naming_the_limit(
    crds: Any, namespace: str
) -> None:
    """A hostile tenant tries to make the operator hold a huge Whitelist in memory: 1,001 entries are refused
    by the schema, naming the field and the bound; 1,000 are stored."""
    accounts = [f"iam:domain::team-{index}" for index in range(1001)]
    spec = {"endpointService": "web", "accounts": accounts}
    refused(crds, manifest("Whitelist", "huge", namespace, spec), "spec.accounts", "1000")
    spec["accounts"] = accounts[:1000]
    assert apply(crds, manifest("Whitelist", "huge", namespace, spec)).returncode == 0


def test_r10a_malformed_auto_accept_entry_is_refused(crds: Any, namespace: str) -> None:
    spec = service_spec(autoAcceptAccounts=["Team_B"])
    refused(
        crds, manifest("EndpointService", "auto", namespace, spec), "spec.autoAcceptAccounts[0]", '"Team_B"'
    )


def test_r34_bad_source_cidr_is_refused_naming_it(crds: Any, namespace: str) -> None:
    spec = {"cloudService": "dns", "accessControl": {"sourceCIDRs": ["10.0.0.0/8", "10.0.0.1"]}}
    refused(crds, manifest("Endpoint", "cidr", namespace, spec), "sourceCIDRs", '"10.0.0.1"')


def test_unknown_fields_are_refused_by_strict_validation(crds: Any, namespace: str) -> None:
    text = manifest("EndpointService", "typo", namespace, service_spec(approvalRequird=True))
    result = crds.kubectl_run("apply", "--validate=strict", "-f", "-", input=text, check=False)
    assert result.returncode != 0 and "approvalRequird" in result.stderr


def test_status_subresource_keeps_every_declared_field(crds: Any, namespace: str) -> None:
    """Fields the operator writes survive the API server's pruning (else kopf patches forever)."""
    assert apply(crds, manifest("Endpoint", "stat", namespace, {"cloudService": "dns"})).returncode == 0
    status = {
        "observedGeneration": 1,
        "phase": "Accepted",
        "reason": "Accepted",
        "message": "connected",
        "createdAt": "2026-01-01T00:00:00Z",
        "serviceName": f"local-1.dns.{UID}",
        "endpointId": UID,
        "markerId": 7,
        "nodeIP": "10.96.0.10",
        "dnsName": "vpce-stat.ns.svc.cluster.local",
        "serviceType": "Interface",
        "gatewayPorts": [{"clientPort": 53, "gatewayPort": 20000}],
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Accepted",
                "message": "",
                "lastTransitionTime": "t",
                "observedGeneration": 1,
            }
        ],
    }
    crds.kubectl_run(
        "patch",
        "vpce",
        "stat",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    got = json.loads(crds.kubectl_run("get", "vpce", "stat", "-n", namespace, "-o", "json").stdout)
    assert got["status"] == status
    phase = crds.kubectl_run(
        "patch",
        "vpce",
        "stat",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "Sleeping"}}),
        check=False,
    )
    assert phase.returncode != 0 and "status.phase" in phase.stderr


def test_kubectl_explain_shows_the_models_descriptions(crds: Any) -> None:
    text = crds.kubectl_run("explain", "endpointservices.spec.ports").stdout
    assert "immutable after creation" in text
    assert "clientPort" in text
