"""Find the EndpointService an Endpoint names (R15, R16, R37, R40).

`spec.serviceName` is matched against published `status.serviceName`s of this cluster only: a name whose
region is another region is not found, even if the rest matched (no cross-region access, R40).
`spec.cloudService` is matched against the short names of system services (R37).
"""

from __future__ import annotations

from collections.abc import Mapping

from vpcep.api.endpoint import EndpointSpec
from vpcep.domain.facts import ServiceView
from vpcep.domain.naming import parse_service_name


def lookup_service(
    spec: EndpointSpec,
    region: str,
    services_by_name: Mapping[str, ServiceView],
    cloud_services: Mapping[str, ServiceView],
) -> ServiceView | None:
    """The target service, or None (then the endpoint is ServiceNotFound)."""
    if spec.serviceName is not None and spec.cloudService is None:
        parts = parse_service_name(spec.serviceName)
        if parts is None or parts.region != region:
            return None
        return services_by_name.get(spec.serviceName)
    if spec.cloudService is not None and spec.serviceName is None:
        found = cloud_services.get(spec.cloudService)
        return found if found is not None and found.system else None
    return None


def requested_target(spec: EndpointSpec) -> str:
    """How the user named the target, for messages."""
    if spec.cloudService is not None:
        return f"cloud service {spec.cloudService!r}"
    return f"service {spec.serviceName!r}"
