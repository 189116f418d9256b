"""EndpointConnection: the provider's view and decision for one Endpoint (SPEC §3, R10, R11)."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from vpcep.api.common import ApiModel, CommonStatus, CrdInfo, KindModel, PrinterColumn
from vpcep.api.endpoint import EndpointPhase


class Decision(StrEnum):
    PENDING = "Pending"
    ACCEPT = "Accept"
    REJECT = "Reject"


class DecidedBy(StrEnum):
    """Who or what made the effective decision in status.decision (R10, R10a, R11)."""

    PROVIDER = "Provider"  # the provider's own spec.decision (Accept or Reject)
    APPROVAL_NOT_REQUIRED = "ApprovalNotRequired"  # the service has approvalRequired: false (R10)
    AUTO_ACCEPT_ACCOUNTS = "AutoAcceptAccounts"  # the owner account is in autoAcceptAccounts (R10a)
    EARLIER_ACCEPTANCE = "EarlierAcceptance"  # accepted before; approval or the lists changed since


class EndpointConnectionSpec(ApiModel):
    """The provider's decision on this connection."""

    decision: Decision = Field(
        default=Decision.PENDING,
        description="Accept or Reject the endpoint; Pending until you decide. Rejecting later cuts an "
        "accepted endpoint off.",
    )


class EndpointConnectionStatus(CommonStatus):
    """Written by the operator: which endpoint this is and its state, like the console's connection list."""

    endpointId: str | None = Field(default=None, description="The consumer endpoint's UUID.")
    markerId: int | None = Field(default=None, description="The endpoint's marker id.")
    ownerAccount: str | None = Field(default=None, description="Account of the consumer namespace.")
    endpointService: str | None = Field(default=None, description="Name of the EndpointService.")
    state: EndpointPhase | None = Field(default=None, description="The Endpoint's phase.")
    decision: Decision | None = Field(
        default=None,
        description="The effective decision: Accept also when nobody had to decide (approval off, "
        "autoAcceptAccounts); spec.decision is the provider's own choice, never written by the operator.",
    )
    decidedBy: DecidedBy | None = Field(
        default=None,
        description="Who made the effective decision: Provider (spec.decision), ApprovalNotRequired, "
        "AutoAcceptAccounts or EarlierAcceptance; empty while Pending.",
    )


class EndpointConnection(KindModel):
    """Provider side ("连接管理"): one consumer endpoint of a service; the provider edits spec.decision.

    Created and removed by the operator, in the service's namespace.
    """

    crd: ClassVar[CrdInfo] = CrdInfo(
        kind="EndpointConnection",
        plural="endpointconnections",
        short_names=("vpcec",),
        printer_columns=(
            PrinterColumn("EndpointID", ".status.endpointId", description="The consumer endpoint's id."),
            PrinterColumn(
                "MarkerID", ".status.markerId", "integer", "The number that identifies the endpoint."
            ),
            PrinterColumn("State", ".status.state", description="The endpoint's phase."),
            PrinterColumn("Owner", ".status.ownerAccount", description="The consumer's account."),
            PrinterColumn(
                "Decision",
                ".status.decision",
                description="The effective decision (Accept also when none was needed).",
            ),
            PrinterColumn("Decided-By", ".status.decidedBy", description="Who made that decision."),
            PrinterColumn(
                "Spec-Decision",
                ".spec.decision",
                description="The provider's own spec.decision.",
                priority=1,
            ),
            PrinterColumn(
                "Service", ".status.endpointService", description="The EndpointService.", priority=1
            ),
            PrinterColumn("Created", ".status.createdAt", "date", "When the endpoint was created."),
        ),
    )

    spec: EndpointConnectionSpec
    status: EndpointConnectionStatus | None = None
