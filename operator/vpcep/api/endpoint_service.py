"""EndpointService: a provider publishes one backend on mapped TCP ports (SPEC §3, R1-R9, R33)."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import ConfigDict, Field

from vpcep.api.common import (
    ApiModel,
    CommonStatus,
    CrdInfo,
    KindModel,
    PrinterColumn,
    cel,
    immutable,
    validations,
)
from vpcep.api.whitelist import AccountEntry

MAX_PORT_MAPPINGS = 50


class BackendKind(StrEnum):
    SERVICE = "Service"
    POD = "Pod"


class Backend(ApiModel):
    """The one Service or Pod this EndpointService publishes, in its own namespace. Cannot change after
    creation."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            immutable("spec.backend", "create a new EndpointService to publish another backend")
        )
    )

    kind: BackendKind = Field(description="Service (the ELB analogue) or Pod (the ECS analogue).")
    name: str = Field(
        min_length=1,
        max_length=253,
        description="Name of the Service or Pod in the same namespace as the EndpointService.",
    )


class PortMapping(ApiModel):
    """One TCP port mapping: consumers connect to clientPort, the backend listens on serverPort."""

    protocol: Literal["TCP"] = Field(default="TCP", description="Only TCP is supported.")
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
    """What the provider publishes: one backend, its port mappings, and who is accepted how."""

    backend: Backend = Field(
        description="The one backend this service publishes. Until it exists the service is Failed "
        "with BackendNotFound; it recovers by itself when the backend appears.",
    )
    ports: list[PortMapping] = Field(
        min_length=1,
        max_length=MAX_PORT_MAPPINGS,
        description="TCP port mappings, immutable after creation: 1 to 50, each clientPort at most once "
        "(for other ports, create a new EndpointService).",
        json_schema_extra=validations(
            # No messageExpression naming the port: string(int) has an unbounded estimated cost and the API
            # server refuses such a CRD; the webhook (vpcep.domain.validation) names the duplicated port.
            # No reason either: with FieldValueDuplicate the API server prints "Duplicate value" only.
            cel(
                "self.all(p, self.filter(q, q.clientPort == p.clientPort).size() == 1)",
                "spec.ports: each clientPort may appear only once; remove or change the duplicate mapping",
            ),
            immutable(
                "spec.ports",
                "port mappings cannot change after creation (see docs/rules.md#r4); "
                "create a new EndpointService with the new ports",
            ),
        ),
    )
    approvalRequired: bool = Field(
        default=False,
        description="When true, a new endpoint waits in PendingAcceptance until you accept or reject it in "
        "its EndpointConnection (kubectl vpcep accept/reject); when false, permitted endpoints are accepted "
        "at once.",
    )
    autoAcceptAccounts: list[AccountEntry] = Field(
        default_factory=list,
        max_length=1000,
        description="Accounts (iam:domain::<account>, or * for any) whose endpoints are accepted without a "
        "manual decision even when approvalRequired is true; an explicit Reject still wins.",
    )
    proxyProtocol: ProxyProtocol = Field(
        default=ProxyProtocol.NONE,
        description="V2: every connection to the backend starts with a PROXY protocol v2 header carrying the "
        "client's address and the endpoint's markerId, so the backend can tell who is calling. None: plain "
        "TCP (the backend sees the gateways' addresses).",
    )
    description: str = Field(default="", max_length=512, description="Free text; may be edited.")


class EndpointServiceStatus(CommonStatus):
    """Written by the operator: the published service name, phase and connection counts."""

    phase: ServicePhase | None = Field(
        default=None,
        description="Creating, Available (consumers can connect), Failed (see reason and message) or "
        "Deleting.",
    )
    serviceName: str | None = Field(
        default=None,
        description="<region>.<name>.<serviceId>, generated and stable: what consumers put in an "
        "Endpoint's spec.serviceName.",
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


class EndpointService(KindModel):
    """Provider side ("终端节点服务"): publishes one backend on mapped TCP ports to other accounts."""

    crd: ClassVar[CrdInfo] = CrdInfo(
        kind="EndpointService",
        plural="endpointservices",
        short_names=("vpces",),
        printer_columns=(
            PrinterColumn("ServiceName", ".status.serviceName", description="The name consumers connect to."),
            PrinterColumn("Backend-Kind", ".spec.backend.kind", description="Service or Pod."),
            PrinterColumn("Backend", ".spec.backend.name", description="The backend's name."),
            PrinterColumn("Phase", ".status.phase", description="Creating, Available, Failed or Deleting."),
            PrinterColumn("Approval", ".spec.approvalRequired", "boolean", "Connections need acceptance."),
            PrinterColumn("Type", ".status.serviceType", description="Interface or Gateway."),
            PrinterColumn("Connections", ".status.connectionCount", "integer", "Endpoints connected.", 1),
            PrinterColumn("Reason", ".status.reason", description="Why it is in its phase.", priority=1),
            PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
        ),
    )

    spec: EndpointServiceSpec
    status: EndpointServiceStatus | None = None
