"""R48 with the chart's ValidatingAdmissionPolicy enforced on a real API server: the namespace label
`vpcep.io/account` decides which tenant a namespace belongs to, so someone who may create and edit namespaces
(a self-service namespace tool, a namespace admin) cannot set, change or remove it; the configured
administrators can. Other labels and unlabelled namespaces are untouched.

The policy is bound cluster-wide for this module only (its teardown removes it).
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
ACCOUNT = "vpcep.io/account"


@dataclass(frozen=True)
class Policy:
    provisioner: str  # may create and edit namespaces; no administrator
    tool: str  # a namespace-provisioning tool listed in rbac.accountLabelPolicy.users


@pytest.fixture(scope="module")
def policy(cluster: Any) -> Iterator[Policy]:
    release = f"a{uuid.uuid4().hex[:6]}"
    suffix = uuid.uuid4().hex[:6]
    chosen = Policy(provisioner=f"provisioner-{suffix}", tool=f"namespace-tool-{suffix}")
    rendered = render(f"rbac.accountLabelPolicy.users[0]={chosen.tool}", release=release, namespace="vpcep")
    objects = [
        o for o in rendered.objects if o["kind"] in POLICY_KINDS and "account-label" in o["metadata"]["name"]
    ]
    assert len(objects) == 2
    role = f"namespace-provisioner-{suffix}"
    cluster.kubectl_run(
        "create", "clusterrole", role, "--verb=create,get,list,update,patch", "--resource=namespaces"
    )
    for user in (chosen.provisioner, chosen.tool):
        cluster.kubectl_run(
            "create", "clusterrolebinding", f"{role}-{user}", f"--clusterrole={role}", f"--user={user}"
        )
    cluster.kubectl_run("apply", "-f", "-", input=yaml.safe_dump_all(objects))
    try:
        _wait_until_enforced(cluster, chosen)
        yield chosen
    finally:
        for obj in objects:
            cluster.kubectl_run("delete", obj["kind"].lower(), obj["metadata"]["name"], check=False)
        cluster.kubectl_run("delete", "clusterrole", role, check=False)
        for user in (chosen.provisioner, chosen.tool):
            cluster.kubectl_run("delete", "clusterrolebinding", f"{role}-{user}", check=False)


def _namespace(labels: dict[str, str]) -> dict[str, Any]:
    name = f"acct-{uuid.uuid4().hex[:8]}"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def _create(cluster: Any, user: str | None, labels: dict[str, str]) -> tuple[bool, str, str]:
    body = _namespace(labels)
    proc = cluster.kubectl_run("create", "-f", "-", user=user, input=json.dumps(body), check=False)
    return proc.returncode == 0, proc.stderr, body["metadata"]["name"]


def _label(cluster: Any, user: str | None, namespace: str, *changes: str) -> tuple[bool, str]:
    proc = cluster.kubectl_run(
        "label", "--overwrite", "namespace", namespace, *changes, user=user, check=False
    )
    return proc.returncode == 0, proc.stderr


def _refused_by_policy(stderr: str) -> bool:
    return (
        "ValidatingAdmissionPolicy" in stderr
        and "only cluster administrators may set, change or remove it" in stderr
    )


def _wait_until_enforced(cluster: Any, chosen: Policy) -> None:
    """The admission plugin learns of a new policy through an informer: probe until it refuses."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        created, stderr, name = _create(cluster, chosen.provisioner, {ACCOUNT: "probe"})
        if not created and _refused_by_policy(stderr):
            return
        if created:
            cluster.kubectl_run("delete", "namespace", name, "--wait=false", check=False)
        time.sleep(0.3)
    pytest.fail("the chart's account-label ValidatingAdmissionPolicy was not enforced within 20 s")


def test_a_namespace_provisioner_cannot_claim_an_account_when_creating_a_namespace_R48(
    cluster: Any, policy: Policy
) -> None:
    created, stderr, _ = _create(cluster, policy.provisioner, {ACCOUNT: "bank", "team": "x"})
    assert not created and _refused_by_policy(stderr), stderr
    assert "keep it as it was (unset)" in stderr and "ask an administrator" in stderr
    # Everything else about namespaces stays self-service.
    created, stderr, name = _create(cluster, policy.provisioner, {"team": "x"})
    assert created, stderr
    cluster.kubectl_run("delete", "namespace", name, "--wait=false", check=False)


def test_a_namespace_provisioner_cannot_set_change_or_remove_the_label_R48(
    cluster: Any, policy: Policy
) -> None:
    created, stderr, name = _create(cluster, None, {ACCOUNT: "shop"})  # the cluster admin assigns the account
    assert created, stderr
    try:
        for change in (f"{ACCOUNT}=bank", f"{ACCOUNT}-"):
            changed, stderr = _label(cluster, policy.provisioner, name, change)
            assert not changed and _refused_by_policy(stderr), (change, stderr)
            assert 'keep it as it was ("shop")' in stderr
        changed, stderr = _label(cluster, policy.provisioner, name, "team=y")  # other labels: fine
        assert changed, stderr
        labels = json.loads(cluster.kubectl_run("get", "namespace", name, "-o", "json").stdout)["metadata"][
            "labels"
        ]
        assert labels[ACCOUNT] == "shop" and labels["team"] == "y"
        # An unlabelled namespace cannot be labelled into an account either.
        created, stderr, bare = _create(cluster, policy.provisioner, {})
        assert created, stderr
        changed, stderr = _label(cluster, policy.provisioner, bare, f"{ACCOUNT}=shop")
        assert not changed and _refused_by_policy(stderr), stderr
        cluster.kubectl_run("delete", "namespace", bare, "--wait=false", check=False)
    finally:
        cluster.kubectl_run("delete", "namespace", name, "--wait=false", check=False)


def test_administrators_and_listed_tools_assign_accounts_R48(cluster: Any, policy: Policy) -> None:
    created, stderr, name = _create(cluster, policy.tool, {ACCOUNT: "shop"})
    assert created, stderr
    try:
        changed, stderr = _label(cluster, policy.tool, name, f"{ACCOUNT}=bank")
        assert changed, stderr
        changed, stderr = _label(cluster, None, name, f"{ACCOUNT}-")  # system:masters
        assert changed, stderr
    finally:
        cluster.kubectl_run("delete", "namespace", name, "--wait=false", check=False)


def test_the_policy_can_be_switched_off_and_lists_the_configured_groups() -> None:
    assert "vpcep-account-label" not in render("rbac.accountLabelPolicy.enabled=false").names(
        "ValidatingAdmissionPolicy"
    )
    rendered = render("rbac.accountLabelPolicy.groups[0]=platform-admins", release="r", namespace="ops")
    variables = json.dumps(rendered.one("ValidatingAdmissionPolicy", "r-account-label")["spec"]["variables"])
    assert '[\\"platform-admins\\"]' in variables and "system:masters" not in variables
