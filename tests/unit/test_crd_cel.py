"""The CEL rules in crds/ do what they say, evaluated with a CEL interpreter (cel-python) on sample objects.

This walks the generated schema like the API server does (a rule runs with `self` bound to each value at
its node; a rule using `oldSelf` only runs on updates where the old value exists) and checks that bad
objects are refused with a message naming the field (R3, R4, R2, R12, R15, R16, R34) and good ones pass.
The cluster tests (tests/cluster) check the same against a real apiextensions-apiserver.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

celpy = pytest.importorskip("celpy", reason="cel-python evaluates the CRDs' CEL rules")

CRDS = Path(__file__).resolve().parents[2] / "crds"
UID = "0b0e8a52-6c43-4c5a-9a55-5ed4f39c2f6a"
_ENV = celpy.Environment()


@functools.cache
def _schema(plural: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / f"{plural}.vpcep.io.yaml").read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@functools.cache
def _program(expression: str) -> Any:
    return _ENV.program(_ENV.compile(expression))


def _evaluate(expression: str, value: Any, old: Any) -> Any:
    program = _program(expression)
    activation = {"self": celpy.json_to_cel(value)}
    if old is not None:
        activation["oldSelf"] = celpy.json_to_cel(old)
    return program.evaluate(activation)


def _pairs(
    schema: dict[str, Any], new: Any, old: Any, path: str
) -> Iterator[tuple[str, dict[str, Any], Any, Any]]:
    """(path, schema node, new value, correlated old value) for every value present in `new`."""
    yield path, schema, new, old
    if isinstance(new, dict):
        for name, child in schema.get("properties", {}).items():
            if name in new:
                old_child = old.get(name) if isinstance(old, dict) else None
                yield from _pairs(child, new[name], old_child, f"{path}.{name}" if path else name)
    elif isinstance(new, list) and "items" in schema:
        for index, item in enumerate(new):
            # Only list-type=map items correlate with old items; atomic list items have no oldSelf.
            yield from _pairs(schema["items"], item, None, f"{path}[{index}]")


def violations(plural: str, new: dict[str, Any], old: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    errors = []
    for path, node, value, old_value in _pairs(_schema(plural), new, old, ""):
        for rule in node.get("x-kubernetes-validations", []):
            transition = "oldSelf" in rule["rule"]
            if transition and old_value is None:
                continue
            if not bool(_evaluate(rule["rule"], value, old_value if transition else None)):
                message = rule["message"]
                if "messageExpression" in rule:
                    message = str(_evaluate(rule["messageExpression"], value, None))
                errors.append((path, message))
    return errors


def service(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "backend": {"kind": "Service", "name": "web"},
        "ports": [{"protocol": "TCP", "serverPort": 8080, "clientPort": 80}],
    }
    body.update(spec)
    return {
        "apiVersion": "vpcep.io/v1alpha1",
        "kind": "EndpointService",
        "metadata": {"name": "web"},
        "spec": body,
    }


def endpoint(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "vpcep.io/v1alpha1", "kind": "Endpoint", "metadata": {"name": "e"}, "spec": spec}


def test_good_objects_pass() -> None:
    assert violations("endpointservices", service(autoAcceptAccounts=["*", "iam:domain::team-a"])) == []
    assert violations("endpoints", endpoint(serviceName=f"local-1.web.{UID}")) == []
    assert (
        violations("endpoints", endpoint(cloudService="dns", accessControl={"sourceCIDRs": ["10.0.0.0/8"]}))
        == []
    )
    wl = {"kind": "Whitelist", "spec": {"endpointService": "web", "accounts": ["*", "iam:domain::b"]}}
    assert violations("whitelists", wl) == []


def test_r3_duplicate_client_port_is_refused_naming_the_field() -> None:
    ports = [
        {"protocol": "TCP", "serverPort": 1, "clientPort": 80},
        {"protocol": "TCP", "serverPort": 2, "clientPort": 443},
        {"protocol": "TCP", "serverPort": 3, "clientPort": 80},
    ]
    assert violations("endpointservices", service(ports=ports)) == [
        (
            "spec.ports",
            "spec.ports: each clientPort may appear only once; remove or change the duplicate mapping",
        )
    ]


def test_r4_ports_cannot_change_but_description_can() -> None:
    old = service()
    changed = service(ports=[{"protocol": "TCP", "serverPort": 8080, "clientPort": 81}])
    errors = violations("endpointservices", changed, old)
    assert [path for path, _ in errors] == ["spec.ports"]
    assert "spec.ports is immutable" in errors[0][1] and "docs/rules.md#r4" in errors[0][1]
    assert violations("endpointservices", service(description="edited", approvalRequired=True), old) == []


def test_r2_backend_cannot_change() -> None:
    errors = violations("endpointservices", service(backend={"kind": "Pod", "name": "web-0"}), service())
    assert [path for path, _ in errors] == ["spec.backend"]
    assert "spec.backend is immutable" in errors[0][1]


@pytest.mark.parametrize("spec", [{}, {"serviceName": f"local-1.web.{UID}", "cloudService": "dns"}])
def test_r15_exactly_one_target(spec: dict[str, Any]) -> None:
    errors = violations("endpoints", endpoint(**spec))
    assert errors and errors[0][0] == "spec" and "exactly one of serviceName" in errors[0][1]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"serviceName": f"local-1.web.{UID}"}, {"serviceName": f"local-1.other.{UID}"}),
        ({"serviceName": f"local-1.web.{UID}"}, {"cloudService": "dns"}),
        ({"cloudService": "dns"}, {"cloudService": "ntp"}),
    ],
)
def test_r16_target_is_immutable(before: dict[str, Any], after: dict[str, Any]) -> None:
    errors = violations("endpoints", endpoint(**after), endpoint(**before))
    assert any("immutable" in message and "spec.serviceName" in message for _, message in errors)


def test_r16_access_control_may_change() -> None:
    before = endpoint(serviceName=f"local-1.web.{UID}")
    after = endpoint(serviceName=f"local-1.web.{UID}", accessControl={"sourceCIDRs": ["10.1.0.0/16"]})
    assert violations("endpoints", after, before) == []


@pytest.mark.parametrize(
    ("plural", "field"), [("whitelists", "accounts"), ("endpointservices", "autoAcceptAccounts")]
)
def test_r12_bad_account_entry_is_named(plural: str, field: str) -> None:
    spec = {"endpointService": "web"} if plural == "whitelists" else service()["spec"]
    body = {"spec": {**spec, field: ["iam:domain::ok", "team-b", "*"]}}
    errors = violations(plural, body)
    assert errors == [
        (
            f"spec.{field}[1]",
            'entry "team-b" is not iam:domain::<account> (a DNS label, e.g. iam:domain::team-a) or *',
        )
    ]


@pytest.mark.parametrize("cidr", ["10.0.0.0", "10.0.0.0/33", "256.0.0.0/8", "a.b.c.d/8"])
def test_r34_bad_cidr_is_named(cidr: str) -> None:
    body = endpoint(serviceName=f"local-1.web.{UID}", accessControl={"sourceCIDRs": ["10.0.0.0/8", cidr]})
    errors = violations("endpoints", body)
    assert errors == [
        (
            "spec.accessControl.sourceCIDRs[1]",
            f'spec.accessControl.sourceCIDRs: "{cidr}" is not a CIDR such as 10.0.0.0/8 or fd00::/64',
        )
    ]


def test_rules_do_not_fire_on_create_for_transition_rules() -> None:
    """`oldSelf` rules only run on update: creating any valid service passes them."""
    fresh = copy.deepcopy(
        service(ports=[{"protocol": "TCP", "serverPort": p, "clientPort": p} for p in range(1, 51)])
    )
    assert violations("endpointservices", fresh) == []
