"""crds/ is generated from the models, structural, and carries the rules of SPEC §3 (R3, R4, R12, R15)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from vpcep.api import crdgen
from vpcep.api.common import KindModel

CRDS = Path(__file__).resolve().parents[2] / "crds"
ALLOWED_KEYS = {
    "description",
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "required",
    "properties",
    "items",
    "additionalProperties",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
}


def load(plural: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CRDS / f"{plural}.vpcep.io.yaml").read_text())
    return data


def schema_of(plural: str) -> dict[str, Any]:
    schema: dict[str, Any] = load(plural)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def at(schema: dict[str, Any], dotted: str) -> dict[str, Any]:
    node = schema
    for part in dotted.strip(".").split("."):
        node = node["properties"][part[:-2]]["items"] if part.endswith("[]") else node["properties"][part]
    return node


PLURALS = [model.crd.plural for model in crdgen.KINDS]


def test_crds_on_disk_match_the_models() -> None:
    """kubebuilder's "verify": regenerate and diff. Fix: python -m vpcep.api.crdgen."""
    on_disk = {p.name: p.read_text() for p in CRDS.glob("*.vpcep.io.yaml")}
    assert on_disk == crdgen.generate()


def test_check_mode_reports_drift(tmp_path: Path) -> None:
    assert crdgen.main(["--out", str(tmp_path)]) == 0
    assert crdgen.main(["--out", str(tmp_path), "--check"]) == 0
    stale = tmp_path / "endpoints.vpcep.io.yaml"
    stale.write_text(stale.read_text().replace("vpce\n", "vpcx\n"))
    assert crdgen.main(["--out", str(tmp_path), "--check"]) == 1


@pytest.mark.parametrize("plural", PLURALS)
def test_schema_is_structural(plural: str) -> None:
    """Every node has a type, and only keys a structural schema allows (no anyOf/$ref/const/title...)."""
    problems = []
    for path, node in walk(schema_of(plural)):
        if "type" not in node:
            problems.append(f"{path}: no type")
        if set(node) - ALLOWED_KEYS:
            problems.append(f"{path}: {sorted(set(node) - ALLOWED_KEYS)}")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{path}: properties and additionalProperties together")
        if node.get("type") == "object" and "items" in node:
            problems.append(f"{path}: object with items")
        for key in node.get("x-kubernetes-list-map-keys", []):
            if key not in node["items"].get("required", []):
                problems.append(f"{path}: list map key {key} must be required")
        for rule in node.get("x-kubernetes-validations", []):
            if not rule.get("message") or not rule.get("rule"):
                problems.append(f"{path}: CEL rule without rule/message")
    assert problems == []


@pytest.mark.parametrize("plural", PLURALS)
def test_every_string_or_list_checked_by_cel_is_bounded(plural: str) -> None:
    """The API server refuses CEL with unbounded estimated cost: lists and strings under rules need maxima."""
    for path, node in walk(schema_of(plural)):
        if not node.get("x-kubernetes-validations") or "oldSelf" in str(node["x-kubernetes-validations"]):
            continue
        if node["type"] == "array":
            assert "maxItems" in node, path
        if node["type"] == "string":
            assert "maxLength" in node, path


@pytest.mark.parametrize("model", crdgen.KINDS, ids=PLURALS)
def test_names_short_names_category_and_status_subresource(model: type[KindModel]) -> None:
    crd = load(model.crd.plural)
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{model.crd.plural}.vpcep.io"
    assert spec["group"] == "vpcep.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == model.__name__
    assert "vpcep" in spec["names"]["categories"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def test_short_names_are_the_documented_ones() -> None:
    short = {p: load(p)["spec"]["names"]["shortNames"] for p in PLURALS}
    assert short == {
        "endpointservices": ["vpces"],
        "endpoints": ["vpce"],
        "whitelists": ["vpcewl"],
        "endpointconnections": ["vpcec"],
    }


@pytest.mark.parametrize("plural", PLURALS)
def test_printer_columns_point_at_declared_fields(plural: str) -> None:
    crd = load(plural)
    schema = schema_of(plural)
    for column in crd["spec"]["versions"][0]["additionalPrinterColumns"]:
        path = column["jsonPath"]
        if path.startswith(".metadata."):
            continue
        node = at(schema, path)
        allowed = {
            "string": {"string", "array"},
            "integer": {"integer"},
            "boolean": {"boolean"},
            "date": {"string"},
        }
        assert node["type"] in allowed[column["type"]], f"{plural} column {column['name']} -> {path}"


def test_printer_columns_show_what_the_console_shows() -> None:
    def names(plural: str) -> list[str]:
        return [c["name"] for c in load(plural)["spec"]["versions"][0]["additionalPrinterColumns"]]

    assert {"ServiceName", "Backend-Kind", "Backend", "Phase", "Approval", "Type", "Age"} <= set(
        names("endpointservices")
    )
    assert {"ServiceName", "Phase", "NodeIP", "DNSName", "Type", "Age"} <= set(names("endpoints"))
    assert {"EndpointID", "MarkerID", "State", "Owner", "Created"} <= set(names("endpointconnections"))


def test_endpoint_table_shows_the_requested_service_even_when_it_failed() -> None:
    """Issue 14: a Failed endpoint (ServiceNotFound, R15) has no resolved name; the typo must show in
    `kubectl get vpce`, so the columns read the spec, and the resolved name is there with -o wide."""
    columns = {c["name"]: c for c in load("endpoints")["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["ServiceName"]["jsonPath"] == ".spec.serviceName"
    assert columns["CloudService"]["jsonPath"] == ".spec.cloudService"
    resolved = columns["Resolved"]
    assert (resolved["jsonPath"], resolved.get("priority")) == (".status.serviceName", 1)


def test_connection_table_shows_the_effective_decision_not_the_providers_field() -> None:
    """R10: an endpoint accepted without a decision must not read "Pending" next to state Accepted; the
    provider's own spec.decision is still there with -o wide."""
    columns = {
        c["name"]: c for c in load("endpointconnections")["spec"]["versions"][0]["additionalPrinterColumns"]
    }
    assert columns["Decision"]["jsonPath"] == ".status.decision"
    assert columns["Decided-By"]["jsonPath"] == ".status.decidedBy"
    assert (columns["Spec-Decision"]["jsonPath"], columns["Spec-Decision"].get("priority")) == (
        ".spec.decision",
        1,
    )


@pytest.mark.parametrize("model", crdgen.KINDS, ids=PLURALS)
def test_status_schema_declares_every_status_field(model: type[KindModel]) -> None:
    """Undeclared status fields are pruned by the API server (and kopf then retries forever)."""
    status_model = model.model_fields["status"].annotation
    declared = set(schema_of(model.crd.plural)["properties"]["status"]["properties"])
    fields = set(status_model.__args__[0].model_fields)  # type: ignore[union-attr]
    assert fields == declared
    lifecycle = "state" if model.crd.plural == "endpointconnections" else "phase"
    assert {"observedGeneration", "conditions", lifecycle} <= declared


def test_descriptions_reach_kubectl_explain() -> None:
    schema = schema_of("endpointservices")
    assert "Provider side" in schema["description"]
    assert "immutable" in at(schema, "spec.ports")["description"]
    assert at(schema, "spec").get("description")


def test_defaults_are_in_the_schema() -> None:
    services = schema_of("endpointservices")
    assert at(services, "spec.approvalRequired")["default"] is False
    assert at(services, "spec.proxyProtocol")["default"] == "None"
    assert at(services, "spec.ports[].protocol")["default"] == "TCP"
    assert at(schema_of("endpointconnections"), "spec.decision")["default"] == "Pending"


def rules(node: dict[str, Any]) -> list[dict[str, str]]:
    found: list[dict[str, str]] = node.get("x-kubernetes-validations", [])
    return found


def test_r3_ports_bounds_tcp_only_and_unique_client_port() -> None:
    ports = at(schema_of("endpointservices"), "spec.ports")
    assert (ports["minItems"], ports["maxItems"]) == (1, 50)
    item = ports["items"]["properties"]
    for port in ("serverPort", "clientPort"):
        assert (item[port]["minimum"], item[port]["maximum"]) == (1, 65535)
    assert item["protocol"]["enum"] == ["TCP"]
    unique = [r for r in rules(ports) if "clientPort" in r["rule"]]
    assert unique and "clientPort" in unique[0]["message"] and "spec.ports" in unique[0]["message"]


def test_r4_ports_and_r2_backend_are_immutable() -> None:
    schema = schema_of("endpointservices")
    for path in ("spec.ports", "spec.backend"):
        immutable = [r for r in rules(at(schema, path)) if r["rule"] == "self == oldSelf"]
        assert immutable and path in immutable[0]["message"], path
    assert at(schema, "spec.backend.kind")["enum"] == ["Service", "Pod"]


def test_r15_endpoint_names_exactly_one_target_which_cannot_change() -> None:
    spec = at(schema_of("endpoints"), "spec")
    texts = [r["rule"] for r in rules(spec)]
    assert "has(self.serviceName) != has(self.cloudService)" in texts
    assert any("oldSelf.serviceName" in t for t in texts)


@pytest.mark.parametrize(
    ("plural", "path"), [("whitelists", "spec.accounts"), ("endpointservices", "spec.autoAcceptAccounts")]
)
def test_r12_account_entries_are_checked_and_the_message_names_the_entry(plural: str, path: str) -> None:
    entry_rules = rules(at(schema_of(plural), path)["items"])
    assert entry_rules
    pattern = re.search(r"matches\('(.*)'\)", entry_rules[0]["rule"])
    assert pattern is not None
    regex = re.compile(pattern.group(1))
    assert regex.match("*") and regex.match("iam:domain::team-a")
    assert not regex.match("team-a") and not regex.match("iam:domain::Team_A") and not regex.match("**")
    assert "+ self +" in entry_rules[0]["messageExpression"]


def test_r34_source_cidrs_are_checked() -> None:
    item = at(schema_of("endpoints"), "spec.accessControl.sourceCIDRs")["items"]
    regex = re.compile(re.search(r"matches\('(.*)'\)", rules(item)[0]["rule"]).group(1))  # type: ignore[union-attr]
    for good in ("10.0.0.0/8", "192.168.1.7/32", "0.0.0.0/0", "fd00::/64", "::/0"):
        assert regex.match(good), good
    for bad in ("10.0.0.0", "10.0.0.256/8", "10.0.0.0/33", "example.com/8", ""):
        assert not regex.match(bad), bad


@pytest.mark.parametrize("plural", PLURALS)
def test_crd_is_a_valid_apiextensions_v1_object_for_kubernetes_1_30(plural: str) -> None:
    """Strict validation against the CustomResourceDefinition schema of Kubernetes 1.30 (typos, types)."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kubernetes_validate.validate(load(plural), "1.30", strict=True)


@pytest.mark.parametrize("plural", PLURALS)
def test_no_cel_expression_the_api_server_would_refuse_for_cost(plural: str) -> None:
    """string(<int>) has an unbounded estimated size: the API server refuses the whole CRD (seen on 1.36)."""
    for path, node in walk(schema_of(plural)):
        for rule in rules(node):
            for key in ("rule", "messageExpression"):
                assert "string(" not in rule.get(key, ""), f"{plural} {path}: {key} converts to string"


def test_r3_duplicate_rule_keeps_its_message() -> None:
    """With reason FieldValueDuplicate the API server prints only "Duplicate value", not the message."""
    ports = at(schema_of("endpointservices"), "spec.ports")
    assert all("reason" not in rule for rule in rules(ports))
