"""Service names `<region>.<metadata.name>.<serviceId>` (R5) and their parsing for lookups (R15, R40).

The serviceId is the EndpointService's metadata.uid: it is a UUID, unique in the cluster, stable for the
object's whole life and needs no extra state; a re-created object gets a new name, as in the cloud.
"""

from __future__ import annotations

import re

from vpcep.domain.facts import Frozen

DEFAULT_REGION = "local-1"
REGION_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
SERVICE_ID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class ServiceNameParts(Frozen):
    region: str
    name: str
    service_id: str


def is_valid_region(region: str) -> bool:
    """A region is a DNS label (Helm value `region`)."""
    return bool(REGION_PATTERN.match(region))


def service_id_for(uid: str, recorded: str | None = None) -> str:
    """The service's id: the one already recorded in status, else its metadata.uid (R5: stable)."""
    return recorded or uid


def build_service_name(region: str, name: str, service_id: str) -> str:
    """`<region>.<name>.<serviceId>` (R5)."""
    return f"{region}.{name}.{service_id}"


def connection_name(endpoint_id: str) -> str:
    """Name of the EndpointConnection in the service's namespace: the endpoint id (unique, opaque)."""
    return endpoint_id


def parse_service_name(text: str) -> ServiceNameParts | None:
    """Split a published service name; None when it does not have the shape `<region>.<name>.<uuid>`.

    metadata.name may itself contain dots, so the region is the first label and the id the last.
    """
    region, _, rest = text.partition(".")
    name, _, service_id = rest.rpartition(".")
    if not (region and name and service_id):
        return None
    if not is_valid_region(region) or not SERVICE_ID_PATTERN.match(service_id):
        return None
    return ServiceNameParts(region=region, name=name, service_id=service_id)


def service_not_found_message(requested: str, region: str) -> str:
    """The R15/R40 message, with the hint that tells the user which part is wrong."""
    parts = parse_service_name(requested)
    if parts is None:
        hint = f"it is not of the form <region>.<name>.<serviceId>, e.g. {region}.my-service.<uuid>"
    elif parts.region != region:
        hint = (
            f"region {parts.region!r} is not this cluster's region {region!r}; "
            "there is no cross-region access"
        )
    else:
        hint = "no EndpointService publishes that name; copy it from the provider's status.serviceName"
    return (
        f"service {requested!r} not found: check the name and the region ({hint}). "
        "Fix spec.serviceName, or delete and re-create the Endpoint."
    )
