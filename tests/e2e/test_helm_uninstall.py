"""Uninstall and reinstall keep tenants whole (issue 18 deliverable 4): `helm uninstall` removes the
operator's own objects and keeps the CRDs and every tenant's EndpointServices, Endpoints, Whitelists and
EndpointConnections with their status; a later `helm install` of the release adopts them: the same gateway
ports, marker id, node IP and acceptance, with no tenant action.

No gateway pod runs here (the stand-in runs the operator only), so the endpoint stays Creating/GatewayNotReady
with its allocation; that bytes flow again after a reinstall is not shown here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from releases import (
    Release,
    allocation,
    get,
    install_and_run,
    listen_ports,
    new_release,
    status,
    tenant,
    wait_for,
)

pytestmark = pytest.mark.cluster

VPCEP_KINDS = ("endpointservices", "endpoints.vpcep.io", "whitelists", "endpointconnections")
CRDS = {f"{kind}.vpcep.io" for kind in ("endpointservices", "endpoints", "whitelists", "endpointconnections")}


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
    name, namespace, config = new_release(fresh_cluster, "keep")
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
        provider, consumer = tenant(fresh_cluster, release.kubelet.logs)
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
    # The service's connection count follows the accepted endpoint a moment later (written at most twice a
    # second): take the picture once it has.
    wait_for(
        "the service to count its accepted endpoint",
        lambda: status(fresh_cluster, "endpointservices", provider, "db").get("connectionCount") == 1,
        30,
        release.kubelet.logs,
    )
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
        # The consumer narrows its endpoint: only the reinstalled operator can reconcile that generation.
        narrowed = json.dumps({"spec": {"accessControl": {"sourceCIDRs": ["10.0.0.0/8"]}}})
        fresh_cluster.kubectl_run(
            "patch", "endpoints.vpcep.io", "db", "-n", consumer, "--type=merge", "-p", narrowed
        )
        wait_for(
            "the reinstalled operator to reconcile the endpoint's new generation",
            lambda: (
                (e := get(fresh_cluster, "endpoints.vpcep.io", consumer, "db"))["metadata"]["generation"]
                == (e.get("status") or {}).get("observedGeneration")
                > endpoint_before["metadata"]["generation"]
            ),
            timeout=60,
            logs=again.kubelet.logs,
        )
        assert status(fresh_cluster, "endpointservices", provider, "db").get("phase") == "Available"
        endpoint_after = get(fresh_cluster, "endpoints.vpcep.io", consumer, "db")
        assert endpoint_after["metadata"]["uid"] == endpoint_before["metadata"]["uid"]
        assert allocation(endpoint_after) == allocation(endpoint_before)
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
