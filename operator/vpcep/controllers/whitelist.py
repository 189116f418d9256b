"""The Whitelist controller: its own status (R12: malformed entries named; R49: past the account's quota),
then the service's endpoints (R13, R14). What wakes a whitelist is declared once, in CONTROLLER at the end of
this module.

The Whitelist quota (R49) counts the account's live Whitelists in creation order, as the other quotas do
(vpcep.domain.quota): the oldest `limit` hold it; one past it is Failed/QuotaExceeded and permits nobody
(`permitting_whitelists`), until an older one goes.
"""

from __future__ import annotations

from vpcep.controllers.context import Operator, involved, rfc3339, utc_now
from vpcep.controllers.keys import WhitelistKey
from vpcep.controllers.quota_view import refresh_quota_views_of, stored_whitelists
from vpcep.controllers.service import wake_endpoints_of
from vpcep.controllers.sources import NAMESPACES, SERVICES, WHITELISTS
from vpcep.domain.facts import WhitelistView
from vpcep.domain.quota import QuotaKey, QuotaStanding, quota_standing
from vpcep.domain.whitelist import WhitelistFacts, decide_whitelist
from vpcep.k8s.resources import WHITELIST
from vpcep.runtime.controller import Controller, Watches
from vpcep.runtime.source import Event
from vpcep.state.observed import account_changed, claims_changed, service_changed_for_readers
from vpcep.state.records import WhitelistRecord


def _quota_key(record: WhitelistRecord) -> QuotaKey:
    return QuotaKey(created=record.meta.created, namespace=record.meta.namespace, name=record.meta.name)


def account_whitelists(rt: Operator, account: str) -> list[WhitelistRecord]:
    """The account's live Whitelists (those being deleted hold no quota)."""
    found = []
    for namespace in rt.observed.namespaces_of(account):
        for name in rt.observed.whitelist_keys_in(namespace):
            record = rt.observed.whitelist(namespace, name)
            if record is not None and not record.meta.deleting:
                found.append(record)
    return found


def whitelist_standing(rt: Operator, record: WhitelistRecord) -> QuotaStanding:
    """R49: where the Whitelist stands in its account's quota (O(the account's Whitelists), bounded by it)."""
    account = rt.observed.account(record.meta.namespace)
    others = [
        _quota_key(other) for other in account_whitelists(rt, account) if other.meta.uid != record.meta.uid
    ]
    return quota_standing(_quota_key(record), others, rt.quota.whitelist_limit(account))


def permitting_whitelists(rt: Operator, namespace: str, service_name: str) -> tuple[WhitelistView, ...]:
    """The service's Whitelists that count (R12), without those past their account's quota (R49)."""
    views = rt.observed.whitelist_views(namespace, service_name)
    if not views:
        return views
    account = rt.observed.account(namespace)
    if stored_whitelists(rt, account) <= rt.quota.whitelist_limit(account):
        return views  # the common case, counted without reading a record: the account is within its quota
    within = []
    for view in views:
        record = rt.observed.whitelist(view.namespace, view.name)
        if record is not None and whitelist_standing(rt, record).within:
            within.append(view)
    return tuple(within)


async def reconcile_whitelist(rt: Operator, key: WhitelistKey) -> None:
    namespace, name = key.namespace, key.name
    record = rt.observed.whitelist(namespace, name)
    if record is None or record.meta.deleting:
        return
    target = involved(WHITELIST, namespace, name, record.meta.uid)
    if record.spec is None:
        phase, reason = "Failed", "InvalidSpec"
        message = f"Whitelist {namespace}/{name}: {record.spec_error}; fix the spec"
        conditions = [{"type": "Ready", "status": "False", "reason": reason, "message": message}]
    else:
        service = rt.observed.service(namespace, record.spec.endpointService)
        decision = decide_whitelist(
            WhitelistFacts(
                namespace=namespace,
                name=name,
                spec=record.spec,
                service_exists=service is not None and not service.meta.deleting,
                account=rt.observed.account(namespace),
                quota=whitelist_standing(rt, record),
                account_problem=rt.observed.account_problem(namespace),
            )
        )
        phase, reason, message = decision.phase, decision.reason.value, decision.message
        conditions = [
            {"type": c.type, "status": c.status_text, "reason": c.reason, "message": c.message}
            for c in decision.conditions
        ]
        if service is not None:
            wake_endpoints_of(rt, service)  # permission may have changed (R13 recovery, R14)
    if (record.status_phase, record.status_reason, record.observed_generation) == (
        phase,
        reason,
        record.meta.generation,
    ):
        return
    now = rfc3339(utc_now())
    status = {
        "phase": phase,
        "reason": reason,
        "message": message,
        "observedGeneration": record.meta.generation,
        "conditions": [
            {**c, "lastTransitionTime": now, "observedGeneration": record.meta.generation} for c in conditions
        ],
    }
    answer = await rt.api.patch_status(WHITELIST, namespace, name, status)
    if answer is not None and record.status_reason != reason:
        rt.event(target, phase != "Active", reason, message)
        refresh_quota_views_of(rt, rt.observed.account(namespace))


# --- what wakes a whitelist


def _itself(rt: Operator, event: Event) -> list[WhitelistKey]:
    return [WhitelistKey(event.namespace, event.name)]


def _of_freed_quota(rt: Operator, event: Event) -> list[WhitelistKey]:
    """R49: a deleted Whitelist frees a place: the account's Whitelists stand again."""
    if not event.deleted:
        return []
    account = rt.observed.account(event.namespace)
    return [WhitelistKey(r.meta.namespace, r.meta.name) for r in account_whitelists(rt, account)]


def _of_service(rt: Operator, event: Event) -> list[WhitelistKey]:
    """Whether the service a whitelist names exists (its status says so)."""
    if event.deleted or not service_changed_for_readers(event):
        return []
    return _in_namespace(rt, event.namespace)


def _of_relabelled_namespace(rt: Operator, event: Event) -> list[WhitelistKey]:
    """The namespace moved to another account. A label claim that came or went (R48): the Whitelists of the
    unlabelled namespace named like that account, and the account's own, whose places in its quota moved."""
    keys = _in_namespace(rt, event.name) if account_changed(event) else []
    for account in claims_changed(event):
        keys.extend(_in_namespace(rt, account))
        keys.extend(WhitelistKey(r.meta.namespace, r.meta.name) for r in account_whitelists(rt, account))
    return keys


def _in_namespace(rt: Operator, namespace: str) -> list[WhitelistKey]:
    return [WhitelistKey(namespace, name) for name in rt.observed.whitelist_keys_in(namespace)]


CONTROLLER = Controller(
    name="Whitelist",
    key=WhitelistKey,
    reconcile=reconcile_whitelist,
    watches=(
        Watches(WHITELISTS, _itself),
        Watches(WHITELISTS, _of_freed_quota),
        Watches(SERVICES, _of_service),
        Watches(NAMESPACES, _of_relabelled_namespace),
    ),
)
