"""The operator's one watch path: one kind in one namespace (or cluster-wide), optionally metadata only.

Every cache the operator keeps is fed by these watches (vpcep.runtime.source); kopf watches nothing. Two
choices kopf would not offer: a watch per namespace and label selector (the objects the operator built, its
own ConfigMaps in its namespace only, so it needs no right to list ConfigMaps elsewhere), and metadata-only
watches (backends, R1: the operator only needs to hear *that* a named Service or Pod changed, never every
Pod's spec and status).

A watch lists first (to learn where to start), then streams from that resourceVersion; it resumes from the
last version it saw after a dropped connection (with backoff), and lists again when the server answers
410 Gone (the version fell out of the server's window).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from vpcep.k8s.client import ApiError, KubeApi, Manifest
from vpcep.k8s.resources import ResourceKind

# The `, application/json` fallback: a server without metadata-only encoding sends whole objects, which
# carry the same metadata (the handlers read nothing else).
METADATA_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json"
METADATA_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json"
GONE = 410
LIST_PAGE = 500
SERVER_TIMEOUT_SECONDS = 300
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
SHARED_VALUE_LENGTH = 32  # label values up to this long are shared (interned); longer ones are ids

logger = logging.getLogger(__name__)

EventHandler = Callable[[str | None, Manifest], Awaitable[None]]
RelistHandler = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class WatchTarget:
    """What one watch covers. `replay`: the start-up LIST (and every re-list) is delivered as events of type
    None, and objects gone meanwhile as DELETED; without it only the list's version is fetched (limit=1)
    and `on_relist` is told to treat everything as possibly changed.
    """

    kind: ResourceKind
    namespace: str | None  # None: every namespace
    label_selector: str | None = None
    metadata_only: bool = False
    replay: bool = True

    @property
    def title(self) -> str:
        where = self.namespace or "all namespaces"
        return f"{self.kind.plural}{' (metadata)' if self.metadata_only else ''} in {where}"


class Gone(Exception):
    """The resourceVersion to resume from is no longer served: list again."""


Slim = tuple[str, str, str, tuple[tuple[str, str], ...]]  # name, namespace, uid, labels


def _slim(meta: dict[str, Any]) -> Slim:
    """What a synthesized DELETED event will carry (what handlers and caches read of a deleted object), as a
    tuple: one per watched object is kept, about 60,000 at SPEC §6 scale, and a dict costs twice as much.
    Namespaces, label keys and short label values repeat across objects: one shared copy of each (about 0.4 KB
    less per object)."""
    given = (meta.get("labels") or {}).items()
    labels = tuple(sorted((sys.intern(str(key)), _shared(str(value))) for key, value in given))
    namespace = sys.intern(str(meta.get("namespace") or ""))
    return (str(meta.get("name") or ""), namespace, str(meta.get("uid") or ""), labels)


def _shared(value: str) -> str:
    return sys.intern(value) if len(value) <= SHARED_VALUE_LENGTH else value  # not per-object ids


def _deleted_metadata(slim: Slim, version: str) -> dict[str, Any]:
    name, namespace, uid, labels = slim
    return {
        "name": name,
        "namespace": namespace or None,
        "uid": uid,
        "labels": dict(labels),
        "resourceVersion": version,
    }


class Watch:
    def __init__(
        self,
        api: KubeApi,
        target: WatchTarget,
        on_event: EventHandler,
        on_relist: RelistHandler | None = None,
        *,
        server_timeout: int = SERVER_TIMEOUT_SECONDS,
        backoff: tuple[float, ...] = BACKOFF_SECONDS,
    ) -> None:
        self.api = api
        self.target = target
        self.on_event = on_event
        self.on_relist = on_relist
        self.server_timeout = server_timeout
        self.backoff = backoff
        self.version: str | None = None
        self.lists = 0  # how many times it listed (start-up included): tests and logs read it
        self.listed = asyncio.Event()  # set once the first LIST has been delivered in full
        self._known: dict[str, Slim] = {}  # uid -> slim metadata (replay mode only)

    @property
    def _params(self) -> dict[str, str]:
        return {"labelSelector": self.target.label_selector} if self.target.label_selector else {}

    async def run(self) -> None:
        """Forever (until cancelled): list, stream, resume or re-list; never gives up."""
        failures = 0
        while True:
            try:
                if self.version is None:
                    await self._relist()
                await self._stream()
                failures = 0  # the server closed an idle stream: resume at once
            except Gone:
                logger.info("watch %s: resourceVersion expired, listing again", self.target.title)
                self.version = None
            except asyncio.CancelledError:
                raise
            except (ApiError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as error:
                if isinstance(error, ApiError) and error.status == GONE:
                    self.version = None
                    continue
                delay = self.backoff[min(failures, len(self.backoff) - 1)]
                failures += 1
                logger.warning("watch %s failed (%s); again in %.1fs", self.target.title, error, delay)
                await asyncio.sleep(delay)

    async def _relist(self) -> None:
        path = self.target.kind.collection_path(self.target.namespace)
        accept = METADATA_LIST_ACCEPT if self.target.metadata_only else None
        if not self.target.replay:
            answer = await self.api.request("GET", path, params={**self._params, "limit": "1"}, accept=accept)
            self.version = str(((answer or {}).get("metadata") or {}).get("resourceVersion") or "")
            self.lists += 1
            self.listed.set()
            if self.on_relist is not None:
                await self.on_relist()
            return
        # Delivered page by page: only one page of bodies is ever in memory.
        live: dict[str, Slim] = {}
        token: str | None = None
        version = ""
        while True:
            params = {**self._params, "limit": str(LIST_PAGE), **({"continue": token} if token else {})}
            answer = await self.api.request("GET", path, params=params, accept=accept) or {}
            meta = answer.get("metadata") or {}
            version = version or str(meta.get("resourceVersion") or "")
            for item in answer.get("items") or []:
                item_meta = item.get("metadata") or {}
                live[str(item_meta.get("uid"))] = _slim(item_meta)
                await self._deliver(None, item)
            token = meta.get("continue")
            if not token:
                break
        self.version = version
        self.lists += 1
        for uid, slim in self._known.items():
            if uid not in live:  # deleted while no watch was open: the stream will never tell
                await self._deliver("DELETED", {"metadata": _deleted_metadata(slim, version)})
        self._known = live
        self.listed.set()
        if self.on_relist is not None:
            await self.on_relist()

    async def _stream(self) -> None:
        params = {
            **self._params,
            "resourceVersion": self.version or "",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self.server_timeout),
        }
        accept = METADATA_ACCEPT if self.target.metadata_only else None
        async for event in self.api.watch(
            self.target.kind,
            self.target.namespace,
            params,
            accept=accept,
            read_timeout=self.server_timeout + 30,
        ):
            kind = event.get("type")
            body = event.get("object") or {}
            if kind == "ERROR":
                if body.get("code") == GONE:
                    raise Gone()
                raise ApiError(int(body.get("code") or 0), "WATCH", "", json.dumps(body))
            meta = body.get("metadata") or {}
            self.version = str(meta.get("resourceVersion") or self.version)
            if kind == "BOOKMARK":
                continue
            if self.target.replay:
                uid = str(meta.get("uid"))
                if kind == "DELETED":
                    self._known.pop(uid, None)
                else:
                    self._known[uid] = _slim(meta)
            await self._deliver(kind, body)

    async def _deliver(self, kind: str | None, body: Manifest) -> None:
        """A failing handler must not end the watch: the next event or re-list gives it another chance."""
        try:
            await self.on_event(kind, body)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("watch %s: handling a %s event failed", self.target.title, kind or "listed")
