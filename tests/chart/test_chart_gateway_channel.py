"""gateway.apiChannel (R45, on by default): the gateway pods reach the API only through the operator's gateway
channel, and their egress policy has no API server rule. Checked on the chart as rendered, with the rendered
pods' own environment parsed by the agent and the rendered config loaded by the operator."""

from __future__ import annotations

import base64
import pathlib
import subprocess
from typing import Any

import yaml
from chart_rendering import render

from vpcep.config import OperatorConfig
from vpcep.gateway.agent import parse_args

OFF = "gateway.apiChannel.enabled=false"


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return found


def operator_config(*assignments: str) -> OperatorConfig:
    data = render(*assignments).one("ConfigMap", "vpcep-operator-config")["data"]["config.yaml"]
    return OperatorConfig.model_validate(yaml.safe_load(data))


def egress_allows_api_server(policy: dict[str, Any]) -> bool:
    """Whether any rule admits an address outside the pod network (the API server is no pod): an ipBlock."""
    return any("ipBlock" in peer for rule in policy["spec"]["egress"] for peer in rule.get("to", []))


def test_turned_off_the_agents_dial_the_api_server_themselves() -> None:
    rendered = render(OFF)
    agent = container(rendered.one("Deployment", "vpcep-gateway"), "agent")
    assert not [e for e in agent["env"] if e["name"].startswith("GATEWAY_API_")]
    assert not operator_config(OFF).gatewayChannel.enabled
    assert not rendered.all("Service") or "vpcep-gateway-channel" not in rendered.names("Service")
    assert egress_allows_api_server(rendered.one("NetworkPolicy", "vpcep-gateway-egress"))


def test_by_default_the_agent_reaches_the_api_through_the_channel_only_R45() -> None:
    rendered = render()
    agent = container(rendered.one("Deployment", "vpcep-gateway"), "agent")
    env = {e["name"]: e.get("value") for e in agent["env"]}
    args = parse_args(
        [
            "--api-server",
            env["GATEWAY_API_SERVER"],
            "--api-ca-file",
            env["GATEWAY_API_CA_FILE"],
            "--name",
            "gw",
        ]
    )
    service = rendered.one("Service", "vpcep-gateway-channel")
    port = service["spec"]["ports"][0]
    assert args.api_server == f"https://vpcep-gateway-channel.vpcep-system.svc:{port['port']}"
    config = operator_config().gatewayChannel
    assert config.enabled and config.port == port["port"]
    operator = rendered.one("Deployment", "vpcep-operator")
    ports = {p["name"]: p["containerPort"] for p in container(operator, "operator")["ports"]}
    assert ports[port["targetPort"]] == config.port, "the Service reaches the port the operator serves"

    policy = rendered.one("NetworkPolicy", "vpcep-gateway-egress")
    assert not egress_allows_api_server(policy), (
        "no rule a compromised HAProxy could use to reach the API server"
    )
    (channel_rule,) = [
        r for r in policy["spec"]["egress"] if {"protocol": "TCP", "port": config.port} in r.get("ports", [])
    ]
    assert channel_rule["to"] == [{"podSelector": {"matchLabels": service["spec"]["selector"]}}]
    ingress = rendered.one("NetworkPolicy", "vpcep-operator")["spec"]["ingress"]
    gateway_labels = rendered.one("Deployment", "vpcep-gateway")["spec"]["selector"]["matchLabels"]
    assert {"from": [{"podSelector": {"matchLabels": gateway_labels}}],
            "ports": [{"protocol": "TCP", "port": config.port}]} in ingress  # fmt: skip


def test_the_gateways_get_the_channels_ca_never_its_key_and_it_verifies_the_service_name(
    tmp_path: pathlib.Path,
) -> None:
    rendered = render()
    secret = rendered.one("Secret", "vpcep-gateway-channel-tls")
    gateway = rendered.one("Deployment", "vpcep-gateway")["spec"]["template"]["spec"]
    (volume,) = [
        v for v in gateway["volumes"] if v.get("secret", {}).get("secretName") == secret["metadata"]["name"]
    ]
    assert volume["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}], (
        "the key stays with the operator"
    )
    for key in ("ca.crt", "tls.crt"):
        (tmp_path / key).write_bytes(base64.b64decode(secret["data"][key]))
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tmp_path / "ca.crt"),
         "-verify_hostname", "vpcep-gateway-channel.vpcep-system.svc", str(tmp_path / "tls.crt")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
