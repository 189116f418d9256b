"""Objects refused for quota (R9, R22), per account: woken when that account frees quota.

Quota goes to the oldest objects first; an object over quota cannot change that itself, so it waits here until
an object of its account is deleted (or stops holding quota) and is then reconciled again.
"""

from __future__ import annotations

from collections.abc import Hashable


class QuotaWaiters:
    def __init__(self) -> None:
        self._by_account: dict[str, set[Hashable]] = {}

    def wait(self, account: str, key: Hashable) -> None:
        self._by_account.setdefault(account, set()).add(key)

    def release(self, account: str) -> set[Hashable]:
        """Everything waiting on the account's quota: to be reconciled now."""
        return self._by_account.pop(account, set())
