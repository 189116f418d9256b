"""OperatorConfig: the YAML the Helm chart renders, with defaults from SPEC (R9, R21, R22, R37)."""

from __future__ import annotations

import pathlib

import pytest
from pydantic import ValidationError

from vpcep.api.endpoint_service import ServiceType
from vpcep.config import OperatorConfig, load_config
from vpcep.main import build_config, parse_args


def test_defaults_follow_the_spec() -> None:
    config = OperatorConfig()
    assert (config.namespace, config.region) == ("vpcep-system", "local-1")
    assert config.quotas.for_account("anyone").services == 20  # R9
    assert config.quotas.for_account("anyone").endpoints == 50  # R22
    assert config.maxConnectionsPerEndpoint == 3000  # R21
    kinds = {service.name: service.type for service in config.cloudServices}
    # R37: the cluster DNS only, which every cluster has (a Gateway-type example is in the chart's values)
    assert kinds == {"dns": ServiceType.INTERFACE}
    dns = next(s for s in config.cloudServices if s.name == "dns")
    assert [(p.serverPort, p.clientPort) for p in dns.ports] == [(53, 53)]


def test_yaml_file_with_per_account_override(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "region: eu-2\nquotas:\n  default: {services: 5, endpoints: 9}\n"
        "  overrides:\n    big-team: {services: 100, endpoints: 1000}\n"
    )
    config = load_config(path)
    assert config.region == "eu-2"
    assert config.quotas.for_account("small").services == 5
    assert config.quotas.for_account("big-team").endpoints == 1000


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("region: Not_A_Label\n", "region"),
        ("gatewayPorts: {first: 3000, last: 2000}\n", "gatewayPorts"),
        ("quotas: {default: {services: -1}}\n", "quotas"),
        ("surprise: 1\n", "surprise"),
    ],
)
def test_bad_config_names_the_field(tmp_path: pathlib.Path, text: str, field: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ValidationError, match=field):
        load_config(path)


def test_flags_override_the_file_and_turn_the_webhook_on(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("namespace: from-file\n")
    config = build_config(
        parse_args(
            [
                "--config",
                str(path),
                "--namespace",
                "from-flag",
                "--webhook-port",
                "9555",
                "--webhook-managed",
                "vpcep-local",
            ]
        )
    )
    assert config.namespace == "from-flag"
    assert config.webhook.enabled and config.webhook.port == 9555
    assert config.webhook.managedConfiguration == "vpcep-local"
