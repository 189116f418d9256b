"""Names, labels, owner references and content hashes shared by every manifest the operator builds."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "vpcep-operator"
ENDPOINT_UID_LABEL = "vpcep.io/endpoint-uid"
ENDPOINT_ID_LABEL = "vpcep.io/endpoint-id"
ENDPOINT_SERVICE_LABEL = "vpcep.io/endpoint-service"
SPEC_HASH_ANNOTATION = "vpcep.io/spec-hash"

Manifest = dict[str, Any]

_NOT_LABEL_CHARS = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class Owner:
    """The object that owns a built child (same namespace only: Kubernetes has no cross-namespace owners)."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    def reference(self) -> Manifest:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
        }


def dns_label(prefix: str, name: str, limit: int = 63) -> str:
    """`prefix-name` as a DNS-1035 label; long or dotted names get a hash suffix so they stay unique."""
    cleaned = _NOT_LABEL_CHARS.sub("-", name.lower()).strip("-")
    candidate = f"{prefix}-{cleaned}"
    if len(candidate) <= limit and cleaned == name:
        return candidate
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    head = candidate[: limit - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}"


def content_hash(manifest: Manifest) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[
        :16
    ]


def stamped(manifest: Manifest) -> Manifest:
    """The manifest with its own content hash as an annotation: equal hash = nothing to apply (cheap
    restarts).
    """
    digest = content_hash(manifest)
    metadata = manifest["metadata"]
    metadata["annotations"] = {**metadata.get("annotations", {}), SPEC_HASH_ANNOTATION: digest}
    return manifest


def spec_hash_of(body: Manifest) -> str | None:
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(SPEC_HASH_ANNOTATION)
    return str(value) if value else None


def status_patch(status: BaseModel) -> Manifest:
    """A JSON merge patch for a whole status: fields that are unset now are sent as null, so a value written
    earlier is removed instead of left behind (a Rejected endpoint must not keep showing its old nodeIP).
    Only top-level fields: lists (conditions, gatewayPorts) are replaced whole by a merge patch anyway, and a
    null inside them would fail the CRD schema.
    """
    written = status.model_dump(mode="json", exclude_none=True)
    return {**dict.fromkeys(type(status).model_fields), **written}
