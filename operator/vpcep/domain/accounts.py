"""Accounts (tenants) and whitelist entries `iam:domain::<account>` or `*` (SPEC §2, R12).

An account is the namespace label `vpcep.io/account`; an unlabelled namespace is its own account, unless that
name is an account claimed by label elsewhere (a conflict, R48) or the operator requires the label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from vpcep.api.whitelist import ACCOUNT_ENTRY_PATTERN

ACCOUNT_LABEL = "vpcep.io/account"
WILDCARD = "*"
ENTRY_PREFIX = "iam:domain::"
_ENTRY = re.compile(ACCOUNT_ENTRY_PATTERN)


def account_of_namespace(namespace: str, labels: Mapping[str, str] | None) -> str:
    """The namespace's account: its `vpcep.io/account` label, else the namespace's own name."""
    label = (labels or {}).get(ACCOUNT_LABEL, "").strip()
    return label or namespace


def account_problem(
    namespace: str, labelled: bool, labelled_elsewhere: bool, *, require_label: bool
) -> str | None:
    """R48: why the namespace has no account a decision may trust, or None when it has one.

    `labelled`: the namespace carries `vpcep.io/account`; `labelled_elsewhere`: another namespace carries it
    with the value that is this namespace's name. A label is set by administrators only (the chart's
    admission policy), so a labelled namespace is always trusted; an unlabelled one named like a labelled
    account would otherwise share that account's whitelist entries, "same account" acceptance and quota.
    """
    if labelled:
        return None
    if labelled_elsewhere:
        return (
            f"namespace {namespace} has no {ACCOUNT_LABEL} label, so it would be account {namespace}, but "
            f"account {namespace} belongs to the namespaces labelled {ACCOUNT_LABEL}={namespace}: ask a "
            f"cluster administrator to label this namespace with its own account, or use another namespace"
        )
    if require_label:
        return (
            f"namespace {namespace} has no {ACCOUNT_LABEL} label, and this operator requires one "
            "(accounts.requireLabel): ask a cluster administrator to label the namespace with its account"
        )
    return None


def entry_for(account: str) -> str:
    """The whitelist entry that names one account."""
    return f"{ENTRY_PREFIX}{account}"


def is_valid_entry(entry: str) -> bool:
    return bool(_ENTRY.match(entry))


def invalid_entries(entries: Iterable[str]) -> list[str]:
    """Entries that are neither `*` nor `iam:domain::<account>`, in input order."""
    return [entry for entry in entries if not is_valid_entry(entry)]


def entries_cover(entries: Iterable[str], account: str) -> bool:
    """True when `*` or `iam:domain::<account>` is among the entries. Malformed entries match nothing."""
    wanted = entry_for(account)
    return any(entry in (WILDCARD, wanted) for entry in entries)
