"""Uninstall and reinstall keep tenants whole (issue 18 deliverable 4): `helm uninstall` removes the
operator's own objects and keeps the CRDs and every tenant's EndpointServices, Endpoints, Whitelists and
EndpointConnections with their status; a later `helm install` of the release adopts them: the same gateway
ports, marker id, node IP and acceptance, with no tenant action.

No gateway pod runs here (the stand-in runs the operator only), so the endpoint stays Creating/GatewayNotReady
with its allocation; that bytes flow again after a reinstall is not shown here."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from releases import KUBE_DNS, Release, get, install_and_run, listen_ports, status, wait_for

from helm_engine import helm

pytestmark = pytest.mark.cluster

VPCEP_KINDS = ("endpointservices", "endpoints.vpcep.io", "whitelists", "endpointconnections")
CRDS = {f"{kind}.vpcep.io" for kind in ("endpointservices", "endpoints", "whitelists", "endpointconnections")}


def _tenant(cluster: Any) -> tuple[str, str]:
    """A provider publishing a Service backend (no approval), a consumer with an Endpoint to it."""
    provider, consumer = cluster.create_namespace("provider"), cluster.create_namespace("consumer")
    backend = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "db", "namespace": provider},
        "spec": {"selector": {"app": "db"}, "ports": [{"port": 5432, "targetPort": 5432}]},
    }
    service = {
        "apiVersion": "vpcep.io/v1alpha1",
        "kind": "EndpointService",
        "metadata": {"name": "db", "namespace": provider},
        "spec": {
            "backend": {"kind": "Service", "name": "db"},
            "ports": [{"protocol": "TCP", "serverPort": 5432, "clientPort": 5432}],
            "approvalRequired": False,
        },
    }
    whitelist = {
        "apiVersion": "vpcep.io/v1alpha1",
        "kind": "Whitelist",
        "metadata": {"name": "db", "namespace": provider},
        "spec": {"endpointService": "db", "accounts": [f"iam:domain::{consumer}"]},
    }
    for obj in (backend, service, whitelist):
        cluster.kubectl_run("apply", "-f", "-", input=json.dumps(obj))
    return provider, consumer


def _allocation(endpoint: dict[str, Any]) -> dict[str, Any]:
    found = endpoint.get("status") or {}
    return {key: found.get(key) for key in ("markerId", "nodeIP", "gatewayPorts", "dnsName")}


def _vpcep_objects(cluster: Any) -> dict[str, dict[str, Any]]:
    """Every vpcep.io object of the tenants, by kind/namespace/name, with its spec and status."""
    found = {}
    for kind in VPCEP_KINDS:
        for obj in get(cluster, kind, None).get("items", []):
            meta = obj["metadata"]
            found[f"{obj['kind']}/{meta['namespace']}/{meta['name']}"] = {
                "uid": meta["uid"],
                "spec": obj.get("spec"),
                "status": obj.get("status"),
            }
    return found


@pytest.fixture(scope="module")
def release_with_tenants(
    fresh_cluster: Any, loopback_certificate: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Release, str, str]]:
    fresh_cluster.kubectl_run("apply", "-f", "-", input=json.dumps(KUBE_DNS))
    name, namespace = f"keep-{uuid.uuid4().hex[:4]}", f"keep-{uuid.uuid4().hex[:4]}"
    config = helm.Config(kubeconfig_path=str(fresh_cluster.kubeconfig), namespace=namespace)
    release = install_and_run(
        fresh_cluster,
        config,
        name,
        namespace,
        listen_ports(),
        tmp_path_factory.mktemp("first"),
        loopback_certificate,
    )
    try:
        provider, consumer = _tenant(fresh_cluster)
        service_name = wait_for(
            "the service to be Available",
            lambda: (
                (s := status(fresh_cluster, "endpointservices", provider, "db")).get("phase") == "Available"
                and s.get("serviceName")
            ),
            timeout=60,
            logs=release.kubelet.logs,
        )
        endpoint = {
            "apiVersion": "vpcep.io/v1alpha1",
            "kind": "Endpoint",
            "metadata": {"name": "db", "namespace": consumer},
            "spec": {"serviceName": service_name},
        }
        fresh_cluster.kubectl_run("apply", "-f", "-", input=json.dumps(endpoint))
        wait_for(
            "the endpoint's allocation",
            lambda: all(_allocation(get(fresh_cluster, "endpoints.vpcep.io", consumer, "db")).values()),
            timeout=60,
            logs=release.kubelet.logs,
        )
        yield release, provider, consumer
    finally:
        release.kubelet.stop()
        config.close()


def test_uninstall_keeps_crds_and_tenants_and_reinstall_adopts_them(
    fresh_cluster: Any,
    release_with_tenants: tuple[Release, str, str],
    loopback_certificate: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    release, provider, consumer = release_with_tenants
    endpoint_before = get(fresh_cluster, "endpoints.vpcep.io", consumer, "db")
    tenants_before = {
        k: v for k, v in _vpcep_objects(fresh_cluster).items() if f"/{release.namespace}/" not in k
    }
    assert any(k.startswith("EndpointConnection/") for k in tenants_before), tenants_before

    release.config.uninstall(release.name, timeout=120)
    release.kubelet.stop()  # the Deployment is gone: kubelet ends its pod

    # The operator's own objects go ...
    assert get(fresh_cluster, "deployment", release.namespace, f"{release.name}-operator") == {}
    assert get(fresh_cluster, "clusterrole", None, f"{release.name}-operator") == {}
    assert (
        get(
            fresh_cluster,
            "validatingwebhookconfiguration",
            None,
            f"{release.name}-{release.namespace}.vpcep.io",
        )
        == {}
    )
    # ... the CRDs and every tenant object stay as they were, status included.
    crds = {crd["metadata"]["name"] for crd in get(fresh_cluster, "crd", None)["items"]}
    assert crds >= CRDS
    after_uninstall = {k: v for k, v in _vpcep_objects(fresh_cluster).items() if k in tenants_before}
    assert after_uninstall == tenants_before

    # A reinstall of the release adopts them: same allocation, still accepted, no tenant action.
    again = install_and_run(
        fresh_cluster,
        release.config,
        release.name,
        release.namespace,
        listen_ports(),
        tmp_path_factory.mktemp("again"),
        loopback_certificate,
    )
    try:
        wait_for(
            "the reinstalled operator to reconcile the endpoint",
            lambda: (
                (get(fresh_cluster, "endpoints.vpcep.io", consumer, "db").get("status") or {}).get(
                    "observedGeneration"
                )
                and status(fresh_cluster, "endpointservices", provider, "db").get("phase") == "Available"
            ),
            timeout=60,
            logs=again.kubelet.logs,
        )
        endpoint_after = get(fresh_cluster, "endpoints.vpcep.io", consumer, "db")
        assert endpoint_after["metadata"]["uid"] == endpoint_before["metadata"]["uid"]
        assert _allocation(endpoint_after) == _allocation(endpoint_before)
        decisions = [
            (c.get("status") or {}).get("decision") for c in get(fresh_cluster, "vpcec", provider)["items"]
        ]
        before = [
            (v["status"] or {}).get("decision") for k, v in tenants_before.items() if "Connection/" in k
        ]
        assert decisions == before == ["Accept"]
        print(f"reinstall: install {again.install_seconds:.1f} s, operator ready {again.ready_seconds:.1f} s")
    finally:
        again.kubelet.stop()
