"""System ("cloud") services declared in the operator config, published in the operator namespace (R37, R8).

Applied at start-up with server-side apply (idempotent across restarts); services no longer declared are
deleted. Tenants cannot create, change or delete them (admission, R8).
"""

from __future__ import annotations

import logging

from vpcep.builders.meta import MANAGED_BY, MANAGED_BY_LABEL, Manifest
from vpcep.config import CloudService, OperatorConfig
from vpcep.k8s.client import KubeApi
from vpcep.k8s.resources import ENDPOINT_SERVICE, NAMESPACE, VPCEP_API
from vpcep.state.records import (
    BACKEND_NAMESPACE_ANNOTATION,
    EGRESS_CIDRS_ANNOTATION,
    SERVICE_TYPE_ANNOTATION,
    SYSTEM_LABEL,
)

logger = logging.getLogger(__name__)


def build_cloud_service(service: CloudService, config: OperatorConfig) -> Manifest:
    return {
        "apiVersion": VPCEP_API,
        "kind": "EndpointService",
        "metadata": {
            "name": service.name,
            "namespace": config.namespace,
            "labels": {SYSTEM_LABEL: "true", MANAGED_BY_LABEL: MANAGED_BY},
            "annotations": {
                SERVICE_TYPE_ANNOTATION: service.type.value,
                BACKEND_NAMESPACE_ANNOTATION: service.backend.namespace or config.namespace,
                EGRESS_CIDRS_ANNOTATION: ",".join(service.egressCIDRs),
            },
        },
        "spec": {
            "backend": {"kind": service.backend.kind.value, "name": service.backend.name},
            "ports": [port.model_dump(mode="json") for port in service.ports],
            "description": service.description,
        },
    }


async def ensure_namespace(api: KubeApi, config: OperatorConfig) -> None:
    """The operator namespace, created when missing (a local run; the chart installs into it)."""
    if await api.get(NAMESPACE, None, config.namespace) is None:
        await api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": config.namespace}})


async def publish_cloud_services(api: KubeApi, config: OperatorConfig) -> None:
    await ensure_namespace(api, config)
    declared = {service.name for service in config.cloudServices}
    for service in config.cloudServices:
        await api.apply(build_cloud_service(service, config))
    for existing in await api.list(ENDPOINT_SERVICE, config.namespace, label_selector=f"{SYSTEM_LABEL}=true"):
        name = existing["metadata"]["name"]
        if name not in declared:
            logger.info("cloud service %s is no longer declared: deleting it", name)
            await api.delete(ENDPOINT_SERVICE, config.namespace, name)
