"""examples/ hold valid objects: built-ins against the Kubernetes schemas, ours against CRDs and models."""

from __future__ import annotations

import pathlib
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from chart_rendering import REPO
from pydantic import BaseModel

from vpcep.api.endpoint import EndpointSpec
from vpcep.api.endpoint_service import EndpointServiceSpec
from vpcep.api.whitelist import WhitelistSpec

EXAMPLES = sorted((REPO / "examples").glob("*/*.yaml"))
SPEC_MODELS: dict[str, type[BaseModel]] = {
    "EndpointService": EndpointServiceSpec,
    "Endpoint": EndpointSpec,
    "Whitelist": WhitelistSpec,
}
STAND_IN_SERVICE_NAME = "local-1.orders.6f0e4c1a-3b7d-4f27-9a51-0c3d2e8b9f10"


def _crd_schemas() -> dict[str, dict[str, Any]]:
    schemas = {}
    for path in (REPO / "crds").glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        schemas[crd["spec"]["names"]["kind"]] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schemas


def _objects(path: pathlib.Path) -> list[dict[str, Any]]:
    text = path.read_text().replace("SERVICE_NAME", STAND_IN_SERVICE_NAME)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_there_are_the_promised_walkthroughs() -> None:
    folders = {path.parent.name for path in EXAMPLES}
    assert {"01-same-account", "02-two-accounts-whitelist", "03-approval", "04-pod-backend"} <= folders


@pytest.mark.parametrize("path", EXAMPLES, ids=[f"{p.parent.name}/{p.name}" for p in EXAMPLES])
def test_example_objects_are_valid_and_show_the_expected_output(path: pathlib.Path) -> None:
    schemas = _crd_schemas()
    objects = _objects(path)
    assert objects
    for obj in objects:
        if obj["apiVersion"] == "vpcep.io/v1alpha1":
            jsonschema.validate(obj["spec"], schemas[obj["kind"]]["properties"]["spec"])
            SPEC_MODELS[obj["kind"]].model_validate(obj["spec"])
        else:
            kubernetes_validate.validate(obj, "1.30.0", strict=True)
    comments = [line for line in path.read_text().splitlines() if line.startswith("#")]
    assert any(line.lstrip("# ").startswith("NAME ") for line in comments), (
        "expected `kubectl get` output missing"
    )


def test_cross_account_examples_label_their_namespaces() -> None:
    accounts = {}
    for path in EXAMPLES:
        for obj in _objects(path):
            if obj["kind"] == "Namespace":
                accounts[obj["metadata"]["name"]] = (obj["metadata"].get("labels") or {}).get(
                    "vpcep.io/account"
                )
    assert accounts["shop-db"] == accounts["shop-web"] == "shop"  # same account, two namespaces
    assert (accounts["alpha-payments"], accounts["beta-shop"]) == ("alpha", "beta")
