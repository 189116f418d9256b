"""The EndpointConnection the provider sees and decides on, one per Endpoint, in the provider
namespace (R10, R11).

Named after the endpoint id (the console's connection table); no consumer namespace or object name in it:
the provider sees the endpoint id, marker id and owner account, as in the cloud console.
"""

from __future__ import annotations

from vpcep import API_VERSION
from vpcep.api.endpoint_connection import EndpointConnectionStatus
from vpcep.builders.meta import (
    ENDPOINT_ID_LABEL,
    ENDPOINT_SERVICE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    Manifest,
)


def connection_name(endpoint_id: str) -> str:
    return endpoint_id


def build_connection(endpoint_id: str, provider_namespace: str, endpoint_service: str) -> Manifest:
    """Only metadata is applied: spec.decision belongs to the provider (the CRD defaults it to Pending)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "EndpointConnection",
        "metadata": {
            "name": connection_name(endpoint_id),
            "namespace": provider_namespace,
            "labels": {
                MANAGED_BY_LABEL: MANAGED_BY,
                ENDPOINT_ID_LABEL: endpoint_id,
                ENDPOINT_SERVICE_LABEL: endpoint_service,
            },
        },
        "spec": {},
    }


def build_connection_status(status: EndpointConnectionStatus) -> Manifest:
    """The status as the API server stores it (unset fields absent): compare it with what is observed."""
    return status.model_dump(mode="json", exclude_none=True)
