"""How watch events on route ConfigMaps change the agent's route set."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import watch

from vpcep.gateway.route_source import KubeRouteSource, RouteStore, endpoint_key_of_configmap

from .factories import make_route


def configmap(endpoint_id: str, resource_version: str, payload: str | None) -> Any:
    data = None if payload is None else {"route.json": payload}
    return SimpleNamespace(
        metadata=SimpleNamespace(name=f"vpcep-route-{endpoint_id}", resource_version=resource_version),
        data=data,
    )


@pytest.fixture
def source_and_store() -> tuple[KubeRouteSource, RouteStore]:
    store = RouteStore()
    return KubeRouteSource("vpcep-system", store, core_api_factory=lambda: None), store


def test_added_modified_deleted_and_bookmarks_track_the_resource_version(
    source_and_store: tuple[KubeRouteSource, RouteStore],
) -> None:
    source, store = source_and_store
    store.replace_all({}, version=100)
    source._handle({"type": "ADDED", "object": configmap("e1", "101", make_route("e1").model_dump_json())})
    source._handle(
        {
            "type": "MODIFIED",
            "object": configmap("e1", "105", make_route("e1", maxConnections=7).model_dump_json()),
        }
    )
    snapshot = store.snapshot()
    assert snapshot.routes["e1"].maxConnections == 7 and snapshot.version == 105
    assert source._handle({"type": "BOOKMARK", "object": SimpleNamespace(
        metadata=SimpleNamespace(resource_version="130"))}) == "130"  # fmt: skip
    assert store.snapshot().version == 130
    source._handle({"type": "DELETED", "object": configmap("e1", "131", None)})
    assert store.snapshot().routes == {} and store.snapshot().version == 131


def test_a_bookmark_as_the_kubernetes_client_delivers_it_moves_the_version_without_a_relist() -> None:
    """The API server sends a bookmark about every minute; the client's own decoding leaves its object a
    dict. Handled as an attribute object, every bookmark broke the watch into a full relist of every route
    (seen on the chart's gateway pod through the gateway channel, R45)."""
    store = RouteStore()
    store.replace_all({}, version=100)
    source = KubeRouteSource("vpcep-system", store, core_api_factory=lambda: None)
    line = json.dumps(
        {"type": "BOOKMARK", "object": {"kind": "ConfigMap", "apiVersion": "v1",
                                        "metadata": {"resourceVersion": "140"}}}
    )  # fmt: skip
    event = watch.Watch().unmarshal_event(line, "V1ConfigMap")
    assert source._handle(event) == "140"
    assert store.snapshot().version == 140


def test_a_configmap_without_route_json_is_reported_under_its_endpoint(
    source_and_store: tuple[KubeRouteSource, RouteStore],
) -> None:
    source, store = source_and_store
    source._handle({"type": "ADDED", "object": configmap("e2", "7", None)})
    assert "route.json" in store.snapshot().unreadable["e2"]


def test_configmap_names_map_to_endpoint_ids() -> None:
    assert endpoint_key_of_configmap("vpcep-route-5f1c2a9e") == "5f1c2a9e"
    assert endpoint_key_of_configmap("something-else") == "something-else"
