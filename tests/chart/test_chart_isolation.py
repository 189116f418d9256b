"""The chart's ingress NetworkPolicies for its own pods: gateways deny by default (R42), the operator accepts
only the webhook port from the configured sources (R46)."""

from __future__ import annotations

import pathlib

import pytest
import yaml
from chart_rendering import Rendered, RenderError, operator_config, render

GATEWAY_PODS = {"app.kubernetes.io/name": "vpcep-gateway", "app.kubernetes.io/instance": "vpcep"}
OPERATOR_PODS = {"app.kubernetes.io/name": "vpcep-operator", "app.kubernetes.io/instance": "vpcep"}


def _policy(rendered: Rendered, name: str) -> dict:
    return rendered.one("NetworkPolicy", name)


def test_gateways_deny_all_ingress_by_default_and_the_operator_admits_per_namespace_R42(
    defaults: Rendered,
) -> None:
    deny = _policy(defaults, "vpcep-gateway-default-deny")
    # Ingress type with no rules: nothing is admitted.
    assert deny["spec"] == {"podSelector": {"matchLabels": GATEWAY_PODS}, "policyTypes": ["Ingress"]}
    # The gateway pods the chart runs are the pods the operator's per-namespace policies select.
    [gateway] = [d for d in defaults.all("Deployment") if d["metadata"]["name"] == "vpcep-gateway"]
    pod_labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert GATEWAY_PODS.items() <= pod_labels.items()
    config = operator_config(defaults)
    assert config["gatewayPodLabels"] == GATEWAY_PODS and config["gatewayIngressPolicy"] is True


def test_health_sources_and_extra_rules_are_added_but_only_as_asked(tmp_path: pathlib.Path) -> None:
    scraper = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    extra = {"from": [scraper], "ports": [{"protocol": "TCP", "port": 9100}]}
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump({"gateway": {"ingressPolicy": {"healthFrom": [scraper], "extraIngress": [extra]}}})
    )
    rules = _policy(render(values_file=str(values)), "vpcep-gateway-default-deny")["spec"]["ingress"]
    assert rules == [{"from": [scraper], "ports": [{"protocol": "TCP", "port": 8081}]}, extra]


def test_metrics_ports_admit_only_the_configured_scrapers_R46(tmp_path: pathlib.Path) -> None:
    """The gateway series name consumers and their Endpoints: nobody scrapes them until a scraper is named."""
    scraper = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"metrics": {"scrapeFrom": [scraper]}}))
    rendered = render(values_file=str(values))
    gateway_rules = _policy(rendered, "vpcep-gateway-default-deny")["spec"]["ingress"]
    assert gateway_rules == [{"from": [scraper], "ports": [{"protocol": "TCP", "port": 9464}]}]
    operator_rules = _policy(rendered, "vpcep-operator")["spec"]["ingress"]
    assert {"from": [scraper], "ports": [{"protocol": "TCP", "port": 9090}]} in operator_rules
    assert all(rule["from"] != [scraper] for rule in _policy(render(), "vpcep-operator")["spec"]["ingress"])


def test_gateway_isolation_can_be_switched_off_for_the_chart_and_the_operator() -> None:
    rendered = render("gateway.ingressPolicy.enabled=false")
    assert "vpcep-gateway-default-deny" not in rendered.names("NetworkPolicy")
    assert operator_config(rendered)["gatewayIngressPolicy"] is False


def test_operator_pods_accept_only_the_webhook_port_from_the_allowed_cidrs_R46() -> None:
    rendered = render("webhook.allowedCIDRs[0]=10.0.0.0/24", "webhook.allowedCIDRs[1]=192.168.10.0/28")
    policy = _policy(rendered, "vpcep-operator")
    assert policy["spec"]["podSelector"] == {"matchLabels": OPERATOR_PODS}
    assert policy["spec"]["ingress"] == [
        {
            "from": [{"ipBlock": {"cidr": "10.0.0.0/24"}}, {"ipBlock": {"cidr": "192.168.10.0/28"}}],
            "ports": [{"protocol": "TCP", "port": 9443}],
        },
        CHANNEL_FROM_GATEWAYS,
    ]


# R45: the release's gateway pods, to the gateway channel's port only
CHANNEL_FROM_GATEWAYS = {
    "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "vpcep-gateway",
                                               "app.kubernetes.io/instance": "vpcep"}}}],
    "ports": [{"protocol": "TCP", "port": 9444}],
}  # fmt: skip


def test_without_the_webhook_the_operator_pods_accept_only_the_gateways_on_the_channel() -> None:
    policy = _policy(render("webhook.enabled=false"), "vpcep-operator")
    assert policy["spec"]["ingress"] == [CHANNEL_FROM_GATEWAYS]
    alone = _policy(render("webhook.enabled=false", "gateway.apiChannel.enabled=false"), "vpcep-operator")
    assert "ingress" not in alone["spec"] and alone["spec"]["policyTypes"] == ["Ingress"]


def test_without_cluster_access_the_default_webhook_sources_are_everyone_and_notes_say_so(
    defaults: Rendered,
) -> None:
    """Rendered without a cluster (`helm template`, GitOps renderers), Helm cannot read the API server's
    address: the port stays open to all and the install notes tell the user to narrow it (R46). With cluster
    access the default is the API server's own address (tests/e2e/test_helm_install.py)."""
    [rule, channel] = _policy(defaults, "vpcep-operator")["spec"]["ingress"]
    assert rule["from"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}]
    assert channel == CHANNEL_FROM_GATEWAYS
    assert "admits every source" in defaults.notes and "webhook.allowedCIDRs" in defaults.notes
    narrowed = render("webhook.allowedCIDRs[0]=10.0.0.0/24")
    assert "admits every source" not in narrowed.notes


@pytest.mark.parametrize(
    "assignment", ["webhook.allowedCIDRs={everyone}", "webhook.allowedCIDRs[0]=10.0.0.0"]
)
def test_a_webhook_source_that_is_no_cidr_is_refused(assignment: str) -> None:
    with pytest.raises(RenderError) as refused:
        render(assignment)
    assert "webhook.allowedCIDRs" in str(refused.value) or "allowedCIDRs" in str(refused.value)
