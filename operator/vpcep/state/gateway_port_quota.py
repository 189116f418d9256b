"""Gateway ports per account (R49): what each account's endpoints hold, and who waits for more, in O(1) per
lookup instead of a walk over the account's endpoints at every reconcile (10,000 endpoints, SPEC §6).

The endpoint controller updates it in the same event-loop step as the allocation ledger (no await between
deciding and recording), so two endpoints of one account reconciled at once never both take the last ports.
Seeded from the ledger once the caches are primed; an endpoint whose account changes moves at its next
reconcile (the relabel wakes it).
"""

from __future__ import annotations

Order = tuple[str, str, str]  # (creationTimestamp, namespace, name): the quota order of vpcep.domain.quota


class GatewayPortQuota:
    def __init__(self) -> None:
        self._held: dict[str, tuple[str, int]] = {}  # endpoint uid -> (account, ports held)
        self._held_by_account: dict[str, int] = {}
        self._waiting: dict[str, dict[str, tuple[Order, int]]] = {}  # account -> uid -> (order, wanted)
        self._waiting_account: dict[str, str] = {}  # uid -> account

    def hold(self, uid: str, account: str, ports: int) -> None:
        """The endpoint now holds `ports` gateway ports (0: none) for `account`."""
        old_account, old_ports = self._held.pop(uid, (account, 0))
        self._held_by_account[old_account] = self._held_by_account.get(old_account, 0) - old_ports
        if not self._held_by_account[old_account]:
            del self._held_by_account[old_account]
        if ports:
            self.stop_waiting(uid)  # holding its ports, it waits no more (never counted twice)
            self._held[uid] = (account, ports)
            self._held_by_account[account] = self._held_by_account.get(account, 0) + ports

    def held(self, uid: str) -> int:
        return self._held.get(uid, ("", 0))[1]

    def held_by_account(self, account: str) -> int:
        return self._held_by_account.get(account, 0)

    def wait(self, uid: str, account: str, order: Order, wanted: int) -> None:
        self.stop_waiting(uid)
        self._waiting.setdefault(account, {})[uid] = (order, wanted)
        self._waiting_account[uid] = account

    def stop_waiting(self, uid: str) -> None:
        account = self._waiting_account.pop(uid, None)
        if account is None:
            return
        waiters = self._waiting[account]
        del waiters[uid]
        if not waiters:
            del self._waiting[account]

    def wanted_before(self, account: str, order: Order) -> int:
        """Ports wanted by the account's waiting endpoints older than `order` (they are served first)."""
        waiters = self._waiting.get(account, {}).values()
        return sum(wanted for waiter_order, wanted in waiters if waiter_order < order)

    def forget(self, uid: str) -> None:
        self.hold(uid, "", 0)
        self.stop_waiting(uid)
