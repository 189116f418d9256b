"""The operator's start-up LIST reads the API a page at a time (SPEC §6: 10,000 endpoints within 300 MB),
and still sees every object exactly once."""

from __future__ import annotations

import asyncio
import uuid

import kopf

from vpcep.k8s.client import KubeApi
from vpcep.k8s.resources import CONFIG_MAP


def test_paged_list_returns_every_object_once_with_the_lists_version(cluster) -> None:
    namespace = f"paging-{uuid.uuid4().hex[:6]}"
    cluster.kubectl_run("create", "namespace", namespace)
    for n in range(7):
        cluster.kubectl_run("create", "configmap", f"page-{n}", "-n", namespace, "--from-literal=n=" + str(n))
    info = kopf.ConnectionInfo(
        server=cluster.server,
        token=cluster.admin_token,
        ca_path=str(cluster.ca_file) if cluster.ca_file else None,
    )

    async def read_pages() -> list[tuple[list[str], int]]:
        api = KubeApi(info)
        try:
            return [
                (sorted(item["metadata"]["name"] for item in items), version)
                async for items, version in api.list_pages(CONFIG_MAP, namespace, page_size=3)
            ]
        finally:
            await api.close()

    pages = asyncio.run(read_pages())
    names = [name for items, _ in pages for name in items if name.startswith("page-")]
    assert sorted(names) == [f"page-{n}" for n in range(7)]
    assert len(pages) >= 3, "seven objects in pages of three take at least three requests"
    assert all(len(items) <= 3 for items, _ in pages)
    assert len({version for _, version in pages}) == 1 and pages[0][1] > 0
    cluster.kubectl_run("delete", "namespace", namespace, "--wait=false")
