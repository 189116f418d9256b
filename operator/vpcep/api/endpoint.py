"""Endpoint: a consumer's private IP and DNS name for one EndpointService (SPEC §3, R15-R23, R34)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field

from vpcep.api.common import ApiModel, CommonStatus, CrdInfo, KindModel, PrinterColumn, cel, validations
from vpcep.api.endpoint_service import ServiceType

_IPV4 = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# RE2-compatible (the API server's regex engine): IPv4 CIDR, or a loosely checked IPv6 CIDR. The operator
# re-checks every entry with Python's ipaddress module (vpcep.domain.validation).
_IPV4_CIDR = rf"({_IPV4}[.]){{3}}{_IPV4}/(3[0-2]|[12]?[0-9])"
_IPV6_CIDR = r"[0-9a-fA-F:.]*:[0-9a-fA-F:.]*/(12[0-8]|1[01][0-9]|[1-9]?[0-9])"
CIDR_PATTERN = f"^({_IPV4_CIDR}|{_IPV6_CIDR})$"

SourceCIDR = Annotated[
    str,
    Field(
        max_length=64,
        json_schema_extra=validations(
            cel(
                f"self.matches('{CIDR_PATTERN}')",
                "spec.accessControl.sourceCIDRs entries must be CIDRs such as 10.0.0.0/8",
                message_expression=(
                    "'spec.accessControl.sourceCIDRs: \"' + self + '\" is not a CIDR such as 10.0.0.0/8 "
                    "or fd00::/64'"
                ),
            )
        ),
    ),
]


class EndpointPhase(StrEnum):
    PENDING_ACCEPTANCE = "PendingAcceptance"
    CREATING = "Creating"
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    FAILED = "Failed"
    DELETING = "Deleting"


class AccessControl(ApiModel):
    """Which source addresses may connect through the endpoint."""

    sourceCIDRs: list[SourceCIDR] = Field(
        default_factory=list,
        max_length=100,
        description="Only clients with an address in these ranges may connect through the endpoint, e.g. "
        "10.0.0.0/8; connections from anywhere else are refused. Empty: any source.",
    )


class EndpointSpec(ApiModel):
    """The one service this endpoint connects to: set serviceName or cloudService, not both. The target
    cannot change after creation."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.serviceName) != has(self.cloudService)",
                "spec: set exactly one of serviceName (a published <region>.<name>.<serviceId>) and "
                "cloudService (e.g. dns)",
            ),
            cel(
                "has(self.serviceName) == has(oldSelf.serviceName)"
                " && has(self.cloudService) == has(oldSelf.cloudService)"
                " && (!has(self.serviceName) || self.serviceName == oldSelf.serviceName)"
                " && (!has(self.cloudService) || self.cloudService == oldSelf.cloudService)",
                "spec.serviceName and spec.cloudService are immutable: "
                "create a new Endpoint to connect to another service",
            ),
        )
    )

    serviceName: str | None = Field(
        default=None,
        max_length=400,
        description="The name the provider's EndpointService publishes in its status.serviceName, "
        "<region>.<name>.<serviceId>. A name that matches no service in this region leaves the endpoint "
        "Failed with ServiceNotFound. Exclusive with cloudService.",
    )
    cloudService: str | None = Field(
        default=None,
        max_length=63,
        description="Short name of a cloud service the cluster operator provides, e.g. dns "
        "(`kubectl get vpces -A -l vpcep.io/system=true` lists them). Exclusive with serviceName.",
    )
    accessControl: AccessControl | None = Field(
        default=None,
        description="Optional: restrict which source addresses may connect through the endpoint.",
    )
    description: str = Field(default="", max_length=512, description="Free text; may be edited.")


class GatewayPort(ApiModel):
    """The gateway listen port allocated to one of the endpoint's port mappings."""

    clientPort: int = Field(description="Port of the endpoint's node IP.")
    gatewayPort: int = Field(description="Port the shared gateways listen on for this mapping.")


class EndpointStatus(CommonStatus):
    """Written by the operator: phase, node IP, DNS name, marker id and the gateway ports in use."""

    phase: EndpointPhase | None = Field(
        default=None,
        description="PendingAcceptance (waiting for the provider), Creating (being set up), Accepted (ready "
        "to use), Rejected (by the provider), Failed (see reason and message) or Deleting.",
    )
    serviceName: str | None = Field(default=None, description="Resolved name of the target service.")
    endpointId: str | None = Field(default=None, description="Stable UUID of this endpoint.")
    markerId: int | None = Field(
        default=None,
        description="The number that identifies this endpoint to the provider (报文标识): shown in the "
        "provider's EndpointConnection and, with PROXY protocol V2, sent to the backend.",
    )
    nodeIP: str | None = Field(
        default=None,
        description="Private IP in this namespace: clients connect to nodeIP:clientPort to reach the "
        "backend.",
    )
    dnsName: str | None = Field(default=None, description="DNS name of the node IP, usable like it.")
    serviceType: ServiceType | None = Field(default=None, description="Interface or Gateway.")
    gatewayPorts: list[GatewayPort] = Field(
        default_factory=list, description="Gateway listen ports allocated to this endpoint's mappings."
    )


class Endpoint(KindModel):
    """Consumer side ("终端节点"): a private IP and DNS name in this namespace for one EndpointService."""

    crd: ClassVar[CrdInfo] = CrdInfo(
        kind="Endpoint",
        plural="endpoints",
        short_names=("vpce",),
        printer_columns=(
            # The requested name, not the resolved one: a typo that Failed the endpoint stays visible.
            PrinterColumn("ServiceName", ".spec.serviceName", description="The service name asked for."),
            PrinterColumn("CloudService", ".spec.cloudService", description="The system service asked for."),
            PrinterColumn(
                "Phase", ".status.phase", description="Where the endpoint is in its life; Accepted: ready."
            ),
            PrinterColumn(
                "NodeIP", ".status.nodeIP", description="Private IP in this namespace to connect to."
            ),
            PrinterColumn("DNSName", ".status.dnsName", description="DNS name of the node IP."),
            PrinterColumn("Type", ".status.serviceType", description="Interface or Gateway."),
            PrinterColumn(
                "MarkerID",
                ".status.markerId",
                "integer",
                "The number the provider sees for this endpoint.",
                1,
            ),
            PrinterColumn("Reason", ".status.reason", description="Why it is in its phase.", priority=1),
            PrinterColumn(
                "Resolved", ".status.serviceName", description="The service it connects to.", priority=1
            ),
            PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
        ),
    )

    spec: EndpointSpec
    status: EndpointStatus | None = None
