"""Where the agent's routes come from: the route ConfigMaps (a list+watch) or a directory of JSON files.

Both feed a ``RouteStore``: the set of routes the gateway should serve, plus the newest version
it has seen (the ConfigMaps' resourceVersion, or a counter for files). The store wakes the
reconcile loop; the loop always renders the *whole* set, so a restarted agent needs nothing
but the source to rebuild everything (R30).
"""

from __future__ import annotations

import json
import logging
import pathlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic

from vpcep.api.routing import ROUTE_DATA_KEY, ROUTE_LABEL, ROUTE_NAME_PREFIX, Route

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouteSnapshot:
    """Everything the gateway should serve, as of ``version``."""

    routes: Mapping[str, Route] = field(default_factory=dict)
    # Route objects that could not even be parsed: source key -> why.
    unreadable: Mapping[str, str] = field(default_factory=dict)
    version: int = 0
    synced: bool = False


class RouteStore:
    """Thread-safe holder of the current routes; sources write, the reconcile loop reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, tuple[str, Route]] = {}  # key -> (source key, route)
        self._unreadable: dict[str, str] = {}
        self._version = 0
        self._synced = False
        self.changed = threading.Event()

    def replace_all(self, entries: Mapping[str, str | bytes | None], version: int) -> None:
        """A full listing (first list, relist after a watch expired, or a directory scan)."""
        with self._lock:
            self._routes.clear()
            self._unreadable.clear()
            for key, payload in entries.items():
                self._put_locked(key, payload)
            self._version = max(self._version, version)
            self._synced = True
        self.changed.set()

    def upsert(self, key: str, payload: str | bytes | None, version: int) -> None:
        with self._lock:
            self._routes.pop(key, None)
            self._unreadable.pop(key, None)
            self._put_locked(key, payload)
            self._version = max(self._version, version)
        self.changed.set()

    def delete(self, key: str, version: int) -> None:
        with self._lock:
            self._routes.pop(key, None)
            self._unreadable.pop(key, None)
            self._version = max(self._version, version)
        self.changed.set()

    def bump_version(self, version: int) -> None:
        """A watch bookmark: nothing changed up to ``version``."""
        with self._lock:
            if version <= self._version:
                return
            self._version = version
        self.changed.set()

    def snapshot(self) -> RouteSnapshot:
        with self._lock:
            routes: dict[str, Route] = {}
            unreadable = dict(self._unreadable)
            for key, (_, route) in sorted(self._routes.items()):
                if route.endpointId in routes:
                    unreadable[key] = f"endpointId {route.endpointId} is already used by another route object"
                    continue
                routes[route.endpointId] = route
            return RouteSnapshot(
                routes=routes, unreadable=unreadable, version=self._version, synced=self._synced
            )

    def _put_locked(self, key: str, payload: str | bytes | None) -> None:
        if payload is None:
            self._unreadable[key] = f"no {ROUTE_DATA_KEY} in the route object"
            return
        try:
            route = Route.model_validate_json(payload)
        except pydantic.ValidationError as error:
            self._unreadable[key] = f"invalid route: {_summarize(error)}"
            return
        self._routes[key] = (key, route)


def _summarize(error: pydantic.ValidationError) -> str:
    parts = []
    for item in error.errors()[:3]:
        where = ".".join(str(p) for p in item["loc"]) or "(document)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def endpoint_key_of_configmap(name: str) -> str:
    """Route ConfigMaps are named vpcep-route-<endpointId>; the endpointId names problems."""
    return name[len(ROUTE_NAME_PREFIX) :] if name.startswith(ROUTE_NAME_PREFIX) else name


class DirectoryRouteSource:
    """Routes from ``*.json`` files in a directory (or one file holding a Route or a list of them).

    Used by the data-plane tests and the cluster-less demo. Polled: cheap at this scale, and it
    notices files replaced by rename as well as edits.
    """

    def __init__(self, path: pathlib.Path, store: RouteStore, interval_s: float = 0.2) -> None:
        self._path = path
        self._store = store
        self._interval_s = interval_s
        self._fingerprint: tuple[tuple[str, int, int], ...] | None = None
        self._version = 0

    def scan_once(self) -> bool:
        files = self._files()
        fingerprint = tuple(sorted((str(f), *_stat(f)) for f in files))
        if fingerprint == self._fingerprint:
            return False
        self._fingerprint = fingerprint
        self._version += 1
        entries: dict[str, str | bytes | None] = {}
        for file in files:
            try:
                text = file.read_text()
            except OSError as error:  # vanished between listing and reading
                log.debug("skipping %s: %s", file, error)
                continue
            entries.update(_split_file(file, text))
        self._store.replace_all(entries, self._version)
        return True

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.scan_once()
            except Exception:
                log.exception("reading routes from %s failed; retrying", self._path)
            stop.wait(self._interval_s)

    def _files(self) -> list[pathlib.Path]:
        if self._path.is_dir():
            return sorted(p for p in self._path.glob("*.json") if p.is_file())
        return [self._path] if self._path.exists() else []


def _stat(file: pathlib.Path) -> tuple[int, int]:
    try:
        stat = file.stat()
    except OSError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_size)


def _split_file(file: pathlib.Path, text: str) -> dict[str, str | bytes | None]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return {file.name: text}  # kept as is: parsing it again yields the error to report
    if isinstance(document, list):
        return {f"{file.name}[{i}]": json.dumps(item) for i, item in enumerate(document)}
    return {file.name: text}


class KubeRouteSource:
    """List+watch the route ConfigMaps (label vpcep.io/route=true) in the agent's namespace."""

    def __init__(
        self,
        namespace: str,
        store: RouteStore,
        core_api_factory: Callable[[], Any],
        watch_timeout_s: int = 300,
        retry_s: float = 2.0,
    ) -> None:
        self._namespace = namespace
        self._store = store
        self._core_api_factory = core_api_factory
        self._watch_timeout_s = watch_timeout_s
        self._retry_s = retry_s

    def run(self, stop: threading.Event) -> None:
        from kubernetes import watch  # imported here: the directory mode needs no cluster client
        from kubernetes.client.exceptions import ApiException

        api = self._core_api_factory()
        selector = f"{ROUTE_LABEL}=true"
        resource_version: str | None = None
        while not stop.is_set():
            try:
                if resource_version is None:
                    listing = api.list_namespaced_config_map(self._namespace, label_selector=selector)
                    entries = {
                        endpoint_key_of_configmap(item.metadata.name): (item.data or {}).get(ROUTE_DATA_KEY)
                        for item in listing.items
                    }
                    resource_version = listing.metadata.resource_version
                    self._store.replace_all(entries, _as_int(resource_version))
                    log.info("listed %d route(s) at resourceVersion %s", len(entries), resource_version)
                stream = watch.Watch().stream(
                    api.list_namespaced_config_map,
                    self._namespace,
                    label_selector=selector,
                    resource_version=resource_version,
                    timeout_seconds=self._watch_timeout_s,
                    allow_watch_bookmarks=True,
                )
                for event in stream:
                    if stop.is_set():
                        return
                    resource_version = self._handle(event) or resource_version
            except ApiException as error:
                if error.status == 410:  # our resourceVersion is too old: list again
                    resource_version = None
                    continue
                log.warning("watching route ConfigMaps failed (%s); retrying", error.reason)
                stop.wait(self._retry_s)
            except Exception as error:
                log.warning("watching route ConfigMaps failed (%s); relisting", error)
                resource_version = None
                stop.wait(self._retry_s)

    def _handle(self, event: Mapping[str, Any]) -> str | None:
        kind = event["type"]
        obj = event["object"]
        if kind == "ERROR":
            raw = obj if isinstance(obj, dict) else {}
            if raw.get("code") == 410:
                raise _Expired()
            return None
        if kind == "BOOKMARK":
            # The client leaves a bookmark's object undecoded (a dict: it carries nothing but its
            # resourceVersion); older clients decoded it. The API server sends one about every minute.
            version = (
                obj["metadata"]["resourceVersion"] if isinstance(obj, dict) else obj.metadata.resource_version
            )
            self._store.bump_version(_as_int(version))
            return str(version)
        version = obj.metadata.resource_version
        key = endpoint_key_of_configmap(obj.metadata.name)
        if kind == "DELETED":
            self._store.delete(key, _as_int(version))
        else:
            self._store.upsert(key, (obj.data or {}).get(ROUTE_DATA_KEY), _as_int(version))
        return str(version)


class _Expired(Exception):
    """The watch's resourceVersion expired; handled by relisting."""


def _as_int(resource_version: str | None) -> int:
    try:
        return int(resource_version or 0)
    except ValueError:  # resourceVersions are opaque; etcd's are integers, and the contract assumes so
        return 0
