"""EndpointConnection: the provider's view and decision for one Endpoint (SPEC §3, R10, R11)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from vpcep.api.common import ApiModel, CommonStatus
from vpcep.api.endpoint import EndpointPhase


class Decision(StrEnum):
    PENDING = "Pending"
    ACCEPT = "Accept"
    REJECT = "Reject"


class EndpointConnectionSpec(ApiModel):
    decision: Decision = Field(default=Decision.PENDING, description="Pending, Accept or Reject (R10).")


class EndpointConnectionStatus(CommonStatus):
    endpointId: str | None = Field(default=None, description="The consumer endpoint's UUID.")
    markerId: int | None = Field(default=None, description="The endpoint's marker id.")
    ownerAccount: str | None = Field(default=None, description="Account of the consumer namespace.")
    endpointService: str | None = Field(default=None, description="Name of the EndpointService.")
    state: EndpointPhase | None = Field(default=None, description="The Endpoint's phase.")


class EndpointConnection(ApiModel):
    """Provider side ("连接管理"); created and removed by the operator."""

    spec: EndpointConnectionSpec
    status: EndpointConnectionStatus | None = None
