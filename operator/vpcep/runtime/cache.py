"""A read cache of small projections of watched objects, keyed for the lookups the controllers need.

One cache per watched kind, fed by that kind's watch (vpcep.runtime.source): the LIST that starts it, then
its events, in order. A projection maps an object to {lookup key: value}; nothing else of the object is kept
(never whole bodies). Why not kopf indexes: before any handler runs, kopf makes every object of an indexed
kind wait on a shared toggle flipped once per object -- start-up cost grows with the square of the object
count.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

Body = dict[str, Any]
Projection = dict[Any, Any]
Project = Callable[[Body], Projection]


def resource_version(body: Mapping[str, Any]) -> int:
    """metadata.resourceVersion as a number (0 when absent or not a number)."""
    try:
        return int((body.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class _One:
    """A bucket holding one object's value: most keys name one object (an endpoint by name, by uid), and a
    dict per key would cost about 200 bytes each -- megabytes at SPEC §6 scale."""

    __slots__ = ("uid", "value")

    def __init__(self, uid: str, value: Any) -> None:
        self.uid = uid
        self.value = value


Bucket = _One | dict[str, Any]


class ObjectCache:
    """key -> the projections stored under it (one object's, or {uid: projection} when several share it)."""

    def __init__(self, project: Project) -> None:
        self._project = project
        self._by_uid: dict[str, tuple[int, tuple[Any, ...]]] = {}
        self._index: dict[Any, Bucket] = {}

    def apply(self, event_type: str | None, body: Body) -> tuple[Projection | None, Projection | None] | None:
        """Take in one watch event; returns (old, new) projections when it told the cache something new, None
        when not (a re-list repeating the version the cache holds). Deletes always count: dependents must
        hear of them."""
        uid = str((body.get("metadata") or {}).get("uid") or "")
        if not uid:
            return None
        old = self._projection(uid)
        if event_type == "DELETED":
            self._drop(uid)
            return old, None
        version = resource_version(body)
        current = self._by_uid.get(uid)
        if current is not None and version and current[0] == version:
            return None
        self._drop(uid)
        new = self._project(body)
        if not new:
            return (old, None) if old is not None else None
        self._by_uid[uid] = (version, tuple(new))
        for key, value in new.items():
            bucket = self._index.get(key)
            if bucket is None or (isinstance(bucket, _One) and bucket.uid == uid):
                self._index[key] = _One(uid, value)
            elif isinstance(bucket, _One):
                self._index[key] = {bucket.uid: bucket.value, uid: value}
            else:
                bucket[uid] = value
        return old, new

    def _projection(self, uid: str) -> Projection | None:
        current = self._by_uid.get(uid)
        if current is None:
            return None
        projection = {}
        for key in current[1]:
            bucket = self._index[key]
            projection[key] = bucket.value if isinstance(bucket, _One) else bucket[uid]
        return projection

    def _drop(self, uid: str) -> None:
        current = self._by_uid.pop(uid, None)
        if current is None:
            return
        for key in current[1]:
            bucket = self._index.get(key)
            if isinstance(bucket, _One):
                if bucket.uid == uid:
                    del self._index[key]
            elif bucket is not None:
                bucket.pop(uid, None)
                if len(bucket) == 1:
                    ((other, value),) = bucket.items()
                    self._index[key] = _One(other, value)
                elif not bucket:
                    del self._index[key]

    # --- the read side (vpcep.state.observed)
    def get(self, key: Any) -> Collection[Any] | None:
        bucket = self._index.get(key)
        if bucket is None:
            return None
        return (bucket.value,) if isinstance(bucket, _One) else bucket.values()

    def keys(self) -> Iterator[Any]:
        return iter(list(self._index))

    def __iter__(self) -> Iterator[Any]:
        return self.keys()

    def __len__(self) -> int:
        return len(self._by_uid)
