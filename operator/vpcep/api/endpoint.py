"""Endpoint: a consumer's private IP and DNS name for one EndpointService (SPEC §3, R15-R23, R34)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from vpcep.api.common import ApiModel, CommonStatus
from vpcep.api.endpoint_service import ServiceType


class EndpointPhase(StrEnum):
    PENDING_ACCEPTANCE = "PendingAcceptance"
    CREATING = "Creating"
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    FAILED = "Failed"
    DELETING = "Deleting"


class AccessControl(ApiModel):
    sourceCIDRs: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Only these source ranges may use the endpoint (R34), e.g. 10.0.0.0/8.",
    )


class EndpointSpec(ApiModel):
    serviceName: str | None = Field(
        default=None,
        max_length=300,
        description="A service's status.serviceName, <region>.<name>.<serviceId> (R15). Exclusive with cloudService.",
    )
    cloudService: str | None = Field(
        default=None,
        max_length=63,
        description="Short name of a system cloud service, e.g. dns (R37). Exclusive with serviceName.",
    )
    accessControl: AccessControl | None = Field(default=None, description="Source restrictions (R34).")
    description: str = Field(default="", max_length=512, description="Free text; may be edited.")


class GatewayPort(ApiModel):
    clientPort: int = Field(description="Port of the endpoint's node IP.")
    gatewayPort: int = Field(description="Port the shared gateways listen on for this mapping.")


class EndpointStatus(CommonStatus):
    phase: EndpointPhase | None = Field(default=None, description="Lifecycle phase (R17).")
    serviceName: str | None = Field(default=None, description="Resolved name of the target service.")
    endpointId: str | None = Field(default=None, description="Stable UUID of this endpoint.")
    markerId: int | None = Field(default=None, description="Per-endpoint id the provider sees (报文标识, R33).")
    nodeIP: str | None = Field(default=None, description="Private IP in the consumer namespace (R18).")
    dnsName: str | None = Field(default=None, description="DNS name of the node IP (R18).")
    serviceType: ServiceType | None = Field(default=None, description="Interface or Gateway.")
    gatewayPorts: list[GatewayPort] = Field(
        default_factory=list, description="Gateway listen ports allocated to this endpoint's mappings."
    )


class Endpoint(ApiModel):
    """Consumer side ("终端节点")."""

    spec: EndpointSpec
    status: EndpointStatus | None = None
