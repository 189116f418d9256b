"""The three user roles of R35 and the least-privilege roles of the operator and gateways (R36), as rendered.

What the roles allow against a real API server is checked in test_chart_cluster.py.
"""

from __future__ import annotations

from typing import Any

import yaml
from chart_rendering import Rendered, render

KINDS = {"endpointservices", "endpoints", "whitelists", "endpointconnections"}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*"}


def _allowed(role: dict[str, Any], group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for rule in role["rules"]:
        if group in rule["apiGroups"] and resource in rule["resources"] and not rule.get("resourceNames"):
            verbs |= set(rule["verbs"])
    return verbs


def test_viewer_can_only_read(defaults: Rendered) -> None:
    viewer = defaults.one("ClusterRole", "vpcep-viewer")
    for kind in KINDS:
        assert _allowed(viewer, "vpcep.io", kind) == {"get", "list", "watch"}
    for rule in viewer["rules"]:
        assert not set(rule["verbs"]) & WRITE_VERBS


def test_editor_and_admin_manage_services_endpoints_whitelists_and_decide_connections(
    defaults: Rendered,
) -> None:
    for name in ("vpcep-editor", "vpcep-admin"):
        role = defaults.one("ClusterRole", name)
        for kind in ("endpointservices", "endpoints", "whitelists"):
            assert {"get", "list", "watch", "create", "update", "patch", "delete"} <= _allowed(
                role, "vpcep.io", kind
            )
        assert {"update", "patch"} <= _allowed(role, "vpcep.io", "endpointconnections")  # R10
        # Nobody but the operator writes status.
        for kind in KINDS:
            assert not _allowed(role, "vpcep.io", f"{kind}/status")


def test_user_roles_aggregate_into_the_builtin_roles(defaults: Rendered) -> None:
    expected = {"vpcep-viewer": "view", "vpcep-editor": "edit", "vpcep-admin": "admin"}
    for name, builtin in expected.items():
        labels = defaults.one("ClusterRole", name)["metadata"]["labels"]
        assert labels[f"rbac.authorization.k8s.io/aggregate-to-{builtin}"] == "true"
    for name in expected:
        labels = render("rbac.aggregateToDefaultRoles=false").one("ClusterRole", name)["metadata"]["labels"]
        assert not any(key.startswith("rbac.authorization.k8s.io/aggregate") for key in labels)
    assert not set(expected) & render("rbac.userRoles=false").names("ClusterRole")


def test_every_role_can_read_the_quota_configmap_and_nothing_else_of_configmaps(defaults: Rendered) -> None:
    for name in ("vpcep-viewer", "vpcep-editor", "vpcep-admin"):
        rules = [r for r in defaults.one("ClusterRole", name)["rules"] if "configmaps" in r["resources"]]
        assert rules == [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["vpcep-quota"],
                "verbs": ["get"],
            }
        ]  # R41


def test_operator_cluster_role_has_no_wildcards_and_no_secrets(defaults: Rendered) -> None:
    role = defaults.one("ClusterRole", "vpcep-operator")
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        assert "secrets" not in rule["resources"]
        assert "escalate" not in rule["verbs"] and "bind" not in rule["verbs"]
    # Cluster-wide ConfigMap writes are limited to the quota ConfigMap (create cannot be limited by name); no
    # list/watch: the operator watches ConfigMaps in its own namespace only (its Role there).
    assert _allowed(role, "", "configmaps") == {"create"}
    own = defaults.one("Role", "vpcep-operator")
    assert {"list", "watch"} <= _allowed(own, "", "configmaps")
    binding = defaults.one("ClusterRoleBinding", "vpcep-operator")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "vpcep-operator", "namespace": "vpcep-system"}
    ]


def test_gateways_touch_only_configmaps_of_their_namespace(defaults: Rendered) -> None:
    role = defaults.one("Role", "vpcep-gateway")
    assert role["metadata"]["namespace"] == "vpcep-system"
    assert [rule["resources"] for rule in role["rules"]] == [["configmaps"]]
    assert "delete" not in role["rules"][0]["verbs"]
    bound = [
        b
        for b in defaults.all("ClusterRoleBinding")
        if any(s["name"] == "vpcep-gateway" for s in b["subjects"])
    ]
    assert not bound


def test_every_user_role_reads_the_events_that_explain_states(defaults: Rendered) -> None:
    for name in ("vpcep-viewer", "vpcep-editor", "vpcep-admin"):
        assert {"get", "list", "watch"} <= _allowed(defaults.one("ClusterRole", name), "", "events")  # R39


SCOPED = ("watchNamespaces[0]=team-b", "watchNamespaces[1]=team-a")


def test_scoped_operator_keeps_only_crds_and_namespaces_cluster_wide() -> None:
    """watchNamespaces: namespaced rights come from a Role per served namespace, not from the ClusterRole."""
    rendered = render(*SCOPED)
    role = rendered.one("ClusterRole", "vpcep-operator")
    assert [(rule["apiGroups"], rule["resources"]) for rule in role["rules"]] == [
        (["apiextensions.k8s.io"], ["customresourcedefinitions"]),
        ([""], ["namespaces"]),
    ]
    assert _allowed(role, "", "namespaces") == {"get", "list", "watch"}
    served = {
        r["metadata"]["namespace"]: r
        for r in rendered.all("Role")
        if r["metadata"]["name"] == "vpcep-operator-served"
    }
    assert set(served) == {"team-a", "team-b", "vpcep-system"}  # the listed ones plus the operator's own
    unscoped = render().one("ClusterRole", "vpcep-operator")["rules"]
    assert all(r["rules"] == unscoped[2:] for r in served.values()), "the same rights, per namespace"
    bindings = {
        b["metadata"]["namespace"]
        for b in rendered.all("RoleBinding")
        if b["metadata"]["name"] == "vpcep-operator-served"
        and b["subjects"]
        == [{"kind": "ServiceAccount", "name": "vpcep-operator", "namespace": "vpcep-system"}]
    }
    assert bindings == set(served)


def test_scoped_operator_only_reads_cloud_service_backends_elsewhere() -> None:
    """The dns cloud service's backend lives in kube-system (R37): read-only rights there, nothing else."""
    rendered = render(*SCOPED)
    backends = [r for r in rendered.all("Role") if r["metadata"]["name"] == "vpcep-operator-backends"]
    assert [r["metadata"]["namespace"] for r in backends] == ["kube-system"]
    assert backends[0]["rules"] == [
        {"apiGroups": [""], "resources": ["services", "pods"], "verbs": ["get", "list", "watch"]}
    ]


def test_scoped_release_tells_the_operator_and_limits_the_webhook() -> None:
    rendered = render(*SCOPED)
    config = yaml.safe_load(rendered.one("ConfigMap", "vpcep-operator-config")["data"]["config.yaml"])
    assert sorted(config["watchNamespaces"]) == ["team-a", "team-b"]
    (configuration,) = rendered.all("ValidatingWebhookConfiguration")
    assert configuration["webhooks"]
    for hook in configuration["webhooks"]:
        (expression,) = hook["namespaceSelector"]["matchExpressions"]
        assert expression["key"] == "kubernetes.io/metadata.name" and expression["operator"] == "In"
        assert expression["values"] == ["team-a", "team-b", "vpcep-system"]


def test_scoped_operator_reads_the_api_servers_addresses_in_default_only_R45() -> None:
    """No backend may resolve to the API server (R45): a scoped operator reads the `kubernetes` Service and
    EndpointSlice in `default`, nothing else there; unscoped, its ClusterRole already covers them."""
    roles = [r for r in render(*SCOPED).all("Role") if r["metadata"]["name"] == "vpcep-operator-api-server"]
    assert [r["metadata"]["namespace"] for r in roles] == ["default"]
    read = ["get", "list", "watch"]
    assert roles[0]["rules"] == [
        {"apiGroups": [""], "resources": ["services"], "verbs": read},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
    ]
    assert not [r for r in render().all("Role") if r["metadata"]["name"] == "vpcep-operator-api-server"]
