"""The keys the controllers reconcile: one small frozen type per controller (the work queue dispatches on
the type), so a key says what it is and two controllers' keys never compare equal."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EndpointKey:
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class ServiceKey:
    """An EndpointService."""

    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class WhitelistKey:
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class QuotaViewKey:
    """A tenant namespace's `vpcep-quota` ConfigMap (R41)."""

    namespace: str


@dataclass(frozen=True, slots=True)
class OrphansKey:
    """What an Endpoint left behind when it went without its finalizer running (by its uid or endpoint id)."""

    endpoint_uid: str


@dataclass(frozen=True, slots=True)
class GatewayIngressKey:
    """A consumer namespace's gateway ingress NetworkPolicy (R42)."""

    namespace: str
