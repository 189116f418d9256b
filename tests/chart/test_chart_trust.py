"""R44 with the chart's RBAC and its ValidatingAdmissionPolicy enforced on a real API server: a tenant holding
the built-in `admin` or `edit` role (into which vpcep-admin/vpcep-editor aggregate) cannot create an
EndpointConnection or relabel one, and each of the two layers refuses on its own -- RBAC the create, the
policy the create even for a custom Role that grants it, and every label change. Deciding still works.

The policy is bound cluster-wide for this module only (its teardown removes it): left in place it would
refuse the operators other modules start under other names.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from chart_rendering import render

pytestmark = pytest.mark.cluster

POLICY_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    provider: str

    @property
    def operator(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}-operator"


def _apply(cluster: Any, objects: list[dict[str, Any]]) -> None:
    cluster.kubectl_run(
        "apply", "--server-side", "--force-conflicts", "--field-manager=helm", "-f", "-",
        input=yaml.safe_dump_all(objects), timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def release(cluster: Any) -> Iterator[Release]:
    namespace = cluster.create_namespace("vpcep-trust")
    name = f"t{uuid.uuid4().hex[:6]}"
    rendered = render("webhook.enabled=false", release=name, namespace=namespace)
    assert {o["kind"] for o in rendered.objects} >= set(POLICY_KINDS)
    # The chart's kinds and roles; no operator runs: the operator's ServiceAccount is used directly.
    _apply(cluster, rendered.objects)
    installed = Release(name, namespace, cluster.create_namespace("trust-provider"))
    try:
        yield installed
    finally:
        for obj in rendered.objects:
            cluster_scoped = obj["kind"] in {"ClusterRole", "ClusterRoleBinding", *POLICY_KINDS}
            if cluster_scoped and obj["metadata"]["name"].startswith(name):
                cluster.kubectl_run("delete", obj["kind"].lower(), obj["metadata"]["name"], check=False)
        for ns in (installed.provider, namespace):
            cluster.kubectl_run("delete", "namespace", ns, "--wait=false", check=False)


def _connection(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "vpcep.io/v1alpha1",
        "kind": "EndpointConnection",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"decision": "Accept"},
    }


def _as(cluster: Any, user: str | None, *args: str, body: dict[str, Any] | None = None) -> tuple[bool, str]:
    proc = cluster.kubectl_run(
        *args, user=user, input=None if body is None else json.dumps(body), check=False
    )
    return proc.returncode == 0, proc.stderr


def _create(cluster: Any, user: str | None, namespace: str, body: dict[str, Any]) -> tuple[bool, str]:
    return _as(cluster, user, "create", "-n", namespace, "-f", "-", body=body)


def _operator_creates(cluster: Any, release: Release, name: str) -> None:
    """A connection as the operator makes it: its ServiceAccount, its labels."""
    labels = {"app.kubernetes.io/managed-by": "vpcep-operator", "vpcep.io/endpoint-id": name}
    created, stderr = _create(cluster, release.operator, release.provider, _connection(name, labels))
    assert created, f"the operator's ServiceAccount must create connections (R10): {stderr}"


def _bind(cluster: Any, namespace: str, role_kind: str, role: str, user: str) -> None:
    flag = "--clusterrole" if role_kind == "ClusterRole" else "--role"
    cluster.kubectl_run(
        "create", "rolebinding", f"{role}-{user}", "-n", namespace, f"{flag}={role}", f"--user={user}"
    )


def _policy_refused(stderr: str) -> bool:
    return "ValidatingAdmissionPolicy" in stderr and "R44" in stderr


def _wait_until_policy_enforced(cluster: Any, release: Release) -> None:
    """The admission plugin learns of a new policy through an informer: probe as a user RBAC lets create."""
    probe_user = f"probe-{uuid.uuid4().hex[:6]}"
    _grant_connection_writes(cluster, release.provider, probe_user)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        created, stderr = _create(
            cluster, probe_user, release.provider, _connection(f"p-{uuid.uuid4().hex[:6]}")
        )
        if not created and _policy_refused(stderr):
            return
        time.sleep(0.3)
    pytest.fail("the chart's ValidatingAdmissionPolicy was not enforced within 20 s")


def _grant_connection_writes(cluster: Any, namespace: str, user: str) -> None:
    """A custom Role that grants what the chart's roles withhold: only the policy stands in the way."""
    role = f"conn-writer-{user}"
    cluster.kubectl_run(
        "create", "role", role, "-n", namespace, "--verb=create,update,patch,get",
        "--resource=endpointconnections.vpcep.io",
    )  # fmt: skip
    _bind(cluster, namespace, "Role", role, user)


@pytest.mark.parametrize("builtin_role", ["admin", "edit"])
def test_a_tenant_with_the_builtin_role_cannot_create_or_relabel_a_connection_R44(
    cluster: Any, release: Release, builtin_role: str
) -> None:
    _wait_until_policy_enforced(cluster, release)
    user = f"{builtin_role}-{uuid.uuid4().hex[:6]}"
    _bind(cluster, release.provider, "ClusterRole", builtin_role, user)
    genuine = f"ep-{uuid.uuid4().hex[:8]}"
    _operator_creates(cluster, release, genuine)

    # RBAC refuses the create (the aggregated vpcep roles withhold it)...
    labels = {"app.kubernetes.io/managed-by": "vpcep-operator", "vpcep.io/endpoint-id": "forged"}
    created, stderr = _create(cluster, user, release.provider, _connection("forged", labels))
    assert not created and "cannot create resource" in stderr, stderr
    # ... and the delete.
    deleted, stderr = _as(
        cluster, user, "delete", "endpointconnections.vpcep.io", genuine, "-n", release.provider
    )
    assert not deleted and "forbidden" in stderr.lower(), stderr

    # Relabelling is an update RBAC allows (deciding is one too): the policy refuses it.
    for change in (
        ["label", "--overwrite", f"endpointconnections.vpcep.io/{genuine}", "vpcep.io/endpoint-id=other"],
        ["label", f"endpointconnections.vpcep.io/{genuine}", "app.kubernetes.io/managed-by-"],
        ["label", f"endpointconnections.vpcep.io/{genuine}", "extra=yes"],
    ):
        changed, stderr = _as(cluster, user, *change, "-n", release.provider)
        assert not changed and _policy_refused(stderr), (change, stderr)

    # Deciding is what the tenant may do.
    decided, stderr = _as(
        cluster, user, "patch", "endpointconnections.vpcep.io", genuine, "-n", release.provider,
        "--type=merge", "-p", '{"spec":{"decision":"Reject"}}',
    )  # fmt: skip
    assert decided, stderr


def test_the_policy_refuses_a_create_that_a_custom_role_grants_R44(cluster: Any, release: Release) -> None:
    _wait_until_policy_enforced(cluster, release)
    user = f"custom-{uuid.uuid4().hex[:6]}"
    _grant_connection_writes(cluster, release.provider, user)
    for labels in ({}, {"app.kubernetes.io/managed-by": "vpcep-operator", "vpcep.io/endpoint-id": "x"}):
        created, stderr = _create(
            cluster, user, release.provider, _connection(f"x-{uuid.uuid4().hex[:4]}", labels)
        )
        assert not created and _policy_refused(stderr), stderr
        assert "created by vpcep-operator only" in stderr


def test_the_cluster_admin_is_refused_too_only_the_operator_creates_R44(
    cluster: Any, release: Release
) -> None:
    """Not even system:masters creates connections while the policy is bound (admins remove the binding)."""
    _wait_until_policy_enforced(cluster, release)
    created, stderr = _create(cluster, None, release.provider, _connection(f"admin-{uuid.uuid4().hex[:4]}"))
    assert not created and _policy_refused(stderr), stderr


def test_a_scoped_release_binds_its_policy_to_the_namespaces_it_serves() -> None:
    """Two scoped releases must not refuse each other's operator: each judges its own namespaces only."""
    rendered = render("watchNamespaces[0]=team-a", "watchNamespaces[1]=team-b", release="r", namespace="ops")
    binding = rendered.one("ValidatingAdmissionPolicyBinding", "r-endpointconnections")
    selector = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]
    assert selector["key"] == "kubernetes.io/metadata.name"
    assert selector["values"] == ["team-a", "team-b", "ops"]
    policy = rendered.one("ValidatingAdmissionPolicy", "r-endpointconnections")
    assert "'system:serviceaccount:ops:r-operator'" in json.dumps(policy["spec"]["variables"])
    assert "vpcep-endpointconnections" not in render("rbac.connectionAdmissionPolicy=false").names(
        "ValidatingAdmissionPolicy"
    )
