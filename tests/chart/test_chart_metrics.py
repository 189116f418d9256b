"""The chart's observability parts (issue 12): metrics ports and Services, optional monitors, the Grafana
dashboard ConfigMap and the PrometheusRule, which must pass Prometheus' own ``promtool check rules``.

That every query names a metric the product really serves is checked against live scrapes in
tests/integration/test_observability.py.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml
from chart_rendering import Rendered, RenderError, render

KUBERNETES_VERSION = "1.30"
ALL_ON = (
    "metrics.serviceMonitor.enabled=true",
    "metrics.podMonitor.enabled=true",
    "metrics.alerts.enabled=true",
)


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    """The container serving /metrics: the operator's only one, or the gateway's agent (HAProxy beside it)."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    container: dict[str, Any] = next(c for c in containers if c["name"] in ("operator", "agent"))
    return container


def _metrics_port(deployment: dict[str, Any]) -> int:
    ports = [p["containerPort"] for p in _container(deployment)["ports"] if p["name"] == "metrics"]
    assert len(ports) == 1, _container(deployment)["ports"]
    return int(ports[0])


def rules_of(rendered: Rendered) -> dict[str, Any]:
    spec: dict[str, Any] = rendered.one("PrometheusRule", "vpcep-alerts")["spec"]
    return spec


def test_both_programs_serve_metrics_on_the_documented_ports_behind_headless_services() -> None:
    rendered = render()
    for component, port in (("operator", 9090), ("gateway", 9464)):
        deployment = rendered.one("Deployment", f"vpcep-{component}")
        assert _metrics_port(deployment) == port
        assert f"--metrics-port={port}" in _container(deployment)["args"]
        service = rendered.one("Service", f"vpcep-{component}-metrics")
        assert service["spec"]["clusterIP"] == "None", "each pod is scraped, not one behind a load balancer"
        assert service["spec"]["ports"][0]["targetPort"] == "metrics"
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items()
        kubernetes_validate.validate(service, KUBERNETES_VERSION, strict=True)


def test_monitors_and_rules_only_when_asked_for() -> None:
    defaults = render()
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
        assert not defaults.all(kind), f"{kind} needs prometheus-operator's CRDs: off by default"
    enabled = render(*ALL_ON)
    assert enabled.names("ServiceMonitor") == {"vpcep-operator", "vpcep-gateway"}
    assert enabled.names("PodMonitor") == {"vpcep-operator", "vpcep-gateway"}
    services = enabled.all("Service")
    for monitor in enabled.all("ServiceMonitor"):  # each selects exactly its metrics Service
        selected = [
            s
            for s in services
            if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
        ]
        assert [s["metadata"]["name"] for s in selected] == [f"{monitor['metadata']['name']}-metrics"]
        assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
        # namespace/endpoint/service are the series' own labels, not the scrape target's
        assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
    for monitor in enabled.all("PodMonitor"):
        assert monitor["spec"]["podMetricsEndpoints"][0]["honorLabels"] is True
    off = render("metrics.enabled=false", *ALL_ON)
    assert not off.all("ServiceMonitor") and not off.all("PrometheusRule") and not off.all("PodMonitor")
    assert not any("metrics" in name for name in off.names("Service"))
    assert not any(
        a.startswith("--metrics-port") for a in _container(off.one("Deployment", "vpcep-gateway"))["args"]
    )


def test_the_dashboard_is_a_sidecar_configmap_with_endpoint_and_service_panels() -> None:
    configmap = render().one("ConfigMap", "vpcep-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(configmap["data"]["vpcep.json"])
    titles = [panel["title"] for panel in dashboard["panels"] if panel["type"] == "row"]
    assert any(title.startswith("Endpoints") for title in titles)
    assert any(title.startswith("Services") for title in titles)
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "endpoint", "service"} <= variables
    assert "vpcep-dashboard" not in render("metrics.dashboard.enabled=false").names("ConfigMap")


def test_rules_pass_promtool(tmp_path: pathlib.Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool is not installed: hack/setup installs Debian's 'prometheus' package, which ships it"
        )
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": rules_of(render(*ALL_ON))["groups"]}))
    result = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout, result.stdout


def test_alert_thresholds_come_from_the_values(tmp_path: pathlib.Path) -> None:
    values = tmp_path / "values.yaml"  # a file: --set gives 0.5 as a string
    values.write_text(
        yaml.safe_dump(
            {"metrics": {"alerts": {"connectionCapRatio": 0.5, "stuckCreatingSeconds": 120, "for": "1m"}}}
        )
    )
    rules = rules_of(render(*ALL_ON, values_file=str(values)))
    by_name = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert "> 0.5)" in by_name["VpcepEndpointNearConnectionCap"]["expr"]
    assert by_name["VpcepEndpointNearConnectionCap"]["for"] == "1m"
    assert by_name["VpcepEndpointStuckCreating"]["expr"].endswith("> 120")


@pytest.mark.parametrize(
    ("assignment", "named"),
    [
        ("metrics.gateway.port=20500", "metrics.gateway.port"),  # inside gateway.ports: an endpoint's port
        ("metrics.gateway.port=8081", "gateway.healthPort"),
        ("metrics.alerts.connectionCapRatio=2", "connectionCapRatio"),
        ("metrics.serviceMonitor.interval=often", "interval"),
    ],
)
def test_bad_metrics_values_are_refused_naming_the_key(assignment: str, named: str) -> None:
    with pytest.raises(RenderError, match=named):
        render(assignment)
