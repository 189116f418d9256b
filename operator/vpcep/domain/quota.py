"""Per-account quotas: 20 EndpointServices (R9) and 50 Endpoints (R22) by default, overridable per account.

Who holds quota when an account is over its limit (created past a disabled webhook, or the limit was
lowered): the account's live objects ordered by (creationTimestamp, namespace, name); the first `limit`
hold quota, the rest are Failed with QuotaExceeded. The order never changes for existing objects, so a
holder never loses its place to a newer object, and a delete frees a place at once (R9 "at once").
Objects being deleted do not count.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from vpcep.domain.facts import Frozen, Refusal
from vpcep.domain.reasons import Reason

DEFAULT_SERVICES_PER_ACCOUNT = 20
DEFAULT_ENDPOINTS_PER_ACCOUNT = 50


class AccountQuota(Frozen):
    services: int | None = Field(default=None, ge=0, description="Overrides the default service limit.")
    endpoints: int | None = Field(default=None, ge=0, description="Overrides the default endpoint limit.")


class QuotaPolicy(Frozen):
    """Helm values `quota.servicesPerAccount`, `quota.endpointsPerAccount`, `quota.accounts.<account>`."""

    services: int = Field(default=DEFAULT_SERVICES_PER_ACCOUNT, ge=0)
    endpoints: int = Field(default=DEFAULT_ENDPOINTS_PER_ACCOUNT, ge=0)
    overrides: dict[str, AccountQuota] = Field(default_factory=dict)

    def service_limit(self, account: str) -> int:
        override = self.overrides.get(account)
        return override.services if override and override.services is not None else self.services

    def endpoint_limit(self, account: str) -> int:
        override = self.overrides.get(account)
        return override.endpoints if override and override.endpoints is not None else self.endpoints


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
    return (
        f"account {account!r} already has {used} of at most {limit} {kind}s: delete one, "
        f"or ask the cluster operator to raise the quota for this account (Helm value quota.accounts)"
    )


def check_quota_admission(kind: str, account: str, used: int, limit: int) -> Refusal | None:
    """Refuse a CREATE when the account's live objects of this kind (not counting the new one) reach it."""
    if used < limit:
        return None
    return Refusal(reason=Reason.QUOTA_EXCEEDED, message=quota_exceeded_message(kind, account, used, limit))
