"""R47 with the chart's gateway Role and admission policy on a real API server (RBAC and
ValidatingAdmissionPolicy enforced): a gateway -- acting with the token the kubelet binds to its pod, which
carries the pod's name as the `authentication.kubernetes.io/pod-name` user extra -- writes its own status
ConfigMap and nothing else: not a route, not another gateway's status, not the operator's config, not a status
labelled as a route; a token not bound to a pod writes nothing. The agent's own status writer works under the
policy.

On the testbed the token is a static token with that extra (hack/testbed.d: the tokens file's fifth column),
as kube-apiserver >= 1.30 sets it for a projected ServiceAccount token.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_rendering import render

from vpcep.api.routing import GATEWAY_STATUS_LABEL, ROUTE_LABEL, GatewayStatus
from vpcep.gateway.status import ConfigMapStatusWriter

pytestmark = pytest.mark.cluster

POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name"
CLUSTER_SCOPED = {
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str

    @property
    def gateway(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}-gateway"


@pytest.fixture(scope="module")
def release(cluster: Any) -> Iterator[Release]:
    namespace = cluster.create_namespace("vpcep-gwrbac")
    name = f"g{uuid.uuid4().hex[:6]}"
    # The connection policy (R44) is another test's, and bound cluster-wide it would refuse other operators.
    rendered = render(
        "webhook.enabled=false", "rbac.connectionAdmissionPolicy=false", release=name, namespace=namespace
    )
    assert {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} <= {
        o["kind"] for o in rendered.objects
    }
    cluster.kubectl_run(
        "apply", "--server-side", "--force-conflicts", "--field-manager=helm", "-f", "-",
        input=yaml.safe_dump_all(rendered.objects), timeout=120,
    )  # fmt: skip
    try:
        yield Release(name, namespace)
    finally:
        for obj in rendered.objects:
            if obj["kind"] in CLUSTER_SCOPED and obj["metadata"]["name"].startswith(name):
                cluster.kubectl_run("delete", obj["kind"].lower(), obj["metadata"]["name"], check=False)
        cluster.kubectl_run("delete", "namespace", namespace, "--wait=false", check=False)


def _configmap(name: str, labels: dict[str, str], data: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": data or {"status.json": "{}"},
    }


class Writer:
    """kubectl with one token: a gateway pod's (pod-name extra) or one bound to no pod."""

    def __init__(self, cluster: Any, release: Release, pod: str | None) -> None:
        self.kubectl = cluster.kubectl
        self.namespace = release.namespace
        extra = {POD_NAME_EXTRA: pod} if pod else None
        self.kubeconfig: Path = cluster.kubeconfig_for(release.gateway, extra=extra)

    def run(self, *args: str, body: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.kubectl, "--kubeconfig", str(self.kubeconfig), "-n", self.namespace, *args],
            input=None if body is None else json.dumps(body),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def create(self, body: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.run("create", "-f", "-", body=body)

    def patch(self, name: str, data: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return self.run("patch", "configmap", name, "--type=merge", "-p", json.dumps({"data": data}))


def _refused_by_policy(proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode != 0 and "ValidatingAdmissionPolicy" in proc.stderr and "R47" in proc.stderr


def _wait_until_enforced(writer: Writer) -> None:
    """The admission plugin learns of a new policy through an informer: probe until it refuses."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        probe = writer.create(_configmap(f"probe-{uuid.uuid4().hex[:6]}", {}))
        if _refused_by_policy(probe):
            return
        time.sleep(0.3)
    pytest.fail("the chart's gateway admission policy was not enforced within 30 s")


def test_a_gateway_writes_its_own_status_and_nothing_else_R47(cluster: Any, release: Release) -> None:
    ns = release.namespace
    route = _configmap("vpcep-route-victim", {ROUTE_LABEL: "true"}, {"route.json": "{}"})
    neighbour = _configmap("vpcep-gateway-gw-b", {GATEWAY_STATUS_LABEL: "true"})
    cluster.kubectl_run(
        "apply",
        "-n",
        ns,
        "-f",
        "-",
        input=json.dumps({"kind": "List", "apiVersion": "v1", "items": [route, neighbour]}),
    )
    operator_config = f"{release.name}-operator-config"
    gateway_a = Writer(cluster, release, "gw-a")
    _wait_until_enforced(gateway_a)

    # Its own status: created, then updated, as the agent does every heartbeat.
    own = _configmap("vpcep-gateway-gw-a", {GATEWAY_STATUS_LABEL: "true"})
    assert gateway_a.create(own).returncode == 0
    patched = gateway_a.patch("vpcep-gateway-gw-a", {"status.json": '{"heartbeat": "now"}'})
    assert patched.returncode == 0, patched.stderr
    # It still reads the routes (label-selected, as the agent lists them).
    listed = gateway_a.run("get", "configmaps", "-l", f"{ROUTE_LABEL}=true", "-o", "name")
    assert listed.returncode == 0 and "configmap/vpcep-route-victim" in listed.stdout, listed.stderr

    attempts = {
        "rewrite a route": gateway_a.patch("vpcep-route-victim", {"route.json": '{"listeners": []}'}),
        "create a route": gateway_a.create(_configmap("vpcep-route-evil", {ROUTE_LABEL: "true"})),
        "overwrite another gateway's status": gateway_a.patch("vpcep-gateway-gw-b", {"status.json": "{}"}),
        "create a status for a gateway that does not exist": gateway_a.create(
            _configmap("vpcep-gateway-gw-ghost", {GATEWAY_STATUS_LABEL: "true"})
        ),
        "rewrite the operator's config": gateway_a.patch(
            operator_config, {"config.yaml": "privilegedUsers: [me]"}
        ),
        "label its own status as a route": gateway_a.run(
            "label", "configmap", "vpcep-gateway-gw-a", f"{ROUTE_LABEL}=true"
        ),
    }
    let_through = {what: proc.stderr for what, proc in attempts.items() if not _refused_by_policy(proc)}
    assert not let_through, let_through
    assert "may write only its own status ConfigMap vpcep-gateway-gw-a" in attempts["rewrite a route"].stderr

    # No delete at all (RBAC): a status goes with its pod.
    deleted = gateway_a.run("delete", "configmap", "vpcep-gateway-gw-a")
    assert deleted.returncode != 0 and "forbidden" in deleted.stderr.lower(), deleted.stderr

    # A token bound to no pod (a legacy Secret token, one requested by hand) writes nothing, not even a
    # status.
    unbound = Writer(cluster, release, None).create(
        _configmap("vpcep-gateway-gw-c", {GATEWAY_STATUS_LABEL: "true"})
    )
    assert _refused_by_policy(unbound) and "not bound to a pod" in unbound.stderr, unbound.stderr

    # Nothing the gateway tried changed anything.
    route_now = json.loads(
        cluster.kubectl_run("get", "configmap", "vpcep-route-victim", "-n", ns, "-o", "json").stdout
    )
    assert route_now["data"] == {"route.json": "{}"}
    names = cluster.kubectl_run("get", "configmaps", "-n", ns, "-o", "name").stdout.split()
    assert "configmap/vpcep-route-evil" not in names and "configmap/vpcep-gateway-gw-ghost" not in names


def test_the_agents_status_writer_works_under_the_policy_R47(cluster: Any, release: Release) -> None:
    from kubernetes import client
    from kubernetes import config as kube_config

    kubeconfig = cluster.kubeconfig_for(release.gateway, extra={POD_NAME_EXTRA: "gw-d"})
    api = client.CoreV1Api(kube_config.new_client_from_config(config_file=str(kubeconfig)))
    writer = ConfigMapStatusWriter(release.namespace, "gw-d", lambda: api)
    status = GatewayStatus(gateway="gw-d", address="10.244.0.9", heartbeat="2026-12-03T14:00:00Z")
    deadline = time.monotonic() + 30
    while True:  # the first write creates the object; later ones patch it
        try:
            writer.write(status)
            writer.write(status.model_copy(update={"heartbeat": "2026-12-03T14:00:05Z"}))
            break
        except client.ApiException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)  # the RoleBinding may not be seen yet
    stored = json.loads(
        cluster.kubectl_run(
            "get", "configmap", "vpcep-gateway-gw-d", "-n", release.namespace, "-o", "json"
        ).stdout
    )
    assert json.loads(stored["data"]["status.json"])["heartbeat"] == "2026-12-03T14:00:05Z"
    # The same writer under another pod's name is refused: the name comes from the token, not the agent.
    impostor = ConfigMapStatusWriter(release.namespace, "gw-b", lambda: api)
    with pytest.raises(client.ApiException) as refused:
        impostor.write(status.model_copy(update={"gateway": "gw-b"}))
    assert refused.value.status in (403, 422) and "R47" in str(refused.value.body)
