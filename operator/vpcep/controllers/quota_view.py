"""The quota view controller: each tenant namespace's `vpcep-quota` ConfigMap shows its account's usage and
limits (R41). Views are refreshed a moment after what changed them: a burst of creates writes each view once.
What wakes a view is declared once, in CONTROLLER at the end of this module.
"""

from __future__ import annotations

from vpcep.builders.quota_view import QUOTA_VIEW_NAME, QuotaUsage, build_quota_view
from vpcep.controllers.context import Operator
from vpcep.controllers.keys import QuotaViewKey
from vpcep.controllers.sources import ENDPOINTS, NAMESPACES, SERVICES, WHITELISTS
from vpcep.k8s.client import ApiError
from vpcep.runtime.controller import Controller, Watches
from vpcep.runtime.source import Event
from vpcep.state.observed import account_changed, service_changed_for_readers

QUOTA_VIEW_DELAY_SECONDS = 1.0


async def reconcile_quota_view(rt: Operator, key: QuotaViewKey) -> None:
    namespace = key.namespace
    observed = rt.observed
    if not observed.endpoint_names_in(namespace) and not observed.service_names_in(namespace):
        return  # only namespaces that hold vpcep objects get one
    account = observed.account(namespace)
    usage = QuotaUsage(
        account=account,
        services_used=observed.quota_used("EndpointService", account),
        services_limit=rt.quota.service_limit(account),
        endpoints_used=observed.quota_used("Endpoint", account),
        endpoints_limit=rt.quota.endpoint_limit(account),
        gateway_ports_used=rt.gateway_port_quota.held_by_account(account),
        gateway_ports_limit=rt.quota.gateway_port_limit(account),
        whitelists_used=stored_whitelists(rt, account),
        whitelists_limit=rt.quota.whitelist_limit(account),
    )
    try:
        await rt.writes.ensure(build_quota_view(namespace, usage), None)
    except ApiError as error:
        if error.status not in (403, 404):  # a terminating namespace refuses new objects
            raise
        rt.writes.forget("ConfigMap", namespace, QUOTA_VIEW_NAME)


def stored_whitelists(rt: Operator, account: str) -> int:
    """The account's Whitelists as stored, counted from the index alone (R49)."""
    return sum(len(rt.observed.whitelist_keys_in(ns)) for ns in rt.observed.namespaces_of(account))


def views_of(rt: Operator, account: str) -> list[QuotaViewKey]:
    return [QuotaViewKey(namespace) for namespace in rt.observed.namespaces_of(account)]


def refresh_quota_views_of(rt: Operator, account: str) -> None:
    """For reconcilers that freed or took quota: every view of the account, a moment later."""
    rt.manager.enqueue(views_of(rt, account), QUOTA_VIEW_DELAY_SECONDS)


# --- what wakes a quota view


def _of_endpoint(rt: Operator, event: Event) -> list[QuotaViewKey]:
    """An endpoint came or went (its namespace's view; the endpoint controller refreshes the account's views
    after each phase change it writes)."""
    return [QuotaViewKey(event.namespace)] if event.type != "MODIFIED" else []


def _of_whitelist(rt: Operator, event: Event) -> list[QuotaViewKey]:
    """A Whitelist came or went (R49): every view of its account."""
    return views_of(rt, rt.observed.account(event.namespace)) if event.type != "MODIFIED" else []


def _of_service(rt: Operator, event: Event) -> list[QuotaViewKey]:
    if event.deleted:
        return [QuotaViewKey(event.namespace)]
    return views_of(rt, rt.observed.account(event.namespace)) if service_changed_for_readers(event) else []


def _of_relabelled_namespace(rt: Operator, event: Event) -> list[QuotaViewKey]:
    """The namespace moved to another account: its view and its new account's views."""
    if not account_changed(event):
        return []
    return [QuotaViewKey(event.name), *views_of(rt, rt.observed.account(event.name))]


CONTROLLER = Controller(
    name="Quota",
    key=QuotaViewKey,
    reconcile=reconcile_quota_view,
    watches=(
        Watches(ENDPOINTS, _of_endpoint, delay=QUOTA_VIEW_DELAY_SECONDS),
        Watches(SERVICES, _of_service, delay=QUOTA_VIEW_DELAY_SECONDS),
        Watches(WHITELISTS, _of_whitelist, delay=QUOTA_VIEW_DELAY_SECONDS),
        Watches(NAMESPACES, _of_relabelled_namespace, delay=QUOTA_VIEW_DELAY_SECONDS),
    ),
)
