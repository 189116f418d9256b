"""KubeApi: the one place that talks to the Kubernetes API (STYLE.md: vpcep/k8s is the only gateway).

Async over aiohttp with the credentials the operator logged in with (kopf's login, vpcep.handlers.operator),
so the operator needs no second client library in memory. Writes are always PATCH: server-side apply with
field manager `vpcep-operator` for objects the operator owns, JSON merge patches for status and metadata.
Retries for transient failures and optimistic-concurrency conflicts live here and nowhere else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import aiohttp
from pydantic_core import from_json, to_json

from vpcep.k8s.resources import ResourceKind, kind_of

FIELD_MANAGER = "vpcep-operator"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"  # JSON is YAML: the body is sent as JSON.
MERGE_CONTENT_TYPE = "application/merge-patch+json"
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0, 4.0)
# Seconds: a longer Retry-After is cut to this (the caller's work queue backs off further after an error).
RETRY_AFTER_CAP = 30.0
CONFLICT_ATTEMPTS = 8
LIST_PAGE_SIZE = 500

logger = logging.getLogger(__name__)

Manifest = dict[str, Any]
Manifests = list[Manifest]  # a module-level alias: inside KubeApi, `list` is the method below


class ApiError(Exception):
    """A non-transient answer from the API server (or a transient one that outlived the retries)."""

    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.body = body
        try:
            self.message = str(json.loads(body).get("message", body))
        except (ValueError, AttributeError):
            self.message = body
        super().__init__(f"{method} {path}: HTTP {status}: {self.message}")


class Credentials(Protocol):
    """Where the API server is and how to authenticate (what kopf.ConnectionInfo offers)."""

    @property
    def server(self) -> str: ...

    def as_ssl_context(self) -> ssl.SSLContext: ...

    def as_http_headers(self) -> dict[str, str]: ...


def retry_after_seconds(header: str | None) -> float:
    """Seconds a Retry-After header asks to wait (delta-seconds, as the API server sends it; an HTTP date or
    garbage counts as no request), at most RETRY_AFTER_CAP."""
    try:
        return min(max(float(header or 0), 0.0), RETRY_AFTER_CAP)
    except ValueError:
        return 0.0


class KubeApi:
    def __init__(self, info: Credentials, *, concurrency: int = 16) -> None:
        self._server = info.server.rstrip("/")
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency, ssl=info.as_ssl_context()),
            headers={**info.as_http_headers(), "User-Agent": FIELD_MANAGER},
            timeout=aiohttp.ClientTimeout(total=30),
        )
        self._in_flight = asyncio.Semaphore(concurrency)
        self._info = info
        self._streams: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        await self._session.close()
        if self._streams is not None:
            await self._streams.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str | None = None,
    ) -> Manifest | None:
        """One API call with retries on transient failures; returns the decoded body, None for 404."""
        # pydantic's JSON (already loaded for the models): a third less CPU than the json module to read
        # a LIST of 10,000 objects, a restart's largest cost (SPEC §6), and several times faster to write.
        data = None if body is None else to_json(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        if accept is not None:
            headers["Accept"] = accept
        for attempt, delay in enumerate((*RETRY_DELAYS, None)):
            asked = 0.0  # what the server asked for in Retry-After (429 from priority and fairness, 503)
            try:
                async with (
                    self._in_flight,
                    self._session.request(
                        method,
                        self._server + path,
                        params=params,
                        data=data,
                        headers=headers or None,
                    ) as response,
                ):
                    raw = await response.read()
                    if response.status == 404:
                        return None
                    if response.status < 400:
                        return from_json(raw) if raw else {}
                    if response.status not in TRANSIENT_STATUSES or delay is None:
                        raise ApiError(response.status, method, path, raw.decode(errors="replace"))
                    asked = retry_after_seconds(response.headers.get("Retry-After"))
            except (TimeoutError, aiohttp.ClientError) as error:
                if delay is None:
                    raise ApiError(0, method, path, f"{type(error).__name__}: {error}") from error
            logger.debug("retrying %s %s (attempt %d)", method, path, attempt + 1)
            await asyncio.sleep(max(delay, asked))
        raise AssertionError("unreachable")  # pragma: no cover

    async def watch(
        self,
        kind: ResourceKind,
        namespace: str | None,
        params: dict[str, str],
        *,
        accept: str | None = None,
        read_timeout: float,
    ) -> AsyncIterator[Manifest]:
        """One watch request: yields its events until the server ends the stream.

        Watches get a session of their own without a connection limit: each holds a connection for minutes,
        and must never take the places of the short calls bounded by `concurrency`.
        """
        if self._streams is None:
            self._streams = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ssl=self._info.as_ssl_context()),
                headers={**self._info.as_http_headers(), "User-Agent": FIELD_MANAGER},
            )
        path = kind.collection_path(namespace)
        async with self._streams.get(
            self._server + path,
            params={**params, "watch": "true"},
            headers={"Accept": accept} if accept else None,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=read_timeout),
        ) as response:
            if response.status >= 400:
                raise ApiError(response.status, "WATCH", path, await response.text())
            pending = b""
            async for chunk in response.content.iter_any():  # lines may exceed aiohttp's readline limit
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield from_json(line)

    async def get(self, kind: ResourceKind, namespace: str | None, name: str) -> Manifest | None:
        return await self.request("GET", kind.object_path(namespace, name))

    async def list(
        self, kind: ResourceKind, namespace: str | None = None, *, label_selector: str | None = None
    ) -> Manifests:
        params = {"labelSelector": label_selector} if label_selector else None
        answer = await self.request("GET", kind.collection_path(namespace), params=params)
        return list((answer or {}).get("items", []))

    async def list_pages(
        self,
        kind: ResourceKind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        page_size: int = LIST_PAGE_SIZE,
    ) -> AsyncIterator[tuple[Manifests, int]]:
        """A LIST in pages, each with the list's resourceVersion (what a cache primed from it is current
        as of): only one page of bodies is ever in memory -- 10,000 whole bodies would be hundreds of MB.
        """
        params = {"limit": str(page_size)}
        if label_selector:
            params["labelSelector"] = label_selector
        while True:
            answer = await self.request("GET", kind.collection_path(namespace), params=params) or {}
            metadata = answer.get("metadata") or {}
            yield list(answer.get("items", [])), int(metadata.get("resourceVersion") or 0)
            if not metadata.get("continue"):
                return
            params["continue"] = metadata["continue"]

    async def apply(self, manifest: Manifest) -> Manifest:
        """Server-side apply of an object the operator owns (force: the operator's fields are the
        operator's).
        """
        kind = kind_of(manifest)
        meta = manifest["metadata"]
        answer = await self.request(
            "PATCH",
            kind.object_path(meta.get("namespace"), meta["name"]),
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
            body=manifest,
            content_type=APPLY_CONTENT_TYPE,
        )
        if answer is None:  # a 404 on apply means the namespace is gone
            raise ApiError(404, "PATCH", kind.object_path(meta.get("namespace"), meta["name"]), "not found")
        return answer

    async def merge_patch(
        self,
        kind: ResourceKind,
        namespace: str | None,
        name: str,
        patch: Manifest,
        *,
        subresource: str | None = None,
    ) -> Manifest | None:
        """JSON merge patch (status, labels, one field); None when the object is gone."""
        path = kind.object_path(namespace, name) + (f"/{subresource}" if subresource else "")
        return await self.request(
            "PATCH", path, params={"fieldManager": FIELD_MANAGER}, body=patch, content_type=MERGE_CONTENT_TYPE
        )

    async def patch_status(
        self, kind: ResourceKind, namespace: str | None, name: str, status: Manifest
    ) -> Manifest | None:
        return await self.merge_patch(kind, namespace, name, {"status": status}, subresource="status")

    async def delete(
        self, kind: ResourceKind, namespace: str | None, name: str, *, uid: str | None = None
    ) -> bool:
        """Delete (background propagation); with uid, only that incarnation. True if something was deleted."""
        body: Manifest = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            answer = await self.request("DELETE", kind.object_path(namespace, name), body=body)
        except ApiError as error:
            if error.status == 409:  # the uid precondition failed: a newer object of that name lives on
                return False
            raise
        return answer is not None

    async def update_with_retry(
        self,
        kind: ResourceKind,
        namespace: str | None,
        name: str,
        change: Callable[[Manifest], Manifest | None],
        *,
        known: Manifest | None = None,
    ) -> Manifest | None:
        """Read-modify-write guarded by resourceVersion: `change` returns a merge patch or None
        (nothing to do). `known` (the object as a cache last saw it, resourceVersion included) stands in
        for the first read: one request instead of two when the cache is current, a conflict otherwise.

        Used for list-valued metadata (finalizers) that a merge patch would otherwise overwrite blindly.
        """
        for attempt in range(CONFLICT_ATTEMPTS):
            given = known if attempt == 0 and known is not None else None
            current = given if given is not None else await self.get(kind, namespace, name)
            if current is None:
                return None
            patch = change(current)
            if patch is None:
                return current
            patch.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
            try:
                return await self.merge_patch(kind, namespace, name, patch)
            except ApiError as error:
                if error.status != 409:
                    raise
        raise ApiError(409, "PATCH", kind.object_path(namespace, name), "conflict persisted across retries")

    async def ensure_finalizer(
        self,
        kind: ResourceKind,
        namespace: str,
        name: str,
        finalizer: str,
        *,
        known: tuple[tuple[str, ...], str] | None = None,
    ) -> None:
        """`known`: the finalizers and resourceVersion a cache holds, tried first (see update_with_retry)."""

        def add(current: Manifest) -> Manifest | None:
            finalizers = list(current["metadata"].get("finalizers") or [])
            if finalizer in finalizers or current["metadata"].get("deletionTimestamp"):
                return None
            return {"metadata": {"finalizers": [*finalizers, finalizer]}}

        cached = (
            {"metadata": {"finalizers": list(known[0]), "resourceVersion": known[1]}}
            if known is not None and known[1]
            else None
        )
        await self.update_with_retry(kind, namespace, name, add, known=cached)

    async def remove_finalizer(self, kind: ResourceKind, namespace: str, name: str, finalizer: str) -> None:
        def remove(current: Manifest) -> Manifest | None:
            finalizers = list(current["metadata"].get("finalizers") or [])
            if finalizer not in finalizers:
                return None
            return {"metadata": {"finalizers": [f for f in finalizers if f != finalizer]}}

        await self.update_with_retry(kind, namespace, name, remove)
