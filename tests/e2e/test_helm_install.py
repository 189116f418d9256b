"""Install as users do (issue 18 deliverable 2, R51): `helm install` of the chart with its default values, a
release name other than the chart's, a namespace Helm creates; the kubelet stand-in runs the operator pod as
the manifest says (image entrypoint, uid 10001 without a passwd entry, read-only root, the ServiceAccount's
token, the probes). The operator must become ready, the default cloud service Available, a bad object be
refused by the webhook, and nothing be left Failed."""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from kubelet import Container
from releases import Release, get, install_and_run, listen_ports, new_release, status, tenant, wait_for
from traffic import Scene, Traffic

from dataplane.netns import connect
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
    tests/chart/test_chart_isolation.py). The one other way in: the release's gateway pods, to the gateway
    channel's port only (R45)."""
    policy = get(fresh_cluster, "networkpolicy", installed.namespace, f"{installed.name}-operator")
    host = urlparse(fresh_cluster.server).hostname
    values = installed.config.get_values(installed.name)
    gateways = {"app.kubernetes.io/instance": installed.name, "app.kubernetes.io/name": "vpcep-gateway"}
    assert policy["spec"]["ingress"] == [
        {
            "from": [{"ipBlock": {"cidr": f"{host}/32"}}],
            "ports": [{"protocol": "TCP", "port": values["webhook"]["port"]}],
        },
        {
            "from": [{"podSelector": {"matchLabels": gateways}}],
            "ports": [{"protocol": "TCP", "port": values["gateway"]["apiChannel"]["port"]}],
        },
    ]
    assert "admits every source" not in installed.config.status(installed.name)["notes"]


def test_the_gateways_have_no_way_to_the_api_server_but_the_operators_channel_R45(
    fresh_cluster: Any, installed: Release
) -> None:
    """R45/R47 with the chart's defaults: the gateway egress policy admits no address outside the pod network
    (no rule a compromised HAProxy could use to reach the API server) and the operator pods on the gateway
    channel's port; the agent is aimed at the channel and, as defence in depth, still writes no server line
    for the API server's own addresses, which `helm install` read."""
    url = urlparse(fresh_cluster.server)
    policy = get(fresh_cluster, "networkpolicy", installed.namespace, f"{installed.name}-gateway-egress")
    assert not [peer for rule in policy["spec"]["egress"] for peer in rule["to"] if "ipBlock" in peer], policy
    channel_port = installed.config.get_values(installed.name, all_values=True)["gateway"]["apiChannel"][
        "port"
    ]
    operator_labels = get(fresh_cluster, "service", installed.namespace, f"{installed.name}-gateway-channel")[
        "spec"
    ]["selector"]
    assert {
        "to": [{"podSelector": {"matchLabels": operator_labels}}],
        "ports": [{"protocol": "TCP", "port": channel_port}],
    } in policy["spec"]["egress"]
    deployment = get(fresh_cluster, "deployment", installed.namespace, f"{installed.name}-gateway")
    [agent] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "agent"]
    assert f"--denied-cidr={url.hostname}/32" in agent["args"]
    env = {e["name"]: e.get("value") for e in agent["env"]}
    assert env["GATEWAY_API_SERVER"] == (
        f"https://{installed.name}-gateway-channel.{installed.namespace}.svc:{channel_port}"
    )


@dataclass
class GatewayPod:
    scene: Scene
    name: str
    containers: list[Container]

    def logs(self) -> str:
        return "\n".join(
            f"--- {c.spec['name']}\n{c.log.read_text(errors='replace')[-3000:]}" for c in self.containers
        )


@pytest.fixture(scope="module")
def gateway_pod(
    fresh_cluster: Any, installed: Release, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayPod]:
    """One pod of the chart's gateway Deployment, both containers as rendered, run by the kubelet stand-in in
    the gateway network of a consumer/gateway/provider topology (traffic.py): routes to the consumer and the
    provider, none to the API server -- what the gateway egress policy leaves a gateway pod with the
    channel on."""
    scene = Scene(fresh_cluster, tmp_path_factory.mktemp("gateway-pod"))
    try:
        containers = installed.kubelet.run_pod_in(
            installed.namespace, f"{installed.name}-gateway", scene.net.gateway, scene.net.gateway_consumer_ip
        )
        yield GatewayPod(scene, containers[0].pod, containers)
        installed.kubelet.end(containers)
    finally:
        scene.close()


@pytest.mark.netns
def test_the_gateway_pod_as_rendered_serves_a_tenant_through_the_channel_alone_R45(
    fresh_cluster: Any, installed: Release, gateway_pod: GatewayPod
) -> None:
    """R45/R47 end to end, with the chart's defaults: the gateway pod cannot open a connection to the API
    server, yet it lists its routes and writes its status through the operator pod's gateway channel (the
    Service's name resolved in the pod as cluster DNS would, the chart's own certificate verified against the
    CA the pod mounts, its ServiceAccount's token bound to the pod), and carries a consumer's bytes."""
    scene = gateway_pod.scene
    url = urlparse(fresh_cluster.server)
    with pytest.raises(OSError):
        connect(scene.net.gateway, url.hostname or "127.0.0.1", url.port or 443, timeout=1).close()

    def logs() -> str:
        return installed.kubelet.logs() + "\n" + gateway_pod.logs()

    wait_for(
        "the gateway pod's status",
        lambda: get(fresh_cluster, "configmap", installed.namespace, f"vpcep-gateway-{gateway_pod.name}"),
        timeout=60,
        logs=logs,
    )
    provider, consumer = tenant(fresh_cluster, logs, backend_pod=scene.backend_pod)
    wait_for(
        "the endpoint to be Accepted",
        lambda: status(fresh_cluster, "endpoints.vpcep.io", consumer, "db").get("phase") == "Accepted",
        timeout=60,
        logs=logs,
    )
    traffic = Traffic(scene.net, scene.route(consumer, "db"))
    wait_for("bytes through the gateway pod", traffic.passes, timeout=30, logs=logs)
    assert all(c.restarts == 0 for c in gateway_pod.containers), logs()
    assert provider != consumer


def _channel(cluster: Any, release: Release, token: str) -> Any:
    """Requests to the gateway channel as a gateway pod sends them: HTTPS to the operator pod's channel port,
    the certificate verified by the Service's name against the chart's CA, the token as bearer."""
    service = f"{release.name}-gateway-channel"
    secret = get(cluster, "secret", release.namespace, f"{service}-tls")
    context = ssl.create_default_context(cadata=base64.b64decode(secret["data"]["ca.crt"]).decode())
    port = release.config.get_values(release.name, all_values=True)["gateway"]["apiChannel"]["port"]

    def ask(method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        host = f"{service}.{release.namespace}.svc"
        connection = http.client.HTTPSConnection(host, port, context=context, timeout=10)
        # The operator pod shares this machine's network here: its channel listens on 127.0.0.1 too.
        connection.sock = context.wrap_socket(
            socket.create_connection(("127.0.0.1", port)), server_hostname=host
        )
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        connection.request(method, path, body=json.dumps(body) if body else None, headers=headers)
        answer = connection.getresponse()
        loaded: dict[str, Any] = json.loads(answer.read() or b"{}")
        connection.close()
        return answer.status, loaded

    return ask


@pytest.mark.netns
def test_a_gateways_token_through_the_channel_reaches_its_routes_and_its_own_status_only_R45_R47(
    fresh_cluster: Any, installed: Release, gateway_pod: GatewayPod
) -> None:
    """The hostile gateway: with the pod's own token (as a compromised agent container holds it), through the
    chart's channel, it lists the route ConfigMaps and nothing else -- Secrets are refused by the channel
    before the API server is asked -- and cannot write another gateway's status: the chart's admission
    policy sees the same token the channel passes on, bound to this pod (R47)."""
    namespace = installed.namespace
    token = fresh_cluster.token_for(
        f"system:serviceaccount:{namespace}:{installed.name}-gateway",
        extra={"authentication.kubernetes.io/pod-name": gateway_pod.name},
    )
    ask = _channel(fresh_cluster, installed, token)
    listed, routes = ask(
        "GET", f"/api/v1/namespaces/{namespace}/configmaps?labelSelector=vpcep.io%2Froute%3Dtrue"
    )
    assert listed == 200 and routes["kind"] == "ConfigMapList", routes
    refused, answer = ask("GET", f"/api/v1/namespaces/{namespace}/secrets")
    assert refused == 403 and answer["message"].startswith("vpcep gateway channel:"), answer
    intruder = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "vpcep-gateway-someone-else"}}
    refused, answer = ask("POST", f"/api/v1/namespaces/{namespace}/configmaps", intruder)
    assert refused == 403, answer
    assert f"may write only its own status ConfigMap vpcep-gateway-{gateway_pod.name}" in answer["message"], (
        answer
    )
    assert get(fresh_cluster, "configmap", namespace, "vpcep-gateway-someone-else") == {}


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
