"""Whitelist: which accounts may connect to an EndpointService (SPEC §3, R12-R14)."""

from __future__ import annotations

from pydantic import Field

from vpcep.api.common import ApiModel, CommonStatus

ACCOUNT_ENTRY_PATTERN = r"^(\*|iam:domain::[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$"


class WhitelistSpec(ApiModel):
    endpointService: str = Field(
        min_length=1, max_length=253, description="Name of an EndpointService in this namespace."
    )
    accounts: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Entries iam:domain::<account> or * (any account). Several Whitelists add up (R12).",
    )


class WhitelistStatus(CommonStatus):
    phase: str | None = Field(default=None, description="Active, or Failed when the service is missing.")


class Whitelist(ApiModel):
    """Provider side ("白名单")."""

    spec: WhitelistSpec
    status: WhitelistStatus | None = None
