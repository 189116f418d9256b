"""Connection approval (R10, R10a, R11).

Order of precedence: an explicit Reject always wins; approval off accepts (so turning approval off accepts
what was pending); autoAcceptAccounts accept; an explicit Accept accepts; an endpoint that was already
accepted stays accepted (turning approval on later, or setting the decision back to Pending, does not
un-accept live connections); otherwise pending. The accepting rules all give the same state, so their order
only decides which one the status names (`decided_by`): the standing reason, not "accepted earlier" once
the endpoint is established.
"""

from __future__ import annotations

from enum import StrEnum

from vpcep.api.endpoint_connection import DecidedBy, Decision
from vpcep.api.endpoint_service import EndpointServiceSpec
from vpcep.domain.accounts import entries_cover
from vpcep.domain.facts import Frozen
from vpcep.domain.reasons import Reason


class AcceptanceState(StrEnum):
    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


class Acceptance(Frozen):
    state: AcceptanceState
    reason: Reason
    message: str
    decided_by: DecidedBy | None = None

    @property
    def decision(self) -> Decision:
        """The effective decision the provider sees in EndpointConnection status.decision."""
        return {
            AcceptanceState.ACCEPTED: Decision.ACCEPT,
            AcceptanceState.REJECTED: Decision.REJECT,
            AcceptanceState.PENDING: Decision.PENDING,
        }[self.state]


def decide_acceptance(
    spec: EndpointServiceSpec,
    consumer_account: str,
    decision: Decision | None,
    *,
    already_accepted: bool = False,
) -> Acceptance:
    """Whether a permitted endpoint is accepted, pending, or rejected."""
    if decision is Decision.REJECT:
        return Acceptance(
            state=AcceptanceState.REJECTED,
            reason=Reason.REJECTED,
            message="the provider rejected this connection (EndpointConnection spec.decision: Reject)",
            decided_by=DecidedBy.PROVIDER,
        )
    if not spec.approvalRequired:
        return Acceptance(
            state=AcceptanceState.ACCEPTED,
            reason=Reason.AUTO_ACCEPTED,
            message="the service does not require approval",
            decided_by=DecidedBy.APPROVAL_NOT_REQUIRED,
        )
    if entries_cover(spec.autoAcceptAccounts, consumer_account):
        return Acceptance(
            state=AcceptanceState.ACCEPTED,
            reason=Reason.AUTO_ACCEPTED,
            message=f"account {consumer_account!r} is in the service's autoAcceptAccounts",
            decided_by=DecidedBy.AUTO_ACCEPT_ACCOUNTS,
        )
    if decision is Decision.ACCEPT:
        return Acceptance(
            state=AcceptanceState.ACCEPTED,
            reason=Reason.MANUALLY_ACCEPTED,
            message="the provider accepted this connection",
            decided_by=DecidedBy.PROVIDER,
        )
    if already_accepted:
        return Acceptance(
            state=AcceptanceState.ACCEPTED,
            reason=Reason.ACCEPTED,
            message="connection accepted earlier; it stays accepted until the provider sets spec.decision "
            "to Reject",
            decided_by=DecidedBy.EARLIER_ACCEPTANCE,
        )
    return Acceptance(
        state=AcceptanceState.PENDING,
        reason=Reason.PENDING_ACCEPTANCE,
        message=(
            "waiting for the provider to accept: they set spec.decision to Accept on the EndpointConnection "
            "in the service's namespace"
        ),
    )
