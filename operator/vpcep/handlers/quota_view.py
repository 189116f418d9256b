"""Keep each tenant namespace's `vpcep-quota` ConfigMap current (R41): usage and limits of its account."""

from __future__ import annotations

from vpcep.builders.quota_view import QUOTA_VIEW_NAME, QuotaUsage, build_quota_view
from vpcep.handlers.runtime import Runtime
from vpcep.k8s.client import ApiError


async def reconcile_quota_view(rt: Runtime, namespace: str) -> None:
    if not rt.observed.endpoint_names_in(namespace) and not rt.observed.service_names_in(namespace):
        return  # only namespaces that hold vpcep objects get one
    account = rt.observed.account(namespace)
    usage = QuotaUsage(
        account=account,
        services_used=rt.observed.quota_used("EndpointService", account),
        services_limit=rt.quota.service_limit(account),
        endpoints_used=rt.observed.quota_used("Endpoint", account),
        endpoints_limit=rt.quota.endpoint_limit(account),
    )
    try:
        await rt.ensure(build_quota_view(namespace, usage), None)
    except ApiError as error:
        if error.status not in (403, 404):  # a terminating namespace refuses new objects
            raise
        rt.forget("ConfigMap", namespace, QUOTA_VIEW_NAME)
