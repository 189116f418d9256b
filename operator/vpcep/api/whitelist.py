"""Whitelist: which accounts may connect to an EndpointService (SPEC §3, R12-R14)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from vpcep.api.common import ApiModel, CommonStatus, CrdInfo, KindModel, PrinterColumn, cel, validations

MAX_ACCOUNT_ENTRIES = 1000  # per Whitelist (R49); the number of Whitelists is a per-account quota
ACCOUNT_ENTRY_PATTERN = r"^([*]|iam:domain::[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$"

# One account entry. The CRD refuses malformed entries with a message quoting the entry (R12); the model
# itself stays permissive so that an object stored before a rule existed can still be read and reported.
AccountEntry = Annotated[
    str,
    Field(
        max_length=80,
        json_schema_extra=validations(
            cel(
                f"self.matches('{ACCOUNT_ENTRY_PATTERN}')",
                "account entries must be iam:domain::<account> (a DNS label) or *",
                message_expression=(
                    "'entry \"' + self + '\" is not iam:domain::<account> (a DNS label, e.g. "
                    "iam:domain::team-a) or *'"
                ),
            )
        ),
    ),
]


class WhitelistSpec(ApiModel):
    """Accounts permitted to create endpoints for one EndpointService in this namespace. Your own account
    is always permitted."""

    endpointService: str = Field(
        min_length=1, max_length=253, description="Name of an EndpointService in this namespace."
    )
    accounts: list[AccountEntry] = Field(
        default_factory=list,
        max_length=MAX_ACCOUNT_ENTRIES,
        description="Entries iam:domain::<account>, or * for any account. Several Whitelists of one "
        f"service add up; an empty list permits no other account. At most {MAX_ACCOUNT_ENTRIES} entries "
        "(the operator keeps every entry in memory): put more accounts in another Whitelist of the same "
        "service, within the account's Whitelist quota (`kubectl vpcep quota`).",
    )


class WhitelistStatus(CommonStatus):
    """Written by the operator: whether the whitelist applies to an existing service."""

    phase: str | None = Field(default=None, description="Active, or Failed when the service is missing.")


class Whitelist(KindModel):
    """Provider side ("白名单"): accounts permitted to connect to one EndpointService."""

    crd: ClassVar[CrdInfo] = CrdInfo(
        kind="Whitelist",
        plural="whitelists",
        short_names=("vpcewl",),
        printer_columns=(
            PrinterColumn(
                "EndpointService", ".spec.endpointService", description="The service it applies to."
            ),
            PrinterColumn("Accounts", ".spec.accounts", description="Permitted accounts."),
            PrinterColumn("Phase", ".status.phase", description="Active or Failed."),
            PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
        ),
    )

    spec: WhitelistSpec
    status: WhitelistStatus | None = None
