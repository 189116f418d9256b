"""Accounts (tenants) and whitelist entries `iam:domain::<account>` or `*` (SPEC §2, R12).

An account is the namespace label `vpcep.io/account`; an unlabelled namespace is its own account.
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
