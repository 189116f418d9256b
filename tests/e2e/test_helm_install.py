"""Install as users do (issue 18 deliverable 2, R51): `helm install` of the chart with its default values, a
release name other than the chart's, a namespace Helm creates; the kubelet stand-in runs the operator pod as
the manifest says (image entrypoint, uid 10001 without a passwd entry, read-only root, the ServiceAccount's
token, the probes). The operator must become ready, the default cloud service Available, a bad object be
refused by the webhook, and nothing be left Failed."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from releases import Release, get, install_and_run, listen_ports, new_release, status, wait_for

from helm_engine import CHART, helm

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def installed(
    fresh_cluster: Any, loopback_certificate: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    name, namespace, config = new_release(fresh_cluster, "plink", "privatelink")
    release = install_and_run(
        fresh_cluster,
        config,
        name,
        namespace,
        listen_ports(),
        tmp_path_factory.mktemp("kubelet"),
        loopback_certificate,
    )
    try:
        yield release
    finally:
        release.kubelet.stop()
        config.close()


def test_helm_install_creates_the_namespace_and_records_the_release(
    fresh_cluster: Any, installed: Release
) -> None:
    assert fresh_cluster.kubectl_run("get", "namespace", installed.namespace, "-o", "name").stdout.strip()
    (listed,) = [r for r in installed.config.list(all_namespaces=True) if r["name"] == installed.name]
    assert listed["status"] == "deployed" and listed["namespace"] == installed.namespace
    print(f"helm install {installed.install_seconds:.1f} s, operator ready {installed.ready_seconds:.1f} s")


def test_the_operator_runs_as_the_manifest_says(installed: Release) -> None:
    """uid 10001 has no passwd entry here (as in the image): kopf's getuser() must not stop it (issue 18)."""
    operator = installed.operator
    assert operator.process is not None and operator.process.poll() is None
    assert operator.restarts == 0, installed.kubelet.logs()
    assert "--reuid=10001" in operator.argv[-1] and "remount,bind,ro /" in operator.argv[-1]


def test_the_default_cloud_service_becomes_available(fresh_cluster: Any, installed: Release) -> None:
    """R37, R51: the operator publishes its cloud services under its own webhook and they become Available."""
    wait_for(
        "the dns cloud service to be Available",
        lambda: (
            status(fresh_cluster, "endpointservices", installed.namespace, "dns").get("phase") == "Available"
        ),
        timeout=60,
        logs=installed.kubelet.logs,
    )


def test_nothing_is_left_failed(fresh_cluster: Any, installed: Release) -> None:
    listed = json.loads(fresh_cluster.kubectl_run("get", "endpointservices", "-A", "-o", "json").stdout)[
        "items"
    ]
    assert listed, "no cloud service was published"
    assert [o["metadata"]["name"] for o in listed if (o.get("status") or {}).get("phase") == "Failed"] == []


def test_a_bad_object_is_refused_by_the_webhook(fresh_cluster: Any, installed: Release) -> None:
    """R15 at admission: an Endpoint naming a service that does not exist, refused by the chart's webhook."""
    tenant = fresh_cluster.create_namespace("tenant")
    endpoint = {
        "apiVersion": "vpcep.io/v1alpha1",
        "kind": "Endpoint",
        "metadata": {"name": "nowhere", "namespace": tenant},
        "spec": {"serviceName": f"local-1.nosuch.{uuid.uuid4()}"},
    }
    refused = fresh_cluster.kubectl_run("create", "-f", "-", input=json.dumps(endpoint), check=False)
    assert refused.returncode != 0
    assert 'admission webhook "validate-endpoint.vpcep.io" denied the request' in refused.stderr, (
        refused.stderr
    )
    assert "not found: check the name and the region" in refused.stderr, refused.stderr


def test_only_the_api_server_may_reach_the_webhook_port_by_default_R46(
    fresh_cluster: Any, installed: Release
) -> None:
    """With default values, `helm install` reads the API server's addresses and admits only them to the
    webhook port; the notes do not warn (they do where Helm cannot look: see
    tests/chart/test_chart_isolation.py)."""
    policy = get(fresh_cluster, "networkpolicy", installed.namespace, f"{installed.name}-operator")
    host = urlparse(fresh_cluster.server).hostname
    webhook_port = installed.config.get_values(installed.name)["webhook"]["port"]
    assert policy["spec"]["ingress"] == [
        {
            "from": [{"ipBlock": {"cidr": f"{host}/32"}}],
            "ports": [{"protocol": "TCP", "port": webhook_port}],
        }
    ]
    assert "admits every source" not in installed.config.status(installed.name)["notes"]


def test_the_gateways_may_reach_only_the_api_servers_own_addresses_and_ports_R45(
    fresh_cluster: Any, installed: Release
) -> None:
    """R45/R47: `helm install` reads the API server's addresses (its `kubernetes` EndpointSlice and Service):
    the gateway egress policy admits exactly them, each on its own port, beside DNS and pods -- no catch-all
    block the gateway's HAProxy could use -- and the agent refuses to dial them."""
    url = urlparse(fresh_cluster.server)
    policy = get(fresh_cluster, "networkpolicy", installed.namespace, f"{installed.name}-gateway-egress")
    blocks = [rule for rule in policy["spec"]["egress"] if any("ipBlock" in peer for peer in rule["to"])]
    expected = {
        "to": [{"ipBlock": {"cidr": f"{url.hostname}/32"}}],
        "ports": [{"protocol": "TCP", "port": url.port}],
    }
    assert expected in blocks
    kubernetes = get(fresh_cluster, "service", "default", "kubernetes")
    cluster_ips = {f"{ip}/32" for ip in (kubernetes.get("spec") or {}).get("clusterIPs") or []}
    assert {peer["ipBlock"]["cidr"] for rule in blocks for peer in rule["to"]} == {
        f"{url.hostname}/32",
        *cluster_ips,
    }
    deployment = get(fresh_cluster, "deployment", installed.namespace, f"{installed.name}-gateway")
    [agent] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "agent"]
    assert f"--denied-cidr={url.hostname}/32" in agent["args"]


@pytest.mark.parametrize(
    ("release", "values", "refusal"),
    [
        ("bad", {"gateway": {"replicas": "two"}}, "'/gateway/replicas': got string, want integer"),
        ("bad", {"gateway": {"replica": 2}}, "additional properties 'replica' not allowed"),
        ("r" * 54, {}, "must not be longer than 53"),
    ],
    ids=["wrong-type", "unknown-key", "name-too-long"],
)
def test_bad_input_is_refused_by_helm_install_and_nothing_is_installed(
    fresh_cluster: Any, installed: Release, release: str, values: dict[str, Any], refusal: str
) -> None:
    _name, namespace, config = new_release(fresh_cluster, "bad")
    with config, helm.Chart.load(CHART) as chart:
        with pytest.raises(helm.HelmError, match=re.escape(refusal)):
            config.install(chart, release, values, namespace=namespace, create_namespace=True, timeout=60)
        assert [r["name"] for r in config.list(all_namespaces=True)] == [installed.name]
    assert get(fresh_cluster, "namespace", None, namespace) == {}
