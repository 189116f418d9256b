"""Observability end to end (issue 12), on the test API server with the real operator and a real gateway:

- the operator's /metrics follows what happens (phases, pending connections, quota, ready gateways,
  reconciles, webhook calls and denials by reason);
- the gateway's /metrics names the consumer's namespace and Endpoint and the service for each endpoint
  id, as the operator wrote them into the route;
- every metric the chart's dashboard and alert rules query is in these real scrapes;
- the Argo CD health check gives the right verdict on status objects the operator really wrote.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import socket
import socketserver
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gitops.argocd_health import health
from integration.conftest import delete_namespaces, start_operator
from integration.helpers import (
    Cluster,
    OperatorProcess,
    free_port_run,
    phase_is,
    running_echo_pod,
    running_gateway_agent,
    wait_for,
)
from integration.test_real_gateway import Echo, _free_port

pytestmark = pytest.mark.cluster
PID = os.getpid()
PROVIDER, CONSUMER = f"obs-prov-{PID}", f"obs-cons-{PID}"
ACCOUNT = f"obs-{PID}"
OPERATOR_METRICS, GATEWAY_METRICS = _free_port(), _free_port()
REPO = pathlib.Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "vpcep-operator"


class Scrape:
    def __init__(self, port: int) -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
            self.text = answer.read().decode()
        self.samples = [s for family in text_string_to_metric_families(self.text) for s in family.samples]

    @property
    def names(self) -> set[str]:
        return {sample.name for sample in self.samples}

    def value(self, name: str, **labels: str) -> float:
        """The sum of the series of ``name`` that carry these labels (0 when there is none)."""
        return sum(s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items())


@pytest.fixture(scope="module")
def echo_server() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def operator(
    kube: Cluster, operator_namespace: str, loopback_certificate: tuple[pathlib.Path, pathlib.Path]
) -> Iterator[OperatorProcess]:
    cert, key = loopback_certificate
    configuration = f"vpcep-obs-{PID}"
    first = free_port_run(10)
    process = start_operator(
        kube,
        operator_namespace,
        "--webhook-managed", configuration,
        "--webhook-address", "127.0.0.1",
        "--webhook-host", "127.0.0.1",
        "--webhook-port", str(_free_port()),
        "--webhook-cert", str(cert),
        "--webhook-key", str(key),
        "--webhook-ca", str(cert),
        "--metrics-address", "127.0.0.1",
        "--metrics-port", str(OPERATOR_METRICS),
        config={"gatewayPorts": {"first": first, "last": first + 9}},
    )  # fmt: skip
    try:
        wait_for(
            "the managed ValidatingWebhookConfiguration",
            lambda: kube.get("validatingwebhookconfiguration", None, configuration),
            timeout=30,
        )
        yield process
        delete_namespaces(kube, PROVIDER, CONSUMER, operator_namespace)
    finally:
        process.stop()
        kube.kubectl(
            "delete", "validatingwebhookconfiguration", configuration, "--ignore-not-found", check=False
        )


@pytest.fixture(scope="module")
def gateway(kube: Cluster, operator: OperatorProcess) -> Iterator[str]:
    with running_gateway_agent(
        kube,
        operator.namespace,
        f"obs-{PID}",
        "--heartbeat-interval",
        "2",
        "--metrics-port",
        str(GATEWAY_METRICS),
    ) as runtime:
        yield runtime


def pod_service(name: str, server_port: int, approval: bool) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "vpcep.io/v1alpha1",
            "kind": "EndpointService",
            "metadata": {"name": name, "namespace": PROVIDER},
            "spec": {
                "backend": {"kind": "Pod", "name": "echo"},
                "ports": [{"serverPort": server_port, "clientPort": 80}],
                "approvalRequired": approval,
            },
        }
    )


@pytest.fixture(scope="module")
def world(kube: Cluster, operator: OperatorProcess, gateway: str, echo_server: int) -> dict[str, Any]:
    """A provider with two services (one needing approval) and a consumer with an endpoint to each."""
    kube.namespace(PROVIDER, ACCOUNT)
    kube.namespace(CONSUMER, ACCOUNT)
    running_echo_pod(kube, PROVIDER)
    kube.apply_text(pod_service("echo", echo_server, approval=False))
    kube.apply_text(pod_service("gated", echo_server, approval=True))
    open_name = wait_for("echo Available", phase_is(kube, "vpces", PROVIDER, "echo", "Available"))[
        "serviceName"
    ]
    gated_name = wait_for("gated Available", phase_is(kube, "vpces", PROVIDER, "gated", "Available"))[
        "serviceName"
    ]
    kube.apply("endpoint.yaml", name="echo", namespace=CONSUMER, service_name=open_name)
    kube.apply("endpoint.yaml", name="gated", namespace=CONSUMER, service_name=gated_name)
    accepted = wait_for("echo Accepted", phase_is(kube, "vpce", CONSUMER, "echo", "Accepted"))
    pending = wait_for("gated pending", phase_is(kube, "vpce", CONSUMER, "gated", "PendingAcceptance"))
    return {"service_name": open_name, "accepted": accepted, "pending": pending}


def round_trip(port: int) -> bytes:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            connection.sendall(b"hello")
            return connection.recv(1024)
    except OSError:
        return b""


def test_the_operator_metrics_follow_phases_pending_quota_gateways_and_the_webhook(
    kube: Cluster, world: dict[str, Any]
) -> None:
    # A refused write: the webhook counts the call and the denial under the rule that refused it (R15).
    result = kube.apply(
        "endpoint.yaml", check=False, name="typo", namespace=CONSUMER, service_name="local-1.nope.0000"
    )
    assert result.returncode != 0
    scrape = wait_for(
        "the operator's figures",
        lambda: (
            (s := Scrape(OPERATOR_METRICS)).value("vpcep_connections_pending_acceptance", namespace=PROVIDER)
            == 1
            and s
        ),
    )
    assert scrape.value("vpcep_endpoints", phase="Accepted") >= 1
    assert scrape.value("vpcep_endpoints", phase="PendingAcceptance") >= 1
    assert scrape.value("vpcep_endpoint_services", phase="Available") >= 2
    assert scrape.value("vpcep_endpoint_oldest_waiting_seconds", phase="PendingAcceptance") >= 0
    assert scrape.value("vpcep_quota_used", account=ACCOUNT, kind="endpoints") == 2
    assert scrape.value("vpcep_quota_used", account=ACCOUNT, kind="services") == 2
    assert scrape.value("vpcep_quota_limit", account=ACCOUNT, kind="endpoints") == 50
    assert scrape.value("vpcep_quota_used", account=ACCOUNT, kind="gatewayPorts") >= 1  # R49
    assert scrape.value("vpcep_quota_limit", account=ACCOUNT, kind="gatewayPorts") == 200
    assert scrape.value("vpcep_quota_limit", account=ACCOUNT, kind="whitelists") == 50
    assert scrape.value("vpcep_gateways_ready") >= 1
    assert scrape.value("vpcep_caches_primed") == 1
    assert scrape.value("vpcep_reconciles_total", kind="Endpoint") >= 2
    assert scrape.value("vpcep_reconcile_duration_seconds_count", kind="Endpoint") >= 2
    assert scrape.value("vpcep_workqueue_wait_seconds_count") >= 2
    assert scrape.value("vpcep_webhook_requests_total", kind="Endpoint", operation="CREATE") >= 3
    assert scrape.value("vpcep_webhook_denials_total", kind="Endpoint", reason="ServiceNotFound") >= 1


def test_the_gateway_names_each_endpoint_as_the_operator_routed_it(
    kube: Cluster, world: dict[str, Any]
) -> None:
    accepted = world["accepted"]
    endpoint_id = accepted["endpointId"]
    port = accepted["gatewayPorts"][0]["gatewayPort"]
    assert wait_for("bytes through the gateway", lambda: round_trip(port), timeout=15) == b"echo:hello"
    scrape = Scrape(GATEWAY_METRICS)
    names = {"namespace": CONSUMER, "endpoint": "echo", "service": world["service_name"]}
    assert scrape.value("vpcep_gateway_endpoint_info", endpoint_id=endpoint_id, **names) == 1
    assert scrape.value("vpcep_gateway_endpoint_connections_total", endpoint_id=endpoint_id) >= 1
    assert scrape.value("vpcep_gateway_endpoint_max_connections", endpoint_id=endpoint_id) == 3000
    # The provider's backend address is not a label: metrics name consumers, never backends (R46).
    assert "127.0.0.1" not in "".join(
        f"{s.labels}" for s in scrape.samples if s.name.startswith("vpcep_gateway")
    )


def _queried_metrics() -> dict[str, set[str]]:
    """Metric names each dashboard panel and alert rule of the chart queries."""
    dashboard = json.loads((CHART / "files" / "dashboards" / "vpcep.json").read_text())
    rendered = subprocess.run(
        [str(REPO / "hack" / "render-chart"), "vpcep", "--set", "metrics.alerts.enabled=true"],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    rules = next(d for d in yaml.safe_load_all(rendered.stdout) if d and d["kind"] == "PrometheusRule")
    queried: dict[str, set[str]] = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queried.setdefault(f"panel {panel['title']!r}", set()).update(
                re.findall(r"\bvpcep_\w+", target["expr"])
            )
    for variable in dashboard["templating"]["list"]:
        query = variable.get("definition") or ""
        queried.setdefault(f"variable {variable['name']}", set()).update(re.findall(r"\bvpcep_\w+", query))
    for group in rules["spec"]["groups"]:
        for rule in group["rules"]:
            queried[f"alert {rule['alert']}"] = set(re.findall(r"\bvpcep_\w+", rule["expr"]))
    return queried


def test_every_dashboard_query_and_alert_names_a_metric_the_product_serves(world: dict[str, Any]) -> None:
    served = Scrape(OPERATOR_METRICS).names | Scrape(GATEWAY_METRICS).names
    queried = _queried_metrics()
    assert sum(1 for where in queried if where.startswith("alert")) == 10, sorted(queried)
    assert sum(1 for where in queried if where.startswith("panel")) >= 20
    missing = {where: sorted(names - served) for where, names in queried.items() if names - served}
    assert not missing, f"queried but in no real scrape: {missing}"


def test_argo_cd_health_of_status_objects_the_operator_wrote(kube: Cluster, world: dict[str, Any]) -> None:
    assert health(kube.get("vpces", PROVIDER, "echo"))[0] == "Healthy"
    status, message = health(kube.get("vpce", CONSUMER, "echo"))
    assert status == "Healthy" and message.startswith("Accepted: ") and "connected to" in message, message
    status, message = health(kube.get("vpce", CONSUMER, "gated"))
    assert status == "Progressing" and message.startswith("PendingAcceptance")
    connection_id = world["pending"]["endpointId"]
    assert health(kube.get("vpcec", PROVIDER, connection_id))[0] == "Progressing"
    kube.apply("connection-decision.yaml", name=connection_id, namespace=PROVIDER, decision="Reject")
    wait_for("gated Rejected", phase_is(kube, "vpce", CONSUMER, "gated", "Rejected"))
    status, message = health(kube.get("vpce", CONSUMER, "gated"))
    assert status == "Degraded" and message.startswith("Rejected"), message
    wait_for(
        "the connection to show Rejected",
        lambda: kube.status("vpcec", PROVIDER, connection_id).get("state") == "Rejected",
    )
    assert health(kube.get("vpcec", PROVIDER, connection_id))[0] == "Degraded"
    kube.apply("whitelist.yaml", name="nowhere", namespace=PROVIDER, service="missing", accounts="['*']")
    failed = wait_for("the whitelist to fail", phase_is(kube, "whitelists", PROVIDER, "nowhere", "Failed"))
    status, message = health(kube.get("whitelists", PROVIDER, "nowhere"))
    assert status == "Degraded" and failed["message"] in message
