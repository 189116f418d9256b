"""Whitelist status and admission (R12): entries must be well-formed; the service should exist; the account
holds at most its quota of Whitelists (R49: each one's entries are kept in the operator's memory), the oldest
first -- one past it permits nobody."""

from __future__ import annotations

from pydantic import Field

from vpcep.api.whitelist import WhitelistSpec
from vpcep.domain.conditions import ConditionSpec, ConditionType, condition
from vpcep.domain.facts import Frozen, ObjectRef, Refusal
from vpcep.domain.quota import QuotaStanding, check_quota_admission, quota_exceeded_message
from vpcep.domain.reasons import Reason
from vpcep.domain.validation import whitelist_spec_problems

ACTIVE = "Active"
FAILED = "Failed"


class WhitelistFacts(Frozen):
    namespace: str
    name: str
    spec: WhitelistSpec
    service_exists: bool
    account: str = ""
    quota: QuotaStanding | None = Field(default=None, description="R49; None: not limited.")
    account_problem: str | None = Field(
        default=None, description="R48: why the namespace has no account to trust (it permits nobody then)."
    )

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(namespace=self.namespace, name=self.name)


class WhitelistDecision(Frozen):
    phase: str
    reason: Reason
    message: str
    conditions: tuple[ConditionSpec, ...]


def decide_whitelist(facts: WhitelistFacts) -> WhitelistDecision:
    label = f"Whitelist {facts.ref}"
    problems = whitelist_spec_problems(facts.spec)
    if facts.account_problem is not None:
        message = f"{label}: {facts.account_problem}; it permits nobody until then"
        reason = Reason.ACCOUNT_UNCLEAR
    elif facts.quota is not None and not facts.quota.within:
        over = quota_exceeded_message("Whitelist", facts.account, facts.quota.rank, facts.quota.limit)
        message = f"{label}: {over}; it permits nobody until it is within the quota"
        reason = Reason.QUOTA_EXCEEDED
    elif problems:
        message = f"{label}: {problems[0].message}; those entries permit nobody until fixed"
        reason = Reason.INVALID_ACCOUNT_ENTRY
    elif not facts.service_exists:
        message = (
            f"{label}: EndpointService {facts.namespace}/{facts.spec.endpointService} not found; "
            "fix spec.endpointService (a service in this namespace)"
        )
        reason = Reason.ENDPOINT_SERVICE_NOT_FOUND
    else:
        count = len(facts.spec.accounts)
        entries = "1 account entry" if count == 1 else f"{count} account entries"
        message = f"{label} permits {entries} on {facts.spec.endpointService}"
        return WhitelistDecision(
            phase=ACTIVE,
            reason=Reason.ACTIVE,
            message=message,
            conditions=(condition(ConditionType.READY, True, Reason.ACTIVE, message),),
        )
    return WhitelistDecision(
        phase=FAILED,
        reason=reason,
        message=message,
        conditions=(condition(ConditionType.READY, False, reason, message),),
    )


def check_whitelist_admission(namespace: str, name: str, spec: WhitelistSpec) -> Refusal | None:
    """R12: malformed entries are refused with a message naming them."""
    problems = whitelist_spec_problems(spec)
    if not problems:
        return None
    first = problems[0]
    return Refusal(
        reason=first.reason, message=f"Whitelist {namespace}/{name}: {first.message}", field=first.field
    )


def check_whitelist_account(namespace: str, name: str, account_problem: str | None) -> Refusal | None:
    """R48: no Whitelist is created in a namespace whose account cannot be trusted (it would count against
    the quota of the account it is named like)."""
    if account_problem is None:
        return None
    return Refusal(reason=Reason.ACCOUNT_UNCLEAR, message=f"Whitelist {namespace}/{name}: {account_problem}")


def check_whitelist_quota(namespace: str, name: str, account: str, used: int, limit: int) -> Refusal | None:
    """R49: a CREATE past the account's Whitelist quota is refused (`used` does not count the new one)."""
    refusal = check_quota_admission("Whitelist", account, used, limit)
    if refusal is None:
        return None
    return refusal.model_copy(update={"message": f"Whitelist {namespace}/{name}: {refusal.message}"})
