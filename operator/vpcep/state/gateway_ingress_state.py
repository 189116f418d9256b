"""What the own watch shows of the gateway ingress NetworkPolicies (R42), by consumer namespace.

A small projection per policy (name, resourceVersion, a hash of the stored spec, the admitted ports): the spec
hash is computed from what is stored, not read from the operator's annotation, so an edit that keeps the
annotation is still seen as drift and undone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vpcep.builders.gateway_ingress import (
    CONSUMER_NAMESPACE_LABEL,
    admitted_ports,
    gateway_ingress_policy_name,
)
from vpcep.builders.meta import content_hash


@dataclass(frozen=True, slots=True)
class IngressPolicyRecord:
    name: str
    resource_version: int
    spec_hash: str
    ports: frozenset[int]


def spec_hash(manifest: dict[str, Any]) -> str:
    return content_hash(manifest.get("spec") or {})


class GatewayIngressState:
    def __init__(self) -> None:
        self._by_namespace: dict[str, IngressPolicyRecord] = {}
        self._waiting: dict[str, set[str]] = {}  # namespace -> endpoints Creating / IngressPolicyPending

    def track_waiting(self, namespace: str, name: str, waiting: bool) -> None:
        """Endpoints waiting for their namespace's policy, woken by every run of its reconcile."""
        if waiting:
            self._waiting.setdefault(namespace, set()).add(name)
        elif name in self._waiting.get(namespace, ()):
            self._waiting[namespace].discard(name)
            if not self._waiting[namespace]:
                del self._waiting[namespace]

    def waiting(self, namespace: str) -> list[str]:
        return sorted(self._waiting.get(namespace, ()))

    def observe(self, event_type: str | None, body: dict[str, Any], operator_namespace: str) -> str | None:
        """Take in a watch event or an API answer; returns the consumer namespace when `body` is one of the
        operator's gateway ingress policies. Only the expected name in the operator's namespace counts: a
        look-alike a tenant writes in its own namespace admits nothing at the gateways and is not believed."""
        meta = body.get("metadata") or {}
        namespace = (meta.get("labels") or {}).get(CONSUMER_NAMESPACE_LABEL)
        if (
            not namespace
            or meta.get("namespace") != operator_namespace
            or meta.get("name") != gateway_ingress_policy_name(namespace)
        ):
            return None
        version = int(meta.get("resourceVersion") or 0)
        known = self._by_namespace.get(namespace)
        if known is not None and version < known.resource_version:
            return namespace  # older than what this process already holds (its own write's answer)
        if event_type == "DELETED":
            self._by_namespace.pop(namespace, None)
        else:
            self._by_namespace[namespace] = IngressPolicyRecord(
                name=str(meta.get("name")),
                resource_version=version,
                spec_hash=spec_hash(body),
                ports=admitted_ports(body),
            )
        return namespace

    def record(self, namespace: str) -> IngressPolicyRecord | None:
        return self._by_namespace.get(namespace)

    def admitted(self, namespace: str) -> frozenset[int]:
        record = self._by_namespace.get(namespace)
        return record.ports if record is not None else frozenset()

    def forget(self, namespace: str) -> None:
        self._by_namespace.pop(namespace, None)

    def namespaces(self) -> list[str]:
        return sorted(self._by_namespace)
