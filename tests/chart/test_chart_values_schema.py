"""values.schema.json refuses bad values and names the key, before anything reaches a cluster."""

from __future__ import annotations

import pathlib

import pytest
from chart_rendering import RenderError, render

BAD_VALUES = [
    # (--set, the key the error must name)
    ("gateway.replicas=two", "gateway.replicas"),
    ("gateway.replicas=0", "gateway.replicas"),
    ("gateway.replica=2", "replica"),
    ("region=Local_1", "region"),
    ("maxConnectionsPerEndpoint=0", "maxConnectionsPerEndpoint"),  # R21
    ("quotas.default.services=-1", "quotas.default.services"),  # R9
    ("quotas.default.endpoints=many", "quotas.default.endpoints"),  # R22
    ("quotas.overrides.Team_A.services=3", "quotas.overrides"),
    ("networkPolicy.enabled=maybe", "networkPolicy.enabled"),  # R31
    ("webhook.failurePolicy=Sometimes", "webhook.failurePolicy"),
    ("webhook.certificate.source=vault", "webhook.certificate.source"),
    ("gateway.antiAffinity=strict", "gateway.antiAffinity"),
    ("gateway.ports.first=80", "gateway.ports.first"),
    ("cloudServices[0].ports[0].protocol=UDP", "cloudServices.0.ports.0.protocol"),  # R3
    ("cloudServices[0].ports[0].serverPort=70000", "cloudServices.0.ports.0.serverPort"),
    ("cloudServices[1].type=Private", "cloudServices.1.type"),
    ("podSecurityContext.runAsNonRoot=false", "podSecurityContext.runAsNonRoot"),  # R36
    ("securityContext.readOnlyRootFilesystem=false", "securityContext.readOnlyRootFilesystem"),  # R36
    ("image.pullPolicy=Sometimes", "image.pullPolicy"),
]


@pytest.mark.parametrize(("assignment", "key"), BAD_VALUES, ids=[item[0] for item in BAD_VALUES])
def test_bad_value_is_refused_naming_the_key(assignment: str, key: str) -> None:
    with pytest.raises(RenderError) as refused:
        render(assignment)
    message = str(refused.value)
    assert "values don't meet the specifications" in message
    assert key in message, message


def test_a_values_file_with_a_typo_is_refused(tmp_path: pathlib.Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("quota:\n  default:\n    services: 5\n")
    with pytest.raises(RenderError, match="quota"):
        render(values_file=str(values))


def test_a_values_file_overrides_the_defaults(tmp_path: pathlib.Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("gateway:\n  replicas: 4\n")
    assert render(values_file=str(values)).one("Deployment", "vpcep-gateway")["spec"]["replicas"] == 4


@pytest.mark.parametrize(
    ("assignments", "named"),
    [
        (["gateway.ports.first=40000"], "gateway.ports.last (32767) must be >= gateway.ports.first (40000)"),
        (["gateway.healthPort=20001"], "gateway.healthPort (20001) lies inside gateway.ports"),
    ],
)
def test_cross_field_mistakes_are_refused_naming_both_keys(assignments: list[str], named: str) -> None:
    with pytest.raises(RenderError, match=named.replace("(", r"\(").replace(")", r"\)")):
        render(*assignments)


def test_global_values_of_a_parent_chart_are_allowed() -> None:
    """Helm passes `global` to every chart used as a dependency; the strict schema must let it through."""
    assert render("global.imageRegistry=registry.example.com").objects
