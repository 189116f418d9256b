"""The rendered chart on a real API server with RBAC enforced (hack/testbed or KUBECONFIG).

It applies cleanly and idempotently; the operator's and gateways' ServiceAccounts can do what they need and no
more (R36); the user roles allow what R35 says. A missing permission fails a test here.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_rendering import REPO, render

from gateway_pods import create_gateway_pod

pytestmark = pytest.mark.cluster


@dataclass(frozen=True)
class Install:
    release: str
    namespace: str  # the release namespace (operator namespace)
    provider: str  # a tenant namespace
    consumer: str  # another tenant namespace
    objects: list[dict[str, Any]]

    @property
    def operator(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.release}-operator"

    @property
    def gateway(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.release}-gateway"


def _dump(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)


def _apply_in(cluster: Any, namespace: str, *objects: dict[str, Any]) -> None:
    """Applies objects into one namespace as the cluster admin (sets the scene; not what is tested)."""
    cluster.kubectl_run("apply", "-n", namespace, "-f", "-", input=_dump(list(objects)))


def _apply(cluster: Any, objects: list[dict[str, Any]], *extra: str) -> str:
    proc = cluster.kubectl_run(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=helm",
        *extra,
        "-f",
        "-",
        input=_dump(objects),
        timeout=120,
    )
    return str(proc.stdout)


@pytest.fixture(scope="module")
def installed(cluster: Any) -> Iterator[Install]:
    namespace = cluster.create_namespace("vpcep-chart")
    release = f"c{uuid.uuid4().hex[:6]}"
    # The webhook stays off: no operator runs here to answer it, and a live configuration with
    # failurePolicy Fail would block every vpcep write of the session. It is dry-run applied below instead.
    # The connection admission policy (R44) stays off here: bound cluster-wide it would refuse every other
    # release's operator for the rest of the session. tests/chart/test_chart_trust.py installs and removes it.
    # So does the account-label policy (R48): bound cluster-wide it would judge every other test's namespace
    # writes; tests/chart/test_chart_account_label.py installs and removes it.
    rendered = render(
        "webhook.enabled=false",
        "rbac.connectionAdmissionPolicy=false",
        "rbac.accountLabelPolicy.enabled=false",
        release=release,
        namespace=namespace,
    )
    _apply(cluster, rendered.objects)
    install = Install(
        release=release,
        namespace=namespace,
        provider=cluster.create_namespace("provider"),
        consumer=cluster.create_namespace("consumer"),
        objects=rendered.objects,
    )
    yield install
    for ns in (install.provider, install.consumer, namespace):
        cluster.kubectl_run("delete", "namespace", ns, "--wait=false", check=False)
    for obj in rendered.objects:
        cluster_scoped_rbac = obj["kind"] in {
            "ClusterRole",
            "ClusterRoleBinding",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        }
        if cluster_scoped_rbac and obj["metadata"]["name"].startswith(release):
            cluster.kubectl_run("delete", obj["kind"].lower(), obj["metadata"]["name"], check=False)


def attempt(cluster: Any, user: str, *args: str, body: dict[str, Any] | None = None) -> bool:
    """Runs kubectl as `user`: True if allowed, False if RBAC refused it; any other failure fails the test."""
    proc = cluster.kubectl_run(
        *args, user=user, input=None if body is None else json.dumps(body), check=False
    )
    if proc.returncode == 0:
        return True
    if "forbidden" in proc.stderr.lower():
        return False
    raise AssertionError(f"kubectl {' '.join(args)} as {user} failed otherwise:\n{proc.stderr}")


def create(cluster: Any, user: str, namespace: str, body: dict[str, Any]) -> bool:
    return attempt(cluster, user, "create", "-n", namespace, "-f", "-", body=body)


def _names(proc: subprocess.CompletedProcess[str]) -> set[str]:
    return set(proc.stdout.split())


# Applying ------------------------------------------------------------------------------------------


def test_every_rendered_object_is_stored(cluster: Any, installed: Install) -> None:
    for obj in installed.objects:
        args = [
            "get",
            f"{obj['kind'].lower()}.{obj['apiVersion'].split('/')[0]}"
            if "/" in obj["apiVersion"]
            else obj["kind"].lower(),
            obj["metadata"]["name"],
            "-o",
            "name",
        ]
        if "namespace" in obj["metadata"]:
            args += ["-n", obj["metadata"]["namespace"]]
        assert cluster.kubectl_run(*args).stdout.strip(), obj["metadata"]["name"]


def test_applying_the_same_release_twice_changes_nothing(cluster: Any, installed: Install) -> None:
    """SPEC §1: a second apply of the same files changes nothing (no resourceVersion moves)."""

    def versions() -> dict[str, str]:
        found = {}
        for obj in installed.objects:
            if obj["kind"] == "CustomResourceDefinition":
                continue  # the suite's other tests may install the same CRDs with another field manager
            args = [
                "get",
                obj["kind"].lower(),
                obj["metadata"]["name"],
                "-o",
                "jsonpath={.metadata.resourceVersion}",
            ]
            if "namespace" in obj["metadata"]:
                args += ["-n", obj["metadata"]["namespace"]]
            found[f"{obj['kind']}/{obj['metadata']['name']}"] = cluster.kubectl_run(*args).stdout
        return found

    before = versions()
    _apply(cluster, installed.objects)
    assert versions() == before


def test_the_webhook_configuration_and_its_certificate_are_accepted_by_the_api_server(
    cluster: Any, installed: Install
) -> None:
    rendered = render(release=installed.release, namespace=installed.namespace)
    webhook_objects = [
        o
        for o in rendered.objects
        if o["kind"] == "ValidatingWebhookConfiguration"
        or (o["kind"] == "Secret" and o["metadata"]["name"].endswith("-webhook-tls"))
    ]
    assert len(webhook_objects) == 2
    out = _apply(cluster, webhook_objects, "--dry-run=server")
    assert "serverside-applied (server dry run)" in out


# The operator's ServiceAccount (R36) ---------------------------------------------------------------


def _seed_tenant_objects(cluster: Any, installed: Install) -> None:
    service = {
        "apiVersion": "vpcep.io/v1alpha1",
        "kind": "EndpointService",
        "metadata": {"name": "db"},
        "spec": {
            "backend": {"kind": "Service", "name": "db"},
            "ports": [{"protocol": "TCP", "serverPort": 5432, "clientPort": 5432}],
        },
    }
    endpoint = {
        "apiVersion": "vpcep.io/v1alpha1",
        "kind": "Endpoint",
        "metadata": {"name": "db"},
        "spec": {"serviceName": "local-1.db.00000000-0000-4000-8000-000000000001"},
    }
    _apply_in(cluster, installed.provider, service)
    _apply_in(cluster, installed.consumer, endpoint)


def test_operator_can_do_its_whole_job(cluster: Any, installed: Install) -> None:
    _seed_tenant_objects(cluster, installed)
    op, provider, consumer, own = (
        installed.operator,
        installed.provider,
        installed.consumer,
        installed.namespace,
    )
    must = {
        "read CRDs": attempt(cluster, op, "get", "crd", "endpoints.vpcep.io"),
        "list namespaces (accounts)": attempt(cluster, op, "get", "namespaces"),
        "list services everywhere": attempt(cluster, op, "get", "endpointservices.vpcep.io", "-A"),
        "list endpoints everywhere": attempt(cluster, op, "get", "endpoints.vpcep.io", "-A"),
        "list whitelists everywhere": attempt(cluster, op, "get", "whitelists.vpcep.io", "-A"),
        "list connections everywhere": attempt(cluster, op, "get", "endpointconnections.vpcep.io", "-A"),
        "add the finalizer": attempt(
            cluster,
            op,
            "patch",
            "endpointservices.vpcep.io",
            "db",
            "-n",
            provider,
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":["vpcep.io/finalizer"]}}',
        ),
        "patch service status": attempt(
            cluster,
            op,
            "patch",
            "endpointservices.vpcep.io",
            "db",
            "-n",
            provider,
            "--subresource=status",
            "--type=merge",
            "-p",
            '{"status":{"phase":"Available"}}',
        ),
        "patch endpoint status": attempt(
            cluster,
            op,
            "patch",
            "endpoints.vpcep.io",
            "db",
            "-n",
            consumer,
            "--subresource=status",
            "--type=merge",
            "-p",
            '{"status":{"phase":"PendingAcceptance"}}',
        ),
        "create a connection in the provider namespace": create(
            cluster,
            op,
            provider,
            {
                "apiVersion": "vpcep.io/v1alpha1",
                "kind": "EndpointConnection",
                "metadata": {"name": "conn-1"},
                "spec": {},
            },
        ),
        "patch connection status": attempt(
            cluster,
            op,
            "patch",
            "endpointconnections.vpcep.io",
            "conn-1",
            "-n",
            provider,
            "--subresource=status",
            "--type=merge",
            "-p",
            '{"status":{"state":"PendingAcceptance"}}',
        ),
        "delete a connection": attempt(
            cluster, op, "delete", "endpointconnections.vpcep.io", "conn-1", "-n", provider
        ),
        "read backend pods": attempt(cluster, op, "get", "pods", "-A"),
        "create the node-IP Service": create(
            cluster,
            op,
            consumer,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "vpce-db"},
                "spec": {"ports": [{"name": "tcp-5432", "port": 5432, "targetPort": 20001}]},
            },
        ),
        "create its EndpointSlice": create(
            cluster,
            op,
            consumer,
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": "vpce-db-gw", "labels": {"kubernetes.io/service-name": "vpce-db"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.244.0.7"]}],
                "ports": [{"name": "tcp-5432", "port": 20001, "protocol": "TCP"}],
            },
        ),
        "create the provider NetworkPolicy": create(
            cluster,
            op,
            provider,
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "vpcep-db"},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
            },
        ),
        "create the quota view": create(
            cluster,
            op,
            consumer,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "vpcep-quota"},
                "data": {"account": "x"},
            },
        ),
        "update the quota view": attempt(
            cluster,
            op,
            "patch",
            "configmap",
            "vpcep-quota",
            "-n",
            consumer,
            "--type=merge",
            "-p",
            '{"data":{"endpointsUsed":"1"}}',
        ),
        "post an Event": create(
            cluster,
            op,
            consumer,
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": "db.vpcep-test"},
                "involvedObject": {
                    "apiVersion": "vpcep.io/v1alpha1",
                    "kind": "Endpoint",
                    "name": "db",
                    "namespace": consumer,
                },
                "reason": "Test",
                "message": "rbac test",
                "type": "Normal",
            },
        ),
        "write a route in its namespace": create(
            cluster,
            op,
            own,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "vpcep-route-1", "labels": {"vpcep.io/route": "true"}},
                "data": {"route.json": "{}"},
            },
        ),
        "delete a route": attempt(cluster, op, "delete", "configmap", "vpcep-route-1", "-n", own),
        "publish a cloud service in its namespace": create(
            cluster,
            op,
            own,
            {
                "apiVersion": "vpcep.io/v1alpha1",
                "kind": "EndpointService",
                "metadata": {"name": "dns"},
                "spec": {
                    "backend": {"kind": "Service", "name": "kube-dns"},
                    "ports": [{"protocol": "TCP", "serverPort": 53, "clientPort": 53}],
                },
            },
        ),
    }
    assert [what for what, allowed in must.items() if not allowed] == []


def test_operator_cannot_do_more_than_its_job(cluster: Any, installed: Install) -> None:
    op, consumer = installed.operator, installed.consumer
    cluster.kubectl_run(
        "create", "configmap", "app-settings", "-n", consumer, "--from-literal=a=b", check=False
    )
    must_not = {
        "read secrets": attempt(cluster, op, "get", "secrets", "-n", installed.provider),
        "create pods": create(
            cluster,
            op,
            consumer,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "intruder"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        ),
        "change a tenant's ConfigMap": attempt(
            cluster,
            op,
            "patch",
            "configmap",
            "app-settings",
            "-n",
            consumer,
            "--type=merge",
            "-p",
            '{"data":{"a":"c"}}',
        ),
        "delete namespaces": attempt(
            cluster, op, "delete", "namespace", installed.consumer, "--dry-run=server"
        ),
        "create endpoint services for tenants": create(
            cluster,
            op,
            installed.provider,
            {
                "apiVersion": "vpcep.io/v1alpha1",
                "kind": "EndpointService",
                "metadata": {"name": "forged"},
                "spec": {
                    "backend": {"kind": "Service", "name": "x"},
                    "ports": [{"protocol": "TCP", "serverPort": 1, "clientPort": 1}],
                },
            },
        ),
        "grant itself roles": create(
            cluster,
            op,
            consumer,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "x"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "vpcep-admin",
                },
                "subjects": [{"kind": "User", "name": "x", "apiGroup": "rbac.authorization.k8s.io"}],
            },
        ),
    }
    assert [what for what, allowed in must_not.items() if allowed] == []


# The gateways' ServiceAccount (R36) ----------------------------------------------------------------


def _as_gateway_pod(
    cluster: Any, user: str, pod: str, *args: str, body: dict[str, Any] | None = None
) -> bool:
    """kubectl with the token the kubelet binds to gateway pod `pod` (it carries the pod's name, which the
    chart's admission policy reads, R47): True if allowed, False if refused."""
    kubeconfig = cluster.kubeconfig_for(user, extra={"authentication.kubernetes.io/pod-name": pod})
    proc = subprocess.run(
        [cluster.kubectl, "--kubeconfig", str(kubeconfig), *args],
        input=None if body is None else json.dumps(body),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode == 0:
        return True
    if "forbidden" in proc.stderr.lower() or "denied" in proc.stderr.lower():
        return False
    raise AssertionError(f"kubectl {' '.join(args)} as {user} ({pod}) failed otherwise:\n{proc.stderr}")


def test_gateway_reads_routes_and_writes_its_status_only_in_its_namespace(
    cluster: Any, installed: Install
) -> None:
    gw, own = installed.gateway, installed.namespace
    status = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "vpcep-gateway-gw-1", "labels": {"vpcep.io/gateway-status": "true"}},
        "data": {"status.json": "{}"},
    }
    assert attempt(cluster, gw, "get", "configmaps", "-n", own, "-l", "vpcep.io/route=true")
    assert _as_gateway_pod(cluster, gw, "gw-1", "create", "-n", own, "-f", "-", body=status)
    assert _as_gateway_pod(
        cluster,
        gw,
        "gw-1",
        "patch",
        "configmap",
        "vpcep-gateway-gw-1",
        "-n",
        own,
        "--type=merge",
        "-p",
        '{"data":{"status.json":"{\\"gateway\\":\\"gw-1\\"}"}}',
    )
    # Only its own (R47; every case: tests/chart/test_chart_gateway_rbac.py).
    assert not _as_gateway_pod(cluster, gw, "gw-2", "create", "-n", own, "-f", "-", body=status)
    assert not attempt(cluster, gw, "get", "configmaps", "-n", installed.consumer)
    assert not attempt(cluster, gw, "get", "secrets", "-n", own)
    assert not attempt(cluster, gw, "get", "endpoints.vpcep.io", "-A")
    assert not attempt(cluster, gw, "get", "services", "-n", installed.provider)


# The user roles (R35, R41) -------------------------------------------------------------------------


def _bind(cluster: Any, namespace: str, role: str, user: str) -> None:
    cluster.kubectl_run(
        "create", "rolebinding", f"{role}-{user}", "-n", namespace, f"--clusterrole={role}", f"--user={user}"
    )


def test_viewer_reads_but_cannot_create_or_decide(cluster: Any, installed: Install) -> None:
    user = f"viewer-{uuid.uuid4().hex[:6]}"
    ns = installed.consumer
    _bind(cluster, ns, "vpcep-viewer", user)
    _apply_in(
        cluster,
        ns,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "vpcep-quota"},
            "data": {"account": "x"},
        },
    )
    assert attempt(cluster, user, "get", "endpoints.vpcep.io", "-n", ns)
    assert attempt(cluster, user, "get", "endpointservices.vpcep.io,whitelists.vpcep.io", "-n", ns)
    assert attempt(cluster, user, "get", "configmap", "vpcep-quota", "-n", ns)  # R41
    assert not create(
        cluster,
        user,
        ns,
        {
            "apiVersion": "vpcep.io/v1alpha1",
            "kind": "Endpoint",
            "metadata": {"name": "mine"},
            "spec": {"serviceName": "local-1.db.00000000-0000-4000-8000-000000000001"},
        },
    )
    assert not attempt(cluster, user, "delete", "endpoints.vpcep.io", "db", "-n", ns)
    assert not attempt(
        cluster, user, "get", "endpoints.vpcep.io", "-n", installed.provider
    )  # other namespace


def test_editor_manages_services_endpoints_whitelists_and_decides_connections(
    cluster: Any, installed: Install
) -> None:
    user = f"editor-{uuid.uuid4().hex[:6]}"
    ns = installed.provider
    _bind(cluster, ns, "vpcep-editor", user)
    _apply_in(
        cluster,
        ns,
        {
            "apiVersion": "vpcep.io/v1alpha1",
            "kind": "EndpointConnection",
            "metadata": {"name": "conn-2"},
            "spec": {},
        },
    )
    assert create(
        cluster,
        user,
        ns,
        {
            "apiVersion": "vpcep.io/v1alpha1",
            "kind": "EndpointService",
            "metadata": {"name": "api"},
            "spec": {
                "backend": {"kind": "Pod", "name": "api"},
                "ports": [{"protocol": "TCP", "serverPort": 8080, "clientPort": 80}],
            },
        },
    )
    assert create(
        cluster,
        user,
        ns,
        {
            "apiVersion": "vpcep.io/v1alpha1",
            "kind": "Whitelist",
            "metadata": {"name": "partners"},
            "spec": {"endpointService": "api", "accounts": ["iam:domain::beta"]},
        },
    )
    assert attempt(
        cluster,
        user,
        "patch",
        "endpointconnections.vpcep.io",
        "conn-2",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"decision":"Accept"}}',
    )  # R10
    assert attempt(cluster, user, "delete", "whitelists.vpcep.io", "partners", "-n", ns)
    # The operator's parts stay the operator's.
    assert not attempt(
        cluster,
        user,
        "patch",
        "endpointservices.vpcep.io",
        "api",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"phase":"Available"}}',
    )
    assert not create(
        cluster,
        user,
        ns,
        {
            "apiVersion": "vpcep.io/v1alpha1",
            "kind": "EndpointConnection",
            "metadata": {"name": "forged"},
            "spec": {},
        },
    )
    assert not attempt(cluster, user, "delete", "endpointconnections.vpcep.io", "conn-2", "-n", ns)


def test_admin_decides_but_cannot_remove_connections_R44(cluster: Any, installed: Install) -> None:
    """R44: only the operator creates and removes connections; an admin decides them like an editor."""
    user = f"admin-{uuid.uuid4().hex[:6]}"
    ns = installed.provider
    _bind(cluster, ns, "vpcep-admin", user)
    _apply_in(
        cluster,
        ns,
        {
            "apiVersion": "vpcep.io/v1alpha1",
            "kind": "EndpointConnection",
            "metadata": {"name": "conn-3"},
            "spec": {},
        },
    )
    assert not attempt(cluster, user, "delete", "endpointconnections.vpcep.io", "conn-3", "-n", ns)
    assert attempt(
        cluster,
        user,
        "patch",
        "endpointconnections.vpcep.io",
        "conn-3",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"decision":"Reject"}}',
    )
    assert attempt(cluster, user, "get", "events", "-n", ns)


def test_builtin_edit_and_view_roles_gain_the_vpcep_rights(cluster: Any, installed: Install) -> None:
    """R35: the roles aggregate into the built-in ones, so existing namespace editors need no new binding."""
    viewer, editor = f"view-{uuid.uuid4().hex[:6]}", f"edit-{uuid.uuid4().hex[:6]}"
    ns = installed.consumer
    _bind(cluster, ns, "view", viewer)
    _bind(cluster, ns, "edit", editor)
    endpoint = {
        "apiVersion": "vpcep.io/v1alpha1",
        "kind": "Endpoint",
        "metadata": {"name": "via-edit"},
        "spec": {"serviceName": "local-1.db.00000000-0000-4000-8000-000000000001"},
    }
    assert attempt(cluster, viewer, "get", "endpoints.vpcep.io", "-n", ns)
    assert not create(cluster, viewer, ns, endpoint)
    assert create(cluster, editor, ns, endpoint)


def test_examples_are_accepted_by_the_api_server(cluster: Any, installed: Install) -> None:
    """examples/ pass the real CRD schemas and CEL rules (server-side dry run; their namespaces for real)."""
    from test_chart_examples import EXAMPLES, _objects

    objects = [obj for path in EXAMPLES for obj in _objects(path)]
    namespaces = [obj for obj in objects if obj["kind"] == "Namespace"]
    _apply(cluster, namespaces)
    try:
        out = _apply(cluster, [obj for obj in objects if obj["kind"] != "Namespace"], "--dry-run=server")
        assert out.count("serverside-applied (server dry run)") == len(objects) - len(namespaces)
    finally:
        for namespace in namespaces:
            cluster.kubectl_run(
                "delete", "namespace", namespace["metadata"]["name"], "--wait=false", check=False
            )


# The real programs under the chart's RBAC (R36) ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(module: str, args: list[str], kubeconfig: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONPATH": str(REPO / "operator")}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args], stdout=out, stderr=subprocess.STDOUT, env=env
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait(what: str, check: Any, timeout: float, logs: list[Path]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in logs)
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


def _jsonpath(cluster: Any, namespace: str, resource: str, name: str, path: str) -> str:
    proc = cluster.kubectl_run("get", resource, name, "-n", namespace, "-o", f"jsonpath={path}", check=False)
    return str(proc.stdout) if proc.returncode == 0 else ""


def test_operator_and_gateway_serve_an_endpoint_with_only_the_chart_rbac(
    cluster: Any, installed: Install, tmp_path: Path
) -> None:
    """The operator and a gateway agent, each with its ServiceAccount token, bring an Endpoint to Accepted."""
    # Namespaces of its own: the other tests leave objects in the shared ones, which would count in the quota.
    provider, consumer = cluster.create_namespace("e2e-provider"), cluster.create_namespace("e2e-consumer")
    _serve_an_endpoint(
        cluster, installed.release, installed.namespace, provider, consumer, tmp_path, port_slot=0
    )


def test_a_scoped_release_serves_its_namespaces_with_only_roles_there(cluster: Any, tmp_path: Path) -> None:
    """watchNamespaces (SPEC §5): a release of its own whose operator has no namespaced right outside the
    served namespaces still serves an Endpoint there (no refused call in its log), and leaves an Endpoint in
    another namespace alone."""
    namespace = cluster.create_namespace("vpcep-scoped")
    release = f"s{uuid.uuid4().hex[:6]}"
    provider, consumer = cluster.create_namespace("sc-provider"), cluster.create_namespace("sc-consumer")
    outside = cluster.create_namespace("sc-outside")
    scope = (f"watchNamespaces[0]={provider}", f"watchNamespaces[1]={consumer}")
    rendered = render("webhook.enabled=false", *scope, release=release, namespace=namespace)
    assert [
        r["rules"][-1]["resources"]
        for r in rendered.all("ClusterRole")
        if r["metadata"]["name"] == f"{release}-operator"
    ] == [["namespaces"]]
    _apply(cluster, rendered.objects)
    try:
        _serve_an_endpoint(
            cluster, release, namespace, provider, consumer, tmp_path, *scope, port_slot=1, outside=outside
        )
    finally:
        for ns in (namespace, outside):
            cluster.kubectl_run("delete", "namespace", ns, "--wait=false", check=False)
        for obj in rendered.objects:
            cluster_scoped = {
                "ClusterRole",
                "ClusterRoleBinding",
                "ValidatingAdmissionPolicy",
                "ValidatingAdmissionPolicyBinding",
            }
            if obj["kind"] in cluster_scoped and obj["metadata"]["name"].startswith(release):
                cluster.kubectl_run("delete", obj["kind"].lower(), obj["metadata"]["name"], check=False)
            elif obj["kind"] in {"Role", "RoleBinding"} and obj["metadata"]["namespace"] == "kube-system":
                cluster.kubectl_run(
                    "delete", obj["kind"].lower(), obj["metadata"]["name"], "-n", "kube-system", check=False
                )


def _serve_an_endpoint(
    cluster: Any,
    release: str,
    namespace: str,
    provider: str,
    consumer: str,
    tmp_path: Path,
    *sets: str,
    port_slot: int,
    outside: str | None = None,
) -> None:
    """Runs the operator and a gateway with the release's rendered config and RBAC, publishes a service in
    `provider`, connects from `consumer` and checks the Endpoint is Accepted; with `outside`, an Endpoint
    there gets no status. Fails on any refused API call in their logs."""
    first = 30000 + (os.getpid() % 150) * 200 + port_slot * 100  # a port range of our own: others run HAProxy
    # The gateway dials the API server itself here (the chart's channel-off mode), so that the RBAC it is
    # given is what is tested; the chart's defaults, the gateway channel included, run end to end in
    # tests/e2e/test_helm_install.py.
    rendered = render(
        "webhook.enabled=false",
        "gateway.apiChannel.enabled=false",
        f"gateway.ports.first={first}",
        f"gateway.ports.last={first + 99}",
        *sets,
        release=release,
        namespace=namespace,
    )
    service_account = f"system:serviceaccount:{namespace}:{release}"
    config = tmp_path / "config.yaml"
    config.write_text(rendered.one("ConfigMap", f"{release}-operator-config")["data"]["config.yaml"])
    # R47: the chart's operator believes only a Ready pod of the gateway Deployment at the reported address.
    operator_config = yaml.safe_load(config.read_text())
    assert operator_config["verifyGatewayPods"] is True
    create_gateway_pod(
        cluster.kubectl_run,
        namespace,
        f"gw-{os.getpid()}",
        "127.0.0.1",
        operator_config["gatewayDeployment"],
        operator_config["gatewayPodLabels"],
    )
    health = _free_port()
    operator_log, gateway_log = tmp_path / "operator.log", tmp_path / "gateway.log"
    logs = [operator_log, gateway_log]
    gateway = _start(
        "vpcep.gateway.agent",
        [
            "--namespace",
            namespace,
            "--name",
            f"gw-{os.getpid()}",
            "--address",
            "127.0.0.1",
            "--bind-address",
            "127.0.0.1",
            "--runtime-dir",
            str(tmp_path / "gw"),
            "--health-port",
            str(_free_port()),
        ],
        # The token the kubelet binds to the gateway's pod carries the pod name: the chart's admission
        # policy lets the gateway write only the status named after it (R47).
        cluster.kubeconfig_for(
            f"{service_account}-gateway", extra={"authentication.kubernetes.io/pod-name": f"gw-{os.getpid()}"}
        ),
        gateway_log,
    )
    operator = _start(
        "vpcep.main",
        ["--config", str(config), "--liveness", f"http://127.0.0.1:{health}/healthz"],
        cluster.kubeconfig_for(f"{service_account}-operator"),
        operator_log,
    )
    try:
        # The chart's liveness probe target answers.
        _wait("the operator's /healthz", lambda: _healthy(health), 60, logs)
        _apply_in(
            cluster,
            provider,
            *[
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "orders"},
                    "spec": {
                        "ports": [{"port": 8080, "targetPort": 8080}],
                        "selector": {"app": "orders"},
                    },
                },
                {
                    "apiVersion": "vpcep.io/v1alpha1",
                    "kind": "EndpointService",
                    "metadata": {"name": "orders"},
                    "spec": {
                        "backend": {"kind": "Service", "name": "orders"},
                        "ports": [{"protocol": "TCP", "serverPort": 8080, "clientPort": 80}],
                    },
                },
                {
                    "apiVersion": "vpcep.io/v1alpha1",
                    "kind": "Whitelist",
                    "metadata": {"name": "everyone"},
                    "spec": {"endpointService": "orders", "accounts": ["*"]},
                },
            ],
        )
        service_name = _wait(
            "the EndpointService to be Available",
            lambda: (
                _jsonpath(cluster, provider, "endpointservices.vpcep.io", "orders", "{.status.serviceName}")
                if _jsonpath(cluster, provider, "endpointservices.vpcep.io", "orders", "{.status.phase}")
                == "Available"
                else ""
            ),
            120,
            logs,
        )
        endpoint = {
            "apiVersion": "vpcep.io/v1alpha1",
            "kind": "Endpoint",
            "metadata": {"name": "orders"},
            "spec": {"serviceName": service_name},
        }
        if outside is not None:  # applied first: by the time the served one is Accepted, this one was seen
            _apply_in(cluster, outside, endpoint)
        _apply_in(cluster, consumer, endpoint)
        _wait(
            "the Endpoint to be Accepted",
            lambda: (
                _jsonpath(cluster, consumer, "endpoints.vpcep.io", "orders", "{.status.phase}") == "Accepted"
            ),
            120,
            logs,
        )
        assert _jsonpath(cluster, consumer, "endpoints.vpcep.io", "orders", "{.status}")
        assert _jsonpath(cluster, consumer, "endpoints.vpcep.io", "orders", "{.status.nodeIP}")  # R18
        if outside is not None:  # not served: not even a status saying so (docs/operator.md)
            assert _jsonpath(cluster, outside, "endpoints.vpcep.io", "orders", "{.metadata.name}") == "orders"
            assert _jsonpath(cluster, outside, "endpoints.vpcep.io", "orders", "{.status}") == ""
            assert _jsonpath(cluster, outside, "endpoints.vpcep.io", "orders", "{.metadata.finalizers}") == ""
        assert cluster.kubectl_run("get", "endpointconnections.vpcep.io", "-n", provider, "-o", "name").stdout
        _wait(
            "the quota view (R41)",
            lambda: _jsonpath(cluster, consumer, "configmap", "vpcep-quota", "{.data.endpointsUsed}") == "1",
            60,
            logs,
        )
        # Clean up while both still run (finalizers), then look for refused calls in their logs.
        cluster.kubectl_run("delete", "endpoints.vpcep.io", "orders", "-n", consumer, "--timeout=90s")
        cluster.kubectl_run("delete", "endpointservices.vpcep.io", "orders", "-n", provider, "--timeout=90s")
    finally:
        _stop(operator)
        _stop(gateway)
        for tenant in (provider, consumer):
            cluster.kubectl_run("delete", "namespace", tenant, "--wait=false", check=False)
    for log in logs:
        text = log.read_text(errors="replace")
        if os.environ.get("VPCEP_SHOW_LOGS"):
            print(f"--- {log.name}\n{text}")
        # A refused call reads "Forbidden" (kopf, the kubernetes client) or "HTTP 403" (vpcep.k8s); a bare
        # " 403" would also match resourceVersions in the gateway's log ("at resourceVersion 4031").
        refused = "Forbidden" in text or re.search(r"HTTP 403\b|'code': 403\b|\b403 Forbidden", text)
        assert not refused, f"{log.name} shows a refused call:\n{text[-3000:]}"


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _operator_lease_name(installed: Install) -> str:
    for role in installed.objects:
        for rule in role.get("rules") or () if role["kind"] == "Role" else ():
            if "leases" in rule["resources"] and rule.get("resourceNames"):
                return str(rule["resourceNames"][0])
    raise AssertionError("the chart renders no Role naming the operator's Lease")


def test_only_the_operator_may_renew_its_lease_and_no_other_R50(cluster: Any, installed: Install) -> None:
    """Whoever writes the operator's Lease decides which replica reconciles (R50). With the chart's RBAC on
    the test control plane: the operator renews its own Lease; a tenant (admin of its own namespace) and the
    gateway cannot take, change or delete it; the operator cannot write another Lease it did not create."""
    lease, ns = _operator_lease_name(installed), installed.namespace
    tenant = f"tenant-{uuid.uuid4().hex[:6]}"
    _bind(cluster, installed.consumer, "admin", tenant)
    for name in (lease, "someone-elses-lease"):
        _apply_in(
            cluster,
            ns,
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": name},
                "spec": {"holderIdentity": "replica-a", "leaseDurationSeconds": 10},
            },
        )

    def take(user: str, name: str) -> bool:
        current = json.loads(cluster.kubectl_run("get", "lease", name, "-n", ns, "-o", "json").stdout)
        current["spec"]["holderIdentity"] = f"taken-by-{user.rsplit(':', 1)[-1]}"
        return attempt(cluster, user, "replace", "-n", ns, "-f", "-", body=current)

    assert take(installed.operator, lease), "the operator must renew its own Lease"
    taken = {
        "tenant replaces the operator's Lease": take(tenant, lease),
        "tenant patches it": attempt(
            cluster,
            tenant,
            "patch",
            "lease",
            lease,
            "-n",
            ns,
            "--type=merge",
            "-p",
            '{"spec":{"holderIdentity":"x"}}',
        ),
        "tenant deletes it": attempt(cluster, tenant, "delete", "lease", lease, "-n", ns),
        "gateway replaces it": take(installed.gateway, lease),
        "gateway deletes it": attempt(cluster, installed.gateway, "delete", "lease", lease, "-n", ns),
        "operator replaces another Lease": take(installed.operator, "someone-elses-lease"),
        "operator deletes its own Lease": attempt(
            cluster, installed.operator, "delete", "lease", lease, "-n", ns
        ),
    }
    assert not any(taken.values()), {what: allowed for what, allowed in taken.items() if allowed}
    holder = cluster.kubectl_run("get", "lease", lease, "-n", ns, "-o", "jsonpath={.spec.holderIdentity}")
    assert holder.stdout == f"taken-by-{installed.release}-operator"
