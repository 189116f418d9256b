"""Spec checks beyond what pydantic field constraints express (R3, R12, R15, R34).

The CRD schema and CEL rules enforce the same things at the API server; these functions give the webhook
and the reconcilers the same verdict for objects that got past (older CRD, webhook off).
Each problem names the field and the fix.
"""

from __future__ import annotations

import ipaddress
from collections import Counter

from vpcep.api.endpoint import EndpointSpec
from vpcep.api.endpoint_service import EndpointServiceSpec
from vpcep.api.whitelist import WhitelistSpec
from vpcep.domain.accounts import invalid_entries, is_valid_entry
from vpcep.domain.facts import Refusal
from vpcep.domain.reasons import Reason

MAX_PORT_MAPPINGS = 50


def service_spec_problems(spec: EndpointServiceSpec) -> list[Refusal]:
    """R3: 1..50 TCP mappings, ports 1..65535 (pydantic checks those), clientPort unique; R10a entries."""
    problems: list[Refusal] = []
    if not 1 <= len(spec.ports) <= MAX_PORT_MAPPINGS:
        problems.append(
            Refusal(
                reason=Reason.INVALID_SPEC,
                message=f"spec.ports has {len(spec.ports)} entries: give 1 to {MAX_PORT_MAPPINGS} mappings",
                field="spec.ports",
            )
        )
    duplicates = sorted(port for port, n in Counter(p.clientPort for p in spec.ports).items() if n > 1)
    if duplicates:
        problems.append(
            Refusal(
                reason=Reason.INVALID_SPEC,
                message=f"spec.ports: clientPort {', '.join(map(str, duplicates))} appears more than once; "
                "each clientPort may be mapped only once",
                field="spec.ports",
            )
        )
    for index, entry in enumerate(spec.autoAcceptAccounts):
        if not is_valid_entry(entry):
            problems.append(
                Refusal(
                    reason=Reason.INVALID_ACCOUNT_ENTRY,
                    message=f"spec.autoAcceptAccounts[{index}] {entry!r} is not iam:domain::<account> or *",
                    field=f"spec.autoAcceptAccounts[{index}]",
                )
            )
    return problems


def invalid_cidrs(cidrs: list[str]) -> list[str]:
    bad: list[str] = []
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            bad.append(cidr)
        else:
            if "/" not in cidr:
                bad.append(cidr)
    return bad


def endpoint_spec_problems(spec: EndpointSpec) -> list[Refusal]:
    """R15: exactly one of serviceName/cloudService; R34: sourceCIDRs are CIDRs."""
    problems: list[Refusal] = []
    if (spec.serviceName is None) == (spec.cloudService is None):
        problems.append(
            Refusal(
                reason=Reason.INVALID_SPEC,
                message="set exactly one of spec.serviceName (a published <region>.<name>.<serviceId>) "
                "and spec.cloudService (e.g. dns)",
                field="spec.serviceName",
            )
        )
    if spec.accessControl is not None:
        for cidr in invalid_cidrs(spec.accessControl.sourceCIDRs):
            problems.append(
                Refusal(
                    reason=Reason.INVALID_SPEC,
                    message=f"spec.accessControl.sourceCIDRs entry {cidr!r} is not a CIDR like 10.0.0.0/8",
                    field="spec.accessControl.sourceCIDRs",
                )
            )
    return problems


def whitelist_spec_problems(spec: WhitelistSpec) -> list[Refusal]:
    """R12: every entry is `iam:domain::<account>` or `*`; the message names the entry."""
    bad = invalid_entries(spec.accounts)
    if not bad:
        return []
    listed = ", ".join(repr(entry) for entry in bad)
    return [
        Refusal(
            reason=Reason.INVALID_ACCOUNT_ENTRY,
            message=f"spec.accounts: {listed} is not 'iam:domain::<account>' (a DNS label) or '*'",
            field="spec.accounts",
        )
    ]
