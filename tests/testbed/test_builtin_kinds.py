"""What kube-apiserver and kube-controller-manager add that the operator relies on: ClusterIPs (an endpoint's
node IP, R18), RBAC (tenants and least privilege, R35, R36), garbage collection and namespace cleanup (R23: no
orphans), default namespaces."""

from __future__ import annotations

import ipaddress
import json
from typing import TYPE_CHECKING

import pytest

from .conftest import wait_for

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.cluster

SERVICE_RANGE = ipaddress.ip_network("10.96.0.0/16")


def _service(namespace: str, name: str, cluster_ip: str | None = None) -> str:
    spec: dict[str, object] = {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}
    if cluster_ip is not None:
        spec["clusterIP"] = cluster_ip
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def _cluster_ip(cluster: Cluster, namespace: str, name: str) -> str:
    return cluster.kubectl_run(
        "get", "service", name, "-n", namespace, "-o", "jsonpath={.spec.clusterIP}"
    ).stdout


def test_default_namespaces_exist(cluster: Cluster) -> None:
    names = cluster.kubectl_run(
        "get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}"
    ).stdout.split()
    assert {"default", "kube-system", "kube-public"} <= set(names)


def test_service_gets_a_distinct_cluster_ip_from_the_service_range(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl_run("apply", "-f", "-", input=_service(namespace, "a"))
    cluster.kubectl_run("apply", "--server-side", "-f", "-", input=_service(namespace, "b"))
    a, b = _cluster_ip(cluster, namespace, "a"), _cluster_ip(cluster, namespace, "b")
    assert ipaddress.ip_address(a) in SERVICE_RANGE
    assert ipaddress.ip_address(b) in SERVICE_RANGE
    assert a != b
    # Re-applying without the address keeps it.
    cluster.kubectl_run("apply", "-f", "-", input=_service(namespace, "a"))
    assert _cluster_ip(cluster, namespace, "a") == a


def test_service_explicit_cluster_ip_and_headless_are_honoured(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl_run("apply", "-f", "-", input=_service(namespace, "fixed", "10.96.200.7"))
    cluster.kubectl_run("apply", "-f", "-", input=_service(namespace, "headless", "None"))
    assert _cluster_ip(cluster, namespace, "fixed") == "10.96.200.7"
    assert _cluster_ip(cluster, namespace, "headless") == "None"

    taken = cluster.kubectl_run(
        "apply", "-f", "-", input=_service(namespace, "again", "10.96.200.7"), check=False
    )
    assert taken.returncode != 0 and "provided IP is already allocated" in taken.stderr
    outside = cluster.kubectl_run(
        "apply", "-f", "-", input=_service(namespace, "out", "192.168.0.1"), check=False
    )
    assert outside.returncode != 0 and "not in the valid range" in outside.stderr


def test_tenant_token_is_denied_outside_its_namespace(cluster: Cluster) -> None:
    own, other = cluster.create_namespace("tenant"), cluster.create_namespace("other")
    cluster.kubectl_run(
        "create", "role", "cm-editor", "-n", own, "--verb=get,list,create,delete", "--resource=configmaps"
    )
    cluster.kubectl_run(
        "create", "rolebinding", "tenant-a-cm", "-n", own, "--role=cm-editor", "--user=tenant-a"
    )

    wait_for(
        lambda: (
            cluster.kubectl_run(
                "auth", "can-i", "create", "configmaps", "-n", own, user="tenant-a", check=False
            ).stdout.strip()
            == "yes"
        ),
        what="the RoleBinding to take effect",
    )
    cluster.kubectl_run("create", "configmap", "mine", "-n", own, user="tenant-a")
    denied = cluster.kubectl_run("create", "configmap", "theirs", "-n", other, user="tenant-a", check=False)
    assert denied.returncode != 0
    assert 'User "tenant-a" cannot create resource "configmaps"' in denied.stderr
    assert f'in the namespace "{other}"' in denied.stderr
    listing = cluster.kubectl_run("get", "namespaces", user="tenant-a", check=False)
    assert listing.returncode != 0 and "forbidden" in listing.stderr
    # Another tenant has nothing in the first tenant's namespace.
    assert cluster.kubectl_run("get", "configmaps", "-n", own, user="tenant-b", check=False).returncode != 0


def test_service_account_rights_come_from_a_cluster_role_binding(cluster: Cluster) -> None:
    sa = "system:serviceaccount:vpcep-system:vpcep-operator"
    ns = cluster.create_namespace("crb")
    name = f"read-services-{ns}"
    cluster.kubectl_run("apply", "-f", "-", input=_service(ns, "s"))
    assert cluster.kubectl_run("get", "services", "-A", user=sa, check=False).returncode != 0
    cluster.kubectl_run("create", "clusterrole", name, "--verb=list,get", "--resource=services")
    cluster.kubectl_run(
        "create",
        "clusterrolebinding",
        name,
        f"--clusterrole={name}",
        "--serviceaccount=vpcep-system:vpcep-operator",
    )
    try:
        wait_for(
            lambda: cluster.kubectl_run("get", "services", "-A", user=sa, check=False).returncode == 0,
            what="the ClusterRoleBinding to take effect",
        )
        refused = cluster.kubectl_run("delete", "service", "s", "-n", ns, user=sa, check=False)
        assert refused.returncode != 0 and "cannot delete resource" in refused.stderr
    finally:
        cluster.kubectl_run("delete", "clusterrolebinding,clusterrole", name, check=False)


def test_owned_object_is_collected_after_its_owner_is_deleted(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl_run("create", "configmap", "owner", "-n", namespace)
    uid = cluster.kubectl_run(
        "get", "configmap", "owner", "-n", namespace, "-o", "jsonpath={.metadata.uid}"
    ).stdout
    owned = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "owned",
            "namespace": namespace,
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}],
        },
    }
    cluster.kubectl_run("apply", "-f", "-", input=json.dumps(owned))
    cluster.kubectl_run("create", "secret", "generic", "unowned", "-n", namespace)

    cluster.kubectl_run("delete", "configmap", "owner", "-n", namespace)
    wait_for(
        lambda: cluster.kubectl_run("get", "secret", "owned", "-n", namespace, check=False).returncode != 0,
        what="the owned Secret to be collected",
    )
    assert cluster.kubectl_run("get", "secret", "unowned", "-n", namespace, check=False).returncode == 0


def test_foreground_deletion_waits_for_dependents(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl_run("create", "configmap", "owner", "-n", namespace)
    uid = cluster.kubectl_run(
        "get", "configmap", "owner", "-n", namespace, "-o", "jsonpath={.metadata.uid}"
    ).stdout
    owned = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "owned",
            "namespace": namespace,
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "owner",
                    "uid": uid,
                    "blockOwnerDeletion": True,
                }
            ],
        },
    }
    cluster.kubectl_run("apply", "-f", "-", input=json.dumps(owned))
    cluster.kubectl_run(
        "delete", "configmap", "owner", "-n", namespace, "--cascade=foreground", "--timeout=20s"
    )
    assert cluster.kubectl_run("get", "configmap", "owned", "-n", namespace, check=False).returncode != 0


def test_deleting_a_namespace_deletes_its_contents_then_the_namespace(
    cluster: Cluster, widget_crd: str
) -> None:
    ns = cluster.create_namespace("gone")
    cluster.kubectl_run("create", "configmap", "c", "-n", ns)
    cluster.kubectl_run(
        "apply",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "testbed.vpcep.io/v1",
                "kind": "Widget",
                "metadata": {"name": "w", "namespace": ns},
                "spec": {"size": 1},
            }
        ),
    )
    cluster.kubectl_run("delete", "namespace", ns, "--wait=false")
    phase = cluster.kubectl_run("get", "namespace", ns, "-o", "jsonpath={.status.phase}", check=False).stdout
    assert phase in ("Terminating", "")
    refused = cluster.kubectl_run("create", "configmap", "late", "-n", ns, check=False)
    assert refused.returncode != 0
    wait_for(
        lambda: cluster.kubectl_run("get", "namespace", ns, check=False).returncode != 0,
        timeout=30,
        what="the namespace to be removed",
    )
    assert cluster.kubectl_run("get", "widgets", "-n", ns, "-o", "name").stdout.strip() == ""


def test_cluster_roles_aggregate_into_the_built_in_edit_role(cluster: Cluster) -> None:
    """The chart's roles aggregate into admin/edit/view (R35): a binding to edit grants what they add."""
    ns = cluster.create_namespace("agg")
    name = f"widget-editor-{ns}"
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get"]}
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}},
        "rules": [rule],
    }
    cluster.kubectl_run("apply", "-f", "-", input=json.dumps(role))
    cluster.kubectl_run(
        "create", "rolebinding", "tenant-b-edit", "-n", ns, "--clusterrole=edit", "--user=tenant-b"
    )
    try:

        def edit_rules() -> list[object]:
            out = cluster.kubectl_run("get", "clusterrole", "edit", "-o", "json").stdout
            return list(json.loads(out).get("rules") or [])

        wait_for(lambda: rule in edit_rules(), what="the rules to be aggregated into edit")
        wait_for(
            lambda: (
                cluster.kubectl_run(
                    "create", "configmap", "c", "-n", ns, user="tenant-b", check=False
                ).returncode
                == 0
            ),
            what="tenant-b to be allowed through edit",
        )
        assert (
            cluster.kubectl_run("delete", "configmap", "c", "-n", ns, user="tenant-b", check=False).returncode
            != 0
        )
    finally:
        cluster.kubectl_run("delete", "clusterrole", name, check=False)
