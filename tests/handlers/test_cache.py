"""The operator's read cache: a start-up LIST and watch events race; the newest resourceVersion wins and a
deleted object never comes back from an older copy."""

from __future__ import annotations

from typing import Any

from vpcep.handlers.cache import ObjectCache


def body(uid: str, version: int, name: str) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "resourceVersion": str(version), "name": name}}


def by_name(item: dict[str, Any]) -> dict[Any, Any]:
    return {("name", item["metadata"]["name"]): item["metadata"]["resourceVersion"]}


def test_an_older_copy_does_not_overwrite_a_newer_one() -> None:
    cache = ObjectCache(by_name)
    cache.upsert(body("u1", 7, "a"))
    cache.upsert(body("u1", 5, "renamed-in-an-old-copy"))
    assert cache.get(("name", "renamed-in-an-old-copy")) is None
    assert list(cache.get(("name", "a")) or []) == ["7"]


def test_a_deleted_object_stays_deleted_when_an_older_list_arrives_late() -> None:
    cache = ObjectCache(by_name)
    cache.upsert(body("u1", 3, "a"))
    cache.delete(body("u1", 9, "a"))
    cache.upsert(body("u1", 8, "a"))  # the LIST was taken before the delete
    assert cache.get(("name", "a")) is None and len(cache) == 0


def test_changed_keys_move_and_prune_drops_what_a_fresh_list_lacks() -> None:
    cache = ObjectCache(by_name)
    cache.upsert(body("u1", 1, "a"))
    cache.upsert(body("u1", 2, "b"))
    cache.upsert(body("u2", 3, "c"))
    cache.upsert(body("u3", 20, "d"))  # newer than the list below: kept
    assert cache.get(("name", "a")) is None and cache.get(("name", "b")) is not None
    cache.prune(live_uids={"u1"}, listed_version=10)
    assert sorted(key[1] for key in cache) == ["b", "d"]


def test_objects_the_projection_ignores_are_not_stored() -> None:
    cache = ObjectCache(lambda item: {})
    cache.upsert(body("u1", 1, "a"))
    assert len(cache) == 0
