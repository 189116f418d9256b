"""EndpointService: a provider publishes one backend on mapped TCP ports (SPEC §3, R1-R9, R33)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from vpcep.api.common import ApiModel, CommonStatus


class BackendKind(StrEnum):
    SERVICE = "Service"
    POD = "Pod"


class Backend(ApiModel):
    """Exactly one backend in the service's own namespace (R1, R2)."""

    kind: BackendKind = Field(description="Service (the ELB analogue) or Pod (the ECS analogue).")
    name: str = Field(
        min_length=1,
        max_length=253,
        description="Name of the Service or Pod in the same namespace as the EndpointService.",
    )


class PortMapping(ApiModel):
    """One TCP port mapping: consumers dial clientPort, the backend listens on serverPort (R3)."""

    protocol: str = Field(default="TCP", pattern="^TCP$", description="Only TCP is supported (R3).")
    serverPort: int = Field(ge=1, le=65535, description="Port the backend listens on.")
    clientPort: int = Field(
        ge=1, le=65535, description="Port consumers connect to on the endpoint's node IP."
    )


class ProxyProtocol(StrEnum):
    NONE = "None"
    V2 = "V2"


class ServiceType(StrEnum):
    INTERFACE = "Interface"
    GATEWAY = "Gateway"


class ServicePhase(StrEnum):
    CREATING = "Creating"
    AVAILABLE = "Available"
    FAILED = "Failed"
    DELETING = "Deleting"


class EndpointServiceSpec(ApiModel):
    backend: Backend = Field(description="The one backend this service publishes (R1, R2).")
    ports: list[PortMapping] = Field(
        min_length=1,
        max_length=50,
        description="1..50 TCP port mappings, clientPort unique; immutable after creation (R3, R4).",
    )
    approvalRequired: bool = Field(
        default=False, description="When true, endpoints wait in PendingAcceptance for a decision (R10)."
    )
    autoAcceptAccounts: list[str] = Field(
        default_factory=list,
        description="Accounts (iam:domain::<account> or *) accepted without a manual decision (R10a).",
    )
    proxyProtocol: ProxyProtocol = Field(
        default=ProxyProtocol.NONE,
        description="V2 sends a PROXY v2 header with the client address and the endpoint's markerId (R33).",
    )
    description: str = Field(default="", max_length=512, description="Free text; may be edited.")


class EndpointServiceStatus(CommonStatus):
    phase: ServicePhase | None = Field(
        default=None, description="Creating, Available, Failed or Deleting (R6)."
    )
    serviceName: str | None = Field(
        default=None, description="<region>.<name>.<serviceId>: what consumers put in Endpoint spec (R5)."
    )
    serviceId: str | None = Field(default=None, description="Stable UUID of this service.")
    serviceType: ServiceType | None = Field(default=None, description="Interface, or Gateway (system only).")
    connectionCount: int | None = Field(default=None, description="Endpoints connected to this service.")
    acceptedCount: int | None = Field(default=None, description="Endpoints in Accepted.")
    pendingCount: int | None = Field(default=None, description="Endpoints waiting for a decision.")
    lastMarkerId: int | None = Field(
        default=None,
        description="Highest marker id ever handed to an endpoint of this service; never reused.",
    )


class EndpointService(ApiModel):
    """Provider side ("终端节点服务")."""

    spec: EndpointServiceSpec
    status: EndpointServiceStatus | None = None
