"""The `vpcep-quota` ConfigMap: an account's usage and limits, readable by tenants with plain RBAC (R41):
services (R9), endpoints (R22), gateway ports and Whitelists (R49).

One per namespace that holds vpcep objects; `kubectl get cm vpcep-quota -o yaml` or the kubectl
plugin reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpcep.builders.meta import MANAGED_BY, MANAGED_BY_LABEL, Manifest, stamped

QUOTA_VIEW_NAME = "vpcep-quota"
QUOTA_VIEW_LABEL = "vpcep.io/quota"


@dataclass(frozen=True)
class QuotaUsage:
    account: str
    services_used: int
    services_limit: int
    endpoints_used: int
    endpoints_limit: int
    gateway_ports_used: int = 0  # R49: one per port mapping of each endpoint holding its ports
    gateway_ports_limit: int = 0
    whitelists_used: int = 0  # R49
    whitelists_limit: int = 0


def build_quota_view(namespace: str, usage: QuotaUsage) -> Manifest:
    return stamped(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": QUOTA_VIEW_NAME,
                "namespace": namespace,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY, QUOTA_VIEW_LABEL: "true"},
            },
            "data": {
                "account": usage.account,
                "servicesUsed": str(usage.services_used),
                "servicesLimit": str(usage.services_limit),
                "endpointsUsed": str(usage.endpoints_used),
                "endpointsLimit": str(usage.endpoints_limit),
                "gatewayPortsUsed": str(usage.gateway_ports_used),
                "gatewayPortsLimit": str(usage.gateway_ports_limit),
                "whitelistsUsed": str(usage.whitelists_used),
                "whitelistsLimit": str(usage.whitelists_limit),
            },
        }
    )
