"""Per-account quotas: 20 EndpointServices (R9), 50 Endpoints (R22), 200 gateway ports and 50 Whitelists (R49)
by default, overridable per account.

Who holds quota when an account is over its limit (created past a disabled webhook, or the limit was
lowered): the account's live objects ordered by (creationTimestamp, namespace, name); the first `limit`
hold quota, the rest are Failed with QuotaExceeded. The order never changes for existing objects, so a
holder never loses its place to a newer object, and a delete frees a place at once (R9 "at once").
Objects being deleted do not count.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pydantic import Field

from vpcep.domain.facts import Frozen, Refusal
from vpcep.domain.reasons import Reason

DEFAULT_SERVICES_PER_ACCOUNT = 20
DEFAULT_ENDPOINTS_PER_ACCOUNT = 50
DEFAULT_GATEWAY_PORTS_PER_ACCOUNT = 200
DEFAULT_WHITELISTS_PER_ACCOUNT = 50


class QuotaKind(StrEnum):
    """What a quota counts, named as the configuration names its limit (`quotas.default.<kind>`)."""

    SERVICES = "services"
    ENDPOINTS = "endpoints"
    GATEWAY_PORTS = "gatewayPorts"
    WHITELISTS = "whitelists"


# What the user reads in a message: the objects counted.
COUNTED = {
    QuotaKind.SERVICES: "EndpointServices",
    QuotaKind.ENDPOINTS: "Endpoints",
    QuotaKind.GATEWAY_PORTS: "gateway ports",
    QuotaKind.WHITELISTS: "Whitelists",
}


class AccountQuota(Frozen):
    """An account's override: None keeps the default's limit."""

    services: int | None = Field(default=None, ge=0, description="Overrides the default service limit.")
    endpoints: int | None = Field(default=None, ge=0, description="Overrides the default endpoint limit.")
    gatewayPorts: int | None = Field(default=None, ge=0, description="Overrides the gateway port limit.")
    whitelists: int | None = Field(default=None, ge=0, description="Overrides the Whitelist limit.")


class QuotaPolicy(Frozen):
    """Helm values `quotas.default.<kind>` and `quotas.overrides.<account>.<kind>` (R9, R22, R49)."""

    services: int = Field(default=DEFAULT_SERVICES_PER_ACCOUNT, ge=0)
    endpoints: int = Field(default=DEFAULT_ENDPOINTS_PER_ACCOUNT, ge=0)
    gatewayPorts: int = Field(default=DEFAULT_GATEWAY_PORTS_PER_ACCOUNT, ge=0)
    whitelists: int = Field(default=DEFAULT_WHITELISTS_PER_ACCOUNT, ge=0)
    overrides: dict[str, AccountQuota] = Field(default_factory=dict)

    def limit(self, kind: QuotaKind, account: str) -> int:
        override = self.overrides.get(account)
        value = getattr(override, kind.value) if override is not None else None
        return int(value) if value is not None else int(getattr(self, kind.value))

    def service_limit(self, account: str) -> int:
        return self.limit(QuotaKind.SERVICES, account)

    def endpoint_limit(self, account: str) -> int:
        return self.limit(QuotaKind.ENDPOINTS, account)

    def gateway_port_limit(self, account: str) -> int:
        return self.limit(QuotaKind.GATEWAY_PORTS, account)

    def whitelist_limit(self, account: str) -> int:
        return self.limit(QuotaKind.WHITELISTS, account)


def how_to_raise(kind: QuotaKind, account: str) -> str:
    """The fix every quota refusal names: which value the cluster operator raises."""
    return (
        f"ask the cluster operator to raise Helm value quotas.overrides.{account}.{kind.value} "
        f"(or quotas.default.{kind.value} for every account)"
    )


class QuotaKey(Frozen):
    """The order in which an account's objects claim quota."""

    created: str = Field(description="metadata.creationTimestamp, RFC 3339 (sorts as text).")
    namespace: str
    name: str

    def sort_key(self) -> tuple[str, str, str]:
        return (self.created, self.namespace, self.name)


class QuotaStanding(Frozen):
    """Where one object stands in its account's queue: it holds quota when rank < limit."""

    rank: int = Field(ge=0, description="How many live objects of the account claim quota before this one.")
    limit: int = Field(ge=0)

    @property
    def within(self) -> bool:
        return self.rank < self.limit


def quota_standing(me: QuotaKey, others: Iterable[QuotaKey], limit: int) -> QuotaStanding:
    """Rank `me` among the account's other live objects (pass only those of the same account and kind)."""
    mine = me.sort_key()
    rank = sum(1 for other in others if other.sort_key() < mine)
    return QuotaStanding(rank=rank, limit=limit)


def quota_exceeded_message(kind: str, account: str, used: int, limit: int) -> str:
    """`kind` is the object kind counted (EndpointService, Endpoint, Whitelist)."""
    quota = {"EndpointService": QuotaKind.SERVICES, "Endpoint": QuotaKind.ENDPOINTS}.get(
        kind, QuotaKind.WHITELISTS
    )
    return (
        f"account {account!r} already has {used} of at most {limit} {kind}s (quota {quota.value}): delete "
        f"one, or {how_to_raise(quota, account)}"
    )


def check_quota_admission(kind: str, account: str, used: int, limit: int) -> Refusal | None:
    """Refuse a CREATE when the account's live objects of this kind (not counting the new one) reach it."""
    if used < limit:
        return None
    return Refusal(reason=Reason.QUOTA_EXCEEDED, message=quota_exceeded_message(kind, account, used, limit))


class GatewayPortStanding(Frozen):
    """R49: where an endpoint stands in its account's gateway-port quota (one port per port mapping).

    Ports go first to endpoints that hold them (never taken back, also when the limit is lowered), then to
    the endpoints waiting for them in creation order: a waiter is admitted only when its ports fit beside
    what the account holds and what older waiters want, so a small newcomer never overtakes an older one.
    """

    account: str
    held: int = Field(default=0, ge=0, description="Gateway ports this endpoint holds.")
    held_by_others: int = Field(ge=0, description="Gateway ports the account's other endpoints hold.")
    wanted_before: int = Field(
        default=0, ge=0, description="Ports wanted by the account's older endpoints waiting for this quota."
    )
    limit: int = Field(ge=0)

    def admits(self, wanted: int) -> bool:
        return self.held > 0 or self.held_by_others + self.wanted_before + wanted <= self.limit

    def refusal_message(self, wanted: int) -> str:
        queued = f", {self.wanted_before} wanted by its older waiting endpoints" if self.wanted_before else ""
        return (
            f"needs {wanted} gateway port(s), one per port mapping, but account {self.account!r} holds "
            f"{self.held_by_others}{queued} of at most {self.limit} (quota gatewayPorts): waiting, "
            "admitted by itself when ports are freed; delete an endpoint of this account, or "
            f"{how_to_raise(QuotaKind.GATEWAY_PORTS, self.account)}"
        )
