"""The operator's read cache, fed by one watch per kind: it tells its subscribers only what is new (a re-list
repeating a version changes nothing), and hands them the projections before and after each change."""

from __future__ import annotations

from typing import Any

from vpcep.runtime.cache import ObjectCache


def body(uid: str, version: int, name: str) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "resourceVersion": str(version), "name": name}}


def by_name(item: dict[str, Any]) -> dict[Any, Any]:
    return {("name", item["metadata"]["name"]): item["metadata"]["resourceVersion"]}


def test_a_relisted_version_is_nothing_new_and_a_change_moves_the_keys() -> None:
    cache = ObjectCache(by_name)
    assert cache.apply(None, body("u1", 1, "a")) == (None, {("name", "a"): "1"})
    assert cache.apply(None, body("u1", 1, "a")) is None  # a re-list after 410 repeating what is held
    assert cache.apply("MODIFIED", body("u1", 2, "b")) == ({("name", "a"): "1"}, {("name", "b"): "2"})
    assert cache.get(("name", "a")) is None and list(cache.get(("name", "b")) or []) == ["2"]


def test_a_delete_always_counts_and_hands_over_what_was_known() -> None:
    cache = ObjectCache(by_name)
    cache.apply("ADDED", body("u1", 3, "a"))
    assert cache.apply("DELETED", {"metadata": {"uid": "u1", "name": "a"}}) == ({("name", "a"): "3"}, None)
    assert cache.get(("name", "a")) is None and len(cache) == 0
    # A delete of something never seen still counts: its dependents must hear of it.
    assert cache.apply("DELETED", body("u2", 4, "z")) == (None, None)


def test_objects_the_projection_ignores_are_not_stored() -> None:
    cache = ObjectCache(lambda item: {})
    assert cache.apply("ADDED", body("u1", 1, "a")) is None
    assert len(cache) == 0


def test_a_key_shared_by_several_objects_holds_each_until_it_goes() -> None:
    def by_namespace(item: dict[str, Any]) -> dict[Any, Any]:
        return {("ns", "team-a"): item["metadata"]["name"], ("name", item["metadata"]["name"]): 1}

    cache = ObjectCache(by_namespace)
    for uid, name in (("u1", "a"), ("u2", "b"), ("u3", "c")):
        cache.apply("ADDED", body(uid, 1, name))
    assert sorted(cache.get(("ns", "team-a")) or []) == ["a", "b", "c"]
    cache.apply("DELETED", body("u2", 2, "b"))
    cache.apply("DELETED", body("u1", 2, "a"))
    assert list(cache.get(("ns", "team-a")) or []) == ["c"]
    assert cache.apply("DELETED", body("u3", 2, "c")) == ({("ns", "team-a"): "c", ("name", "c"): 1}, None)
    assert cache.get(("ns", "team-a")) is None and list(cache.keys()) == []
