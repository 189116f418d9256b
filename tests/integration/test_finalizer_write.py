"""The finalizer is added in one PATCH from what the cache knows (one request less per object created,
SPEC §6), and a cache that lags never overwrites a finalizer another controller added meanwhile."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import kopf

from vpcep.k8s.client import KubeApi
from vpcep.k8s.resources import CONFIG_MAP

OURS = "vpcep.io/finalizer"
THEIRS = "example.com/keep"


class CountingApi(KubeApi):
    """The real client, counting the requests it sends (by method)."""

    def __init__(self, info: kopf.ConnectionInfo) -> None:
        super().__init__(info)
        self.sent: list[str] = []

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.sent.append(method)
        return await super().request(method, path, **kwargs)


def _scene(cluster) -> tuple[str, kopf.ConnectionInfo]:
    namespace = f"finalizer-{uuid.uuid4().hex[:6]}"
    cluster.kubectl_run("create", "namespace", namespace)
    cluster.kubectl_run("create", "configmap", "subject", "-n", namespace, "--from-literal=a=1")
    info = kopf.ConnectionInfo(
        server=cluster.server,
        token=cluster.admin_token,
        ca_path=str(cluster.ca_file) if cluster.ca_file else None,
    )
    return namespace, info


def _stored(cluster, namespace: str) -> dict[str, Any]:
    shown = cluster.kubectl_run("get", "configmap", "subject", "-n", namespace, "-o", "json")
    return dict(json.loads(shown.stdout))


def _drop_finalizers(cluster, namespace: str) -> None:
    patch = json.dumps({"metadata": {"finalizers": None}})
    cluster.kubectl_run("patch", "configmap", "subject", "-n", namespace, "--type=merge", "-p", patch)
    cluster.kubectl_run("delete", "namespace", namespace, "--wait=false")


def test_a_current_cache_adds_the_finalizer_in_one_request(cluster) -> None:
    namespace, info = _scene(cluster)
    version = _stored(cluster, namespace)["metadata"]["resourceVersion"]

    async def add() -> list[str]:
        api = CountingApi(info)
        try:
            await api.ensure_finalizer(CONFIG_MAP, namespace, "subject", OURS, known=((), version))
            return api.sent
        finally:
            await api.close()

    assert asyncio.run(add()) == ["PATCH"]
    assert _stored(cluster, namespace)["metadata"]["finalizers"] == [OURS]
    _drop_finalizers(cluster, namespace)


def test_a_lagging_cache_keeps_the_finalizer_another_controller_added(cluster) -> None:
    namespace, info = _scene(cluster)
    seen = _stored(cluster, namespace)["metadata"]["resourceVersion"]  # what our cache holds
    patch = json.dumps({"metadata": {"finalizers": [THEIRS]}})
    cluster.kubectl_run("patch", "configmap", "subject", "-n", namespace, "--type=merge", "-p", patch)

    async def add() -> list[str]:
        api = CountingApi(info)
        try:
            await api.ensure_finalizer(CONFIG_MAP, namespace, "subject", OURS, known=((), seen))
            return api.sent
        finally:
            await api.close()

    assert asyncio.run(add()) == ["PATCH", "GET", "PATCH"]  # refused as stale, then read and retried
    assert _stored(cluster, namespace)["metadata"]["finalizers"] == [THEIRS, OURS]
    _drop_finalizers(cluster, namespace)
