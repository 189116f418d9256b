"""kubectl-vpcep as a program on a real API server, run by tenants with the chart's roles (R10, R35, R41)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
SERVICE_NAME = "local-1.db.7a1e0c52-3d4b-4f60-9e21-5b8c7d6a4f13"
ENDPOINT_ID = "c0ffee00-1111-4222-8333-444455556666"
VPCEP = "vpcep.io/v1alpha1"


@dataclass(frozen=True)
class Tenants:
    provider: str
    consumer: str
    provider_editor: str
    consumer_editor: str
    consumer_viewer: str


def _apply(cluster: Any, namespace: str, body: dict[str, Any]) -> None:
    cluster.kubectl_run(
        "apply", "--server-side", "--force-conflicts", "-n", namespace, "-f", "-", input=json.dumps(body)
    )


def _status(cluster: Any, namespace: str, resource: str, name: str, status: dict[str, Any]) -> None:
    cluster.kubectl_run(
        "patch",
        resource,
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def _bind(cluster: Any, namespace: str, role: str, user: str) -> None:
    cluster.kubectl_run(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"{role}-{user}"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
            }
        ),
    )


@pytest.fixture(scope="module")
def tenants(cluster: Any) -> Iterator[Tenants]:
    cluster.kubectl_run("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"), timeout=120)
    # The chart's user roles, as the chart renders them.
    rendered = subprocess.run(
        [
            str(REPO / "hack" / "render-chart"),
            "vpcep",
            "--set",
            "webhook.enabled=false",
            "--set",
            "crds.enabled=false",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    user_roles = {"vpcep-admin", "vpcep-editor", "vpcep-viewer"}
    roles = [
        o
        for o in yaml.safe_load_all(rendered)
        if o and o["kind"] == "ClusterRole" and o["metadata"]["name"] in user_roles
    ]
    assert len(roles) == 3
    for role in roles:
        cluster.kubectl_run("apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(role))
    suffix = uuid.uuid4().hex[:6]
    found = Tenants(
        provider=cluster.create_namespace("cli-provider"),
        consumer=cluster.create_namespace("cli-consumer"),
        provider_editor=f"alice-{suffix}",
        consumer_editor=f"bob-{suffix}",
        consumer_viewer=f"carol-{suffix}",
    )
    _bind(cluster, found.provider, "vpcep-editor", found.provider_editor)
    _bind(cluster, found.consumer, "vpcep-editor", found.consumer_editor)
    _bind(cluster, found.consumer, "vpcep-viewer", found.consumer_viewer)

    _apply(
        cluster,
        found.provider,
        {
            "apiVersion": VPCEP,
            "kind": "EndpointService",
            "metadata": {"name": "db"},
            "spec": {
                "backend": {"kind": "Service", "name": "db"},
                "approvalRequired": True,
                "ports": [{"protocol": "TCP", "serverPort": 5432, "clientPort": 5432}],
            },
        },
    )
    _status(
        cluster,
        found.provider,
        "endpointservices.vpcep.io",
        "db",
        {"phase": "Available", "serviceName": SERVICE_NAME, "serviceType": "Interface"},
    )
    _apply(
        cluster,
        found.provider,
        {
            "apiVersion": VPCEP,
            "kind": "EndpointConnection",
            "metadata": {
                "name": ENDPOINT_ID,
                "labels": {"vpcep.io/endpoint-service": "db", "vpcep.io/endpoint-id": ENDPOINT_ID},
            },
            "spec": {},
        },
    )
    _status(
        cluster,
        found.provider,
        "endpointconnections.vpcep.io",
        ENDPOINT_ID,
        {
            "endpointId": ENDPOINT_ID,
            "markerId": 42,
            "ownerAccount": found.consumer,
            "state": "PendingAcceptance",
            "endpointService": "db",
            "createdAt": "2026-01-01T00:00:00Z",
        },
    )
    _apply(
        cluster,
        found.consumer,
        {
            "apiVersion": VPCEP,
            "kind": "Endpoint",
            "metadata": {"name": "db"},
            "spec": {"serviceName": SERVICE_NAME},
        },
    )
    _status(
        cluster,
        found.consumer,
        "endpoints.vpcep.io",
        "db",
        {
            "phase": "PendingAcceptance",
            "reason": "PendingAcceptance",
            "endpointId": ENDPOINT_ID,
            "markerId": 42,
            "message": "waiting for the provider to accept the connection",
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "PendingAcceptance",
                    "message": "waiting for the provider",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        },
    )
    _apply(
        cluster,
        found.consumer,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "vpcep-quota"},
            "data": {
                "account": found.consumer,
                "servicesUsed": "0",
                "servicesLimit": "20",
                "endpointsUsed": "1",
                "endpointsLimit": "50",
                "gatewayPortsUsed": "2",
                "gatewayPortsLimit": "200",
            },
        },
    )
    cluster.kubectl_run(
        "create",
        "-n",
        found.consumer,
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"db.{suffix}"},
                "involvedObject": {
                    "apiVersion": VPCEP,
                    "kind": "Endpoint",
                    "name": "db",
                    "namespace": found.consumer,
                },
                "reason": "PendingAcceptance",
                "message": "connection awaits the provider's decision",
                "type": "Normal",
                "lastTimestamp": "2026-01-01T00:00:00Z",
            }
        ),
    )
    yield found
    for ns in (found.provider, found.consumer):
        cluster.kubectl_run("delete", "namespace", ns, "--wait=false", check=False)


def plugin(cluster: Any, user: str | None, *argv: str) -> subprocess.CompletedProcess[str]:
    kubeconfig = cluster.kubeconfig if user is None else cluster.kubeconfig_for(user)
    env = {**os.environ, "PYTHONPATH": str(REPO / "operator"), "KUBECONFIG": str(kubeconfig)}
    return subprocess.run(
        [sys.executable, "-m", "vpcep.cli.kubectl_plugin", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_tenant_reads_its_quota(cluster: Any, tenants: Tenants) -> None:
    done = plugin(cluster, tenants.consumer_viewer, "quota", "-n", tenants.consumer)
    assert done.returncode == 0, done.stderr
    assert f"Account: {tenants.consumer}" in done.stdout
    rows = {line.split()[-5]: line.split()[-4:] for line in done.stdout.splitlines()[2:-1]}
    assert rows["endpoints"] == ["1", "50", "49", f"quotas.overrides.{tenants.consumer}.endpoints"]
    assert rows["ports"] == ["2", "200", "198", f"quotas.overrides.{tenants.consumer}.gatewayPorts"]  # R49


def test_provider_lists_and_accepts_a_connection_without_rights_in_the_consumer_namespace(
    cluster: Any, tenants: Tenants
) -> None:
    listed = plugin(cluster, tenants.provider_editor, "connections", "db", "-n", tenants.provider)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split()[:5] == [
        ENDPOINT_ID,
        ENDPOINT_ID,
        "42",
        "PendingAcceptance",
        "Pending",
    ]
    accepted = plugin(cluster, tenants.provider_editor, "accept", "42", "-n", tenants.provider)
    assert accepted.returncode == 0, accepted.stderr
    decision = cluster.kubectl_run(
        "get",
        "endpointconnections.vpcep.io",
        ENDPOINT_ID,
        "-n",
        tenants.provider,
        "-o",
        "jsonpath={.spec.decision}",
    ).stdout
    assert decision == "Accept"
    rejected = plugin(cluster, tenants.provider_editor, "reject", ENDPOINT_ID, "-n", tenants.provider)
    assert rejected.returncode == 0, rejected.stderr
    decision = cluster.kubectl_run(
        "get",
        "endpointconnections.vpcep.io",
        ENDPOINT_ID,
        "-n",
        tenants.provider,
        "-o",
        "jsonpath={.spec.decision}",
    ).stdout
    assert decision == "Reject"


def test_a_viewer_cannot_decide(cluster: Any, tenants: Tenants) -> None:
    _bind(cluster, tenants.provider, "vpcep-viewer", tenants.consumer_viewer)
    refused = plugin(cluster, tenants.consumer_viewer, "accept", ENDPOINT_ID, "-n", tenants.provider)
    assert refused.returncode == 2
    assert refused.stderr.startswith("forbidden:")


def test_consumer_describes_its_endpoint(cluster: Any, tenants: Tenants) -> None:
    done = plugin(cluster, tenants.consumer_editor, "describe", "db", "-n", tenants.consumer)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Phase:                PendingAcceptance" in out
    assert "waiting for the provider to accept the connection" in out
    assert "Ready   False    PendingAcceptance" in out
    assert "connection awaits the provider's decision" in out  # the Event
    assert "not visible to you: it lives in the provider's namespace" in out
    assert "kubectl vpcep accept" in out.split("Likely causes:")[1]
