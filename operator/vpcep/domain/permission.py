"""Who may connect to a service (R12, R13, R37) and what happens to existing endpoints (R14).

R14 choice (docs/decisions.md): removing an account from the whitelists stops *new* endpoints of that
account; endpoints already established (Creating or Accepted) keep working, as in the cloud product.
The provider revokes an established endpoint explicitly by setting its EndpointConnection to Reject.
"""

from __future__ import annotations

from collections.abc import Iterable

from vpcep.domain.accounts import entries_cover
from vpcep.domain.facts import Frozen, WhitelistView
from vpcep.domain.reasons import Reason


class Permission(Frozen):
    permitted: bool
    reason: Reason
    message: str


def check_permission(
    consumer_account: str,
    provider_account: str,
    service_label: str,
    whitelists: Iterable[WhitelistView],
    *,
    system: bool = False,
) -> Permission:
    """R12: own account always; system services for everyone (R37); else `*` or the account in a whitelist."""
    if system:
        return Permission(
            permitted=True, reason=Reason.PERMITTED, message="cloud services are open to every account"
        )
    if consumer_account == provider_account:
        return Permission(permitted=True, reason=Reason.PERMITTED, message="same account as the provider")
    matching = sorted(w.name for w in whitelists if entries_cover(w.accounts, consumer_account))
    if matching:
        return Permission(
            permitted=True, reason=Reason.PERMITTED, message=f"listed in Whitelist {', '.join(matching)}"
        )
    return Permission(
        permitted=False,
        reason=Reason.NOT_PERMITTED,
        message=(
            f"account {consumer_account!r} may not connect to {service_label}: ask the provider "
            f"to add 'iam:domain::{consumer_account}' to a Whitelist of that service"
        ),
    )
