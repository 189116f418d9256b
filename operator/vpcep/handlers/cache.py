"""The operator's own read cache: small projections of watched objects, keyed for the lookups it needs.

Why not kopf indexes: before any handler runs, kopf makes every object of an indexed kind wait on a shared
toggle that is flipped once per object, waking all waiters each time -- start-up cost grows with the square
of the object count (about a minute for 1,000 endpoints and their children on 2 cores, measured by
bench/control_plane.py). This cache is filled by one LIST per kind at start-up and kept current by kopf's
watch events; resourceVersions order the two sources, tombstones keep a deleted object from coming back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, ValuesView
from typing import Any

Body = dict[str, Any]
Project = Callable[[Body], dict[Any, Any]]
TOMBSTONE_LIMIT = 100_000


def resource_version(body: Mapping[str, Any]) -> int:
    """metadata.resourceVersion as a number (0 when absent or not a number)."""
    try:
        return int((body.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class ObjectCache:
    """key -> {uid: projection}; `get(key)` gives the projections stored under a key (kopf.Index's shape)."""

    def __init__(self, project: Project) -> None:
        self._project = project
        self._by_uid: dict[str, tuple[int, tuple[Any, ...]]] = {}
        self._index: dict[Any, dict[str, Any]] = {}
        self._tombstones: dict[str, int] = {}

    def upsert(self, body: Body) -> bool:
        """Store a body's projection; False when the cache already holds this version or a newer one
        (kopf's start-up listing repeats what the operator's own LIST primed: nothing to reconcile)."""
        uid = str((body.get("metadata") or {}).get("uid") or "")
        if not uid:
            return False
        version = resource_version(body)
        if uid in self._tombstones and self._tombstones[uid] >= version:
            return False
        current = self._by_uid.get(uid)
        if current is not None and (current[0] > version or (version and current[0] == version)):
            return False  # the same or an older copy (the start-up LIST raced a watch event)
        self._drop(uid)
        keys = self._project(body)
        if not keys:
            return current is not None
        self._by_uid[uid] = (version, tuple(keys))
        for key, value in keys.items():
            self._index.setdefault(key, {})[uid] = value
        return True

    def delete(self, body: Body) -> bool:
        uid = str((body.get("metadata") or {}).get("uid") or "")
        known = uid in self._by_uid
        self._drop(uid)
        if len(self._tombstones) > TOMBSTONE_LIMIT:
            self._tombstones.clear()
        self._tombstones[uid] = max(resource_version(body), self._tombstones.get(uid, 0))
        return known

    def apply_event(self, event_type: str | None, body: Body) -> bool:
        """True when the event told the cache something new (deletes always count: dependents must hear)."""
        if event_type == "DELETED":
            self.delete(body)
            return True
        return self.upsert(body)

    def prune(self, live_uids: set[str], listed_version: int) -> None:
        """After a fresh LIST: forget what it no longer holds (a delete this cache never heard about)."""
        for uid, (version, _) in list(self._by_uid.items()):
            if uid not in live_uids and version <= listed_version:
                self._drop(uid)

    def _drop(self, uid: str) -> None:
        current = self._by_uid.pop(uid, None)
        if current is None:
            return
        for key in current[1]:
            bucket = self._index.get(key)
            if bucket is not None:
                bucket.pop(uid, None)
                if not bucket:
                    del self._index[key]

    # --- the read side: what vpcep.handlers.lookups uses
    def get(self, key: Any) -> ValuesView[Any] | None:
        bucket = self._index.get(key)
        return bucket.values() if bucket is not None else None

    def keys(self) -> Iterator[Any]:
        return iter(list(self._index))

    def __iter__(self) -> Iterator[Any]:
        return self.keys()

    def items(self) -> Iterator[tuple[Any, ValuesView[Any]]]:
        return iter([(key, bucket.values()) for key, bucket in self._index.items()])

    def __len__(self) -> int:
        return len(self._by_uid)
