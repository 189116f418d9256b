"""The order in which an account's objects hold quota (R9, R22): live objects by (created, namespace, name).

Quota goes to the oldest objects first (docs/decisions.md), so "am I within quota" is "how many of my
account's live objects sort before me". Kept as one sorted list per (kind, account), updated in place when a
watch event adds, deletes or starts deleting an object -- O(log n) per lookup and per change. Rebuilding the
lists on every add (what this replaced) made a restart or a bulk create quadratic in the number of endpoints.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable

Order = tuple[str, str, str]  # (creationTimestamp, namespace, name)
Member = tuple[str, Order]  # (account, order)
Group = tuple[str, str]  # (kind, account)


class QuotaQueues:
    def __init__(self, members_of: Callable[[str], Iterable[tuple[str, Member]]]) -> None:
        """`members_of(kind)` lists (uid, member) of every live object of a kind, for a full rebuild."""
        self._members_of = members_of
        self._members: dict[str, dict[str, Member]] = {}  # kind -> uid -> member; absent kind = stale
        self._sorted: dict[Group, list[Order]] = {}

    def forget(self) -> None:
        """Something every member depends on changed (an account label, a fresh LIST): rebuild lazily."""
        self._members.clear()
        self._sorted.clear()

    def update(self, kind: str, uid: str, member: Member | None) -> None:
        """An object changed: `member` is its place in the order, or None when it holds no quota."""
        members = self._members.get(kind)
        if members is None:
            return  # not built yet: the rebuild reads the current state anyway
        old = members.pop(uid, None)
        if old == member:
            if member is not None:
                members[uid] = member
            return
        if old is not None:
            queue = self._sorted.get((kind, old[0]), [])
            at = bisect.bisect_left(queue, old[1])
            if at < len(queue) and queue[at] == old[1]:
                del queue[at]
        if member is not None:
            members[uid] = member
            bisect.insort(self._sorted.setdefault((kind, member[0]), []), member[1])

    def rank(self, kind: str, account: str, me: Order) -> int:
        """How many live objects of the account sort before `me` (`me` itself never counts)."""
        self._build(kind)
        return bisect.bisect_left(self._sorted.get((kind, account), []), me)

    def used(self, kind: str, account: str) -> int:
        self._build(kind)
        return len(self._sorted.get((kind, account), []))

    def _build(self, kind: str) -> None:
        if kind in self._members:
            return
        members = dict(self._members_of(kind))
        self._members[kind] = members
        for group in [group for group in self._sorted if group[0] == kind]:
            del self._sorted[group]
        for account, order in members.values():
            self._sorted.setdefault((kind, account), []).append(order)
        for group, queue in self._sorted.items():
            if group[0] == kind:
                queue.sort()
