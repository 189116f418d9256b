"""ValidatingAdmissionPolicies are enforced, as kube-apiserver enforces them (R44's chart policy relies on
it): a bound policy refuses a write with its message, names the user in CEL, and an unbound one refuses
nothing."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from .conftest import wait_for

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.cluster

MESSAGE = "only the trusted user may label configmaps guarded=yes"


def _policy(name: str, trusted: str) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["configmaps"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": f"request.userInfo.username == '{trusted}' || "
                    "!has(object.metadata.labels) || !('guarded' in object.metadata.labels)",
                    "message": MESSAGE,
                }
            ],
        },
    }


def _binding(name: str, policy: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": policy,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }


def _writers(namespace: str, users: list[str]) -> list[dict[str, Any]]:
    """RBAC lets both users write ConfigMaps here: what refuses one of them is the policy alone."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "cm-writer", "namespace": namespace},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "cm-writer", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-writer"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u} for u in users],
        },
    ]


def _config_map(name: str, labels: dict[str, str]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}})


def test_a_bound_policy_refuses_with_its_message_and_sees_the_user(cluster: Cluster, namespace: str) -> None:
    suffix = uuid.uuid4().hex[:6]
    policy = binding = f"guard-{suffix}"
    trusted, other = f"trusted-{suffix}", f"other-{suffix}"
    cluster.kubectl_run(
        "apply",
        "-f",
        "-",
        input=json.dumps(
            {"kind": "List", "apiVersion": "v1", "items": _writers(namespace, [trusted, other])}
        ),
    )
    cluster.kubectl_run("apply", "-f", "-", input=json.dumps(_policy(policy, trusted)))
    try:
        cluster.kubectl_run("apply", "-f", "-", input=json.dumps(_binding(binding, policy, namespace)))

        def refused() -> str:
            name = f"probe-{uuid.uuid4().hex[:6]}"
            proc = cluster.kubectl_run(
                "create",
                "-n",
                namespace,
                "-f",
                "-",
                input=_config_map(name, {"guarded": "yes"}),
                user=other,
                check=False,
            )
            return proc.stderr if proc.returncode != 0 else ""

        # The plugin learns of new policies through an informer: a moment after the apply.
        stderr = wait_for(refused, what="the bound policy to refuse a labelled ConfigMap")
        assert MESSAGE in stderr, stderr
        # What the policy allows still passes: no label, or the trusted user.
        cluster.kubectl_run("create", "-n", namespace, "-f", "-", input=_config_map("plain", {}), user=other)
        cluster.kubectl_run(
            "create",
            "-n",
            namespace,
            "-f",
            "-",
            input=_config_map("guarded", {"guarded": "yes"}),
            user=trusted,
        )
    finally:
        cluster.kubectl_run("delete", "validatingadmissionpolicybinding", binding, check=False)
        cluster.kubectl_run("delete", "validatingadmissionpolicy", policy, check=False)


def test_an_unbound_policy_refuses_nothing(cluster: Cluster, namespace: str) -> None:
    """Without a binding a policy is inert (kube-apiserver's semantics): the chart must ship the binding."""
    suffix = uuid.uuid4().hex[:6]
    policy = f"unbound-{suffix}"
    cluster.kubectl_run("apply", "-f", "-", input=json.dumps(_policy(policy, "nobody")))
    try:
        cluster.kubectl_run("create", "-n", namespace, "-f", "-", input=_config_map("x", {"guarded": "yes"}))
    finally:
        cluster.kubectl_run("delete", "validatingadmissionpolicy", policy, check=False)


def test_every_namespace_carries_its_name_as_a_label(cluster: Cluster, namespace: str) -> None:
    """kube-apiserver's namespace default: bindings and NetworkPolicies select one namespace by it."""
    labels = cluster.kubectl_run("get", "namespace", namespace, "-o", "jsonpath={.metadata.labels}").stdout
    assert json.loads(labels).get("kubernetes.io/metadata.name") == namespace
