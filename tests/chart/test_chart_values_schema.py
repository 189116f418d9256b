"""values.schema.json refuses bad values and names the key, before anything reaches a cluster."""

from __future__ import annotations

import pathlib

import pytest
from chart_rendering import RenderError, render

# Helm's engine checks the merged values against values.schema.json and names the key as a JSON pointer:
# "at '/gateway/replicas': got string, want integer",
# "at '/gateway': additional properties 'replica' not allowed".
BAD_VALUES = [
    # (--set, what the error must name)
    ("gateway.replicas=two", "'/gateway/replicas': got string, want integer"),
    ("gateway.replicas=0", "'/gateway/replicas'"),
    ("gateway.replica=2", "'/gateway': additional properties 'replica' not allowed"),
    ("region=Local_1", "'/region'"),
    ("maxConnectionsPerEndpoint=0", "'/maxConnectionsPerEndpoint'"),  # R21
    ("quotas.default.services=-1", "'/quotas/default/services'"),  # R9
    ("quotas.default.endpoints=many", "'/quotas/default/endpoints'"),  # R22
    ("quotas.default.gatewayPorts=-1", "'/quotas/default/gatewayPorts'"),  # R49
    ("quotas.overrides.team-a.whitelists=many", "'/quotas/overrides/team-a/whitelists'"),  # R49
    ("quotas.overrides.Team_A.services=3", "invalid propertyName 'Team_A'"),  # an account name
    ("networkPolicy.enabled=maybe", "'/networkPolicy/enabled'"),  # R31
    ("webhook.failurePolicy=Sometimes", "'/webhook/failurePolicy'"),
    ("webhook.certificate.source=vault", "'/webhook/certificate/source'"),
    ("gateway.antiAffinity=strict", "'/gateway/antiAffinity'"),
    ("gateway.ports.first=80", "'/gateway/ports/first'"),
    ("podSecurityContext.runAsNonRoot=false", "'/podSecurityContext/runAsNonRoot'"),  # R36
    ("securityContext.readOnlyRootFilesystem=false", "'/securityContext/readOnlyRootFilesystem'"),  # R36
    ("image.pullPolicy=Sometimes", "'/image/pullPolicy'"),
    ("oprator.logLevel=debug", "additional properties 'oprator' not allowed"),
]


@pytest.mark.parametrize(("assignment", "key"), BAD_VALUES, ids=[item[0] for item in BAD_VALUES])
def test_bad_value_is_refused_naming_the_key(assignment: str, key: str) -> None:
    with pytest.raises(RenderError) as refused:
        render(assignment)
    message = str(refused.value)
    assert "values don't meet the specifications" in message
    assert key in message, message


A_CLOUD_SERVICE = """
cloudServices:
  - name: dns
    type: {type}
    backend: {{kind: Service, name: kube-dns, namespace: kube-system}}
    ports:
      - {{protocol: {protocol}, serverPort: {server_port}, clientPort: 53}}
"""


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"protocol": "UDP"}, "'/cloudServices/0/ports/0/protocol'"),  # R3
        ({"server_port": "70000"}, "'/cloudServices/0/ports/0/serverPort'"),
        ({"type": "Private"}, "'/cloudServices/0/type'"),
    ],
)
def test_a_bad_cloud_service_is_refused_naming_the_key(
    tmp_path: pathlib.Path, fields: dict[str, str], key: str
) -> None:
    """List items come from a values file: `--set list[0].x=...` replaces the whole list under Helm."""
    values = tmp_path / "values.yaml"
    valid = {"type": "Interface", "protocol": "TCP", "server_port": "53"}
    values.write_text(A_CLOUD_SERVICE.format(**valid | fields))
    with pytest.raises(RenderError) as refused:
        render(values_file=str(values))
    assert key in str(refused.value), refused.value


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
