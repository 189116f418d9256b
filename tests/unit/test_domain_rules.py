"""Naming (R5, R15, R40), accounts, permission (R12, R37), approval (R10, R10a, R11), conditions."""

from __future__ import annotations

import pytest
from domain_factories import REGION, SERVICE_NAME, SERVICE_UID, service_spec, service_view

from vpcep.api.common import Condition
from vpcep.api.endpoint import EndpointSpec
from vpcep.api.endpoint_connection import DecidedBy, Decision
from vpcep.domain.accounts import account_of_namespace, entries_cover, invalid_entries
from vpcep.domain.allocation import PortRange
from vpcep.domain.approval import AcceptanceState, decide_acceptance
from vpcep.domain.conditions import condition, merge_conditions
from vpcep.domain.facts import WhitelistView
from vpcep.domain.lookup import lookup_service
from vpcep.domain.naming import build_service_name, parse_service_name, service_not_found_message
from vpcep.domain.permission import check_permission
from vpcep.domain.quota import AccountQuota, QuotaKey, QuotaPolicy, quota_standing
from vpcep.domain.reasons import Reason

A = AcceptanceState


@pytest.mark.parametrize("name", ["web", "my.dotted.name", "a"])
def test_r5_names_round_trip(name: str) -> None:
    text = build_service_name("local-1", name, SERVICE_UID)
    parts = parse_service_name(text)
    assert parts is not None and (parts.region, parts.name, parts.service_id) == (
        "local-1",
        name,
        SERVICE_UID,
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "web",
        "local-1.web",
        f"local-1..{SERVICE_UID}",
        "local-1.web.not-a-uuid",
        f"Bad_Region.web.{SERVICE_UID}",
    ],
)
def test_r15_garbage_does_not_parse(text: str) -> None:
    assert parse_service_name(text) is None


def test_r40_message_points_at_the_region() -> None:
    message = service_not_found_message(SERVICE_NAME.replace(REGION, "eu-west-0", 1), REGION)
    assert (
        "not found: check the name and the region" in message and "eu-west-0" in message and REGION in message
    )


def test_r15_lookup_by_name_region_and_cloud_service() -> None:
    by_name = {SERVICE_NAME: service_view()}
    cloud = {"dns": service_view(system=True, name="dns"), "fake": service_view(system=False, name="fake")}
    assert (
        lookup_service(EndpointSpec(serviceName=SERVICE_NAME), REGION, by_name, cloud)
        == by_name[SERVICE_NAME]
    )
    assert lookup_service(EndpointSpec(serviceName=SERVICE_NAME), "other-1", by_name, cloud) is None
    assert lookup_service(EndpointSpec(cloudService="dns"), REGION, by_name, cloud) == cloud["dns"]
    assert lookup_service(EndpointSpec(cloudService="fake"), REGION, by_name, cloud) is None, (
        "R8: only system ones"
    )
    assert lookup_service(EndpointSpec(), REGION, by_name, cloud) is None


def test_account_is_the_label_else_the_namespace() -> None:
    assert account_of_namespace("team-a", {"vpcep.io/account": "acme"}) == "acme"
    assert account_of_namespace("team-a", {}) == "team-a"
    assert account_of_namespace("team-a", None) == "team-a"
    assert account_of_namespace("team-a", {"vpcep.io/account": ""}) == "team-a"


def test_r12_entries() -> None:
    assert invalid_entries(
        ["*", "iam:domain::a-1", "a", "iam:domain::", "iam:domain::A", "iam:domain::a b"]
    ) == [
        "a",
        "iam:domain::",
        "iam:domain::A",
        "iam:domain::a b",
    ]
    assert entries_cover(["iam:domain::x", "*"], "anyone")
    assert entries_cover(["iam:domain::x"], "x")
    assert not entries_cover(["iam:domain::x"], "xy")
    assert not entries_cover([], "x")


@pytest.mark.parametrize(
    ("consumer", "whitelists", "system", "permitted"),
    [
        ("provider", (), False, True),  # R12 own account
        ("c", (), False, False),  # R12 no whitelist
        ("c", (("wl", ()),), False, False),  # R12 empty whitelist
        ("c", (("wl", ("iam:domain::c",)),), False, True),
        ("c", (("wl", ("*",)),), False, True),
        ("c", (("a", ("iam:domain::x",)), ("b", ("iam:domain::c",))), False, True),  # add up
        ("c", (("wl", ("c",)),), False, False),  # malformed matches nothing
        ("c", (), True, True),  # R37 cloud services
    ],
)
def test_r12_permission(
    consumer: str, whitelists: tuple[tuple[str, tuple[str, ...]], ...], system: bool, permitted: bool
) -> None:
    views = [WhitelistView(namespace="p", name=n, endpoint_service="s", accounts=a) for n, a in whitelists]
    result = check_permission(consumer, "provider", "EndpointService p/s", views, system=system)
    assert result.permitted is permitted
    assert result.reason is (Reason.PERMITTED if permitted else Reason.NOT_PERMITTED)


@pytest.mark.parametrize(
    ("approval", "auto", "decision", "established", "expected"),
    [
        (False, [], None, False, A.ACCEPTED),  # R10
        (False, [], Decision.PENDING, False, A.ACCEPTED),  # R11 approval off accepts what was pending
        (False, [], Decision.REJECT, False, A.REJECTED),  # explicit Reject wins
        (True, [], None, False, A.PENDING),  # R10
        (True, [], Decision.PENDING, False, A.PENDING),
        (True, [], Decision.ACCEPT, False, A.ACCEPTED),  # R11
        (True, [], Decision.REJECT, False, A.REJECTED),  # R11
        (True, ["iam:domain::c"], None, False, A.ACCEPTED),  # R10a
        (True, ["*"], Decision.PENDING, False, A.ACCEPTED),  # R10a wildcard
        (True, ["iam:domain::other"], None, False, A.PENDING),
        (True, ["iam:domain::c"], Decision.REJECT, False, A.REJECTED),  # R10a: explicit Reject still wins
        (True, [], Decision.PENDING, True, A.ACCEPTED),  # approval switched on later keeps live connections
        (True, [], Decision.REJECT, True, A.REJECTED),  # R11 reject an accepted one
    ],
)
def test_r10_r11_acceptance(
    approval: bool, auto: list[str], decision: Decision | None, established: bool, expected: AcceptanceState
) -> None:
    spec = service_spec(approvalRequired=approval, autoAcceptAccounts=auto)
    assert decide_acceptance(spec, "c", decision, already_accepted=established).state is expected


@pytest.mark.parametrize(
    ("approval", "auto", "decision", "established", "effective", "decided_by"),
    [
        (False, [], None, False, Decision.ACCEPT, DecidedBy.APPROVAL_NOT_REQUIRED),  # R10
        # Still ApprovalNotRequired once established: the column must not change on the next reconcile.
        (False, [], None, True, Decision.ACCEPT, DecidedBy.APPROVAL_NOT_REQUIRED),
        (False, [], Decision.ACCEPT, False, Decision.ACCEPT, DecidedBy.APPROVAL_NOT_REQUIRED),
        (True, ["iam:domain::c"], None, True, Decision.ACCEPT, DecidedBy.AUTO_ACCEPT_ACCOUNTS),  # R10a
        (True, [], Decision.ACCEPT, True, Decision.ACCEPT, DecidedBy.PROVIDER),  # R11
        (
            True,
            [],
            Decision.PENDING,
            True,
            Decision.ACCEPT,
            DecidedBy.EARLIER_ACCEPTANCE,
        ),  # approval on later
        (True, ["*"], Decision.REJECT, True, Decision.REJECT, DecidedBy.PROVIDER),  # R10a: Reject still wins
        (True, [], None, False, Decision.PENDING, None),  # nobody has decided yet
    ],
)
def test_r10_r10a_r11_effective_decision_and_who_made_it(
    approval: bool,
    auto: list[str],
    decision: Decision | None,
    established: bool,
    effective: Decision,
    decided_by: DecidedBy | None,
) -> None:
    """What the provider's connection table shows: an endpoint accepted without a decision reads Accept
    (by ApprovalNotRequired / AutoAcceptAccounts), never "Pending" next to state Accepted."""
    spec = service_spec(approvalRequired=approval, autoAcceptAccounts=auto)
    acceptance = decide_acceptance(spec, "c", decision, already_accepted=established)
    assert (acceptance.decision, acceptance.decided_by) == (effective, decided_by)


def test_conditions_keep_transition_time_unless_status_changes() -> None:
    first = merge_conditions([], [condition("Ready", False, "Creating", "x")], now="t1", generation=1)
    assert first[0].lastTransitionTime == "t1" and first[0].status == "False"
    same = merge_conditions(first, [condition("Ready", False, "RoutePending", "y")], now="t2", generation=2)
    assert (
        same[0].lastTransitionTime == "t1"
        and same[0].reason == "RoutePending"
        and same[0].observedGeneration == 2
    )
    flipped = merge_conditions(same, [condition("Ready", True, "Accepted")], now="t3", generation=2)
    assert flipped[0].lastTransitionTime == "t3" and flipped[0].status == "True"


def test_conditions_the_decision_does_not_mention_are_kept() -> None:
    foreign = Condition(type="Custom", status="True", reason="X", lastTransitionTime="t0")
    merged = merge_conditions([foreign], [condition("Ready", None, "Unknown")], now="t1", generation=1)
    assert [c.type for c in merged] == ["Ready", "Custom"]
    assert merged[0].status == "Unknown"


def test_r9_r22_quota_defaults_and_per_account_overrides() -> None:
    policy = QuotaPolicy(overrides={"big": AccountQuota(services=100), "tiny": AccountQuota(endpoints=0)})
    assert (policy.service_limit("anyone"), policy.endpoint_limit("anyone")) == (20, 50)
    assert (policy.service_limit("big"), policy.endpoint_limit("big")) == (100, 50)
    assert (policy.service_limit("tiny"), policy.endpoint_limit("tiny")) == (20, 0)
    lowered = QuotaPolicy(services=5, endpoints=7)
    assert (lowered.service_limit("x"), lowered.endpoint_limit("x")) == (5, 7)


def test_r22_quota_rank_is_by_creation_then_name_and_deletes_free_a_place() -> None:
    keys = [QuotaKey(created=f"2026-01-01T00:00:0{i}Z", namespace="ns", name=f"e{i}") for i in range(4)]
    standing = [quota_standing(k, [o for o in keys if o != k], limit=2) for k in keys]
    assert [s.within for s in standing] == [True, True, False, False]
    remaining = keys[1:]  # the oldest one was deleted
    assert quota_standing(keys[2], [keys[1], keys[3]], limit=2).within
    assert not quota_standing(keys[3], [k for k in remaining if k != keys[3]], limit=2).within


def test_port_range_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="first must be <= last"):
        PortRange(first=30001, last=30000)
    assert PortRange(first=1, last=1).size == 1
