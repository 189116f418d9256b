"""The route ConfigMap one Accepted endpoint contributes to every gateway (contract: vpcep/api/routing.py).

Lives in the operator namespace, which tenants cannot read: this is the only object holding the
backend address.
"""

from __future__ import annotations

from vpcep.api.routing import ROUTE_DATA_KEY, ROUTE_LABEL, ROUTE_NAME_PREFIX, Route
from vpcep.builders.meta import (
    ENDPOINT_ID_LABEL,
    ENDPOINT_UID_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    Manifest,
    stamped,
)


def route_config_map_name(endpoint_id: str) -> str:
    return f"{ROUTE_NAME_PREFIX}{endpoint_id}"


def build_route_config_map(route: Route, operator_namespace: str, endpoint_uid: str) -> Manifest:
    return stamped(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": route_config_map_name(route.endpointId),
                "namespace": operator_namespace,
                "labels": {
                    ROUTE_LABEL: "true",
                    MANAGED_BY_LABEL: MANAGED_BY,
                    ENDPOINT_ID_LABEL: route.endpointId,
                    ENDPOINT_UID_LABEL: endpoint_uid,
                },
            },
            "data": {ROUTE_DATA_KEY: route.model_dump_json()},
        }
    )
