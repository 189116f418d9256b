"""Endpoint and Whitelist admission policies the webhook reuses (R12, R13, R15, R16, R22, R34, R40)."""

from __future__ import annotations

from domain_factories import CONSUMER, REGION, SERVICE_NAME, service_view, whitelist

from vpcep.api.endpoint import AccessControl, EndpointSpec
from vpcep.api.whitelist import WhitelistSpec
from vpcep.domain.endpoint import EndpointAdmission, check_endpoint_admission
from vpcep.domain.facts import ServiceView, WhitelistView
from vpcep.domain.reasons import Reason
from vpcep.domain.service import Operation
from vpcep.domain.whitelist import WhitelistFacts, check_whitelist_admission, decide_whitelist


def create(
    spec: EndpointSpec | None = None,
    service: ServiceView | None = None,
    whitelists: tuple[WhitelistView, ...] = (whitelist(f"iam:domain::{CONSUMER}"),),
    used: int = 0,
) -> EndpointAdmission:
    return EndpointAdmission(
        operation=Operation.CREATE,
        namespace="cons",
        name="e1",
        account=CONSUMER,
        region=REGION,
        spec=spec or EndpointSpec(serviceName=SERVICE_NAME),
        service=service,
        whitelists=whitelists,
        quota_used=used,
        quota_limit=50,
    )


def test_permitted_create_is_allowed() -> None:
    assert check_endpoint_admission(create(service=service_view())) is None


def test_r15_unknown_service_refused_with_the_hint() -> None:
    refusal = check_endpoint_admission(create(service=None))
    assert refusal is not None and refusal.reason is Reason.SERVICE_NOT_FOUND
    assert "not found: check the name and the region" in refusal.message
    assert refusal.field == "spec.serviceName" and refusal.message.startswith("Endpoint cons/e1: ")


def test_r40_other_region_refused() -> None:
    spec = EndpointSpec(serviceName=SERVICE_NAME.replace(REGION, "cn-north-4", 1))
    refusal = check_endpoint_admission(create(spec=spec, service=None))
    assert refusal is not None and "cn-north-4" in refusal.message


def test_r13_not_permitted_refused_saying_what_to_ask_for() -> None:
    refusal = check_endpoint_admission(create(service=service_view(), whitelists=()))
    assert refusal is not None and refusal.reason is Reason.NOT_PERMITTED
    assert f"iam:domain::{CONSUMER}" in refusal.message


def test_r22_quota_refused_at_fifty() -> None:
    assert check_endpoint_admission(create(service=service_view(), used=49)) is None
    refusal = check_endpoint_admission(create(service=service_view(), used=50))
    assert refusal is not None and refusal.reason is Reason.QUOTA_EXCEEDED


def test_r7_service_being_deleted_refuses_new_endpoints() -> None:
    refusal = check_endpoint_admission(create(service=service_view(deleting=True)))
    assert refusal is not None and refusal.reason is Reason.SERVICE_DELETED


def test_r34_bad_cidr_refused_naming_the_entry() -> None:
    spec = EndpointSpec(
        serviceName=SERVICE_NAME, accessControl=AccessControl(sourceCIDRs=["10.0.0.0/8", "bogus"])
    )
    refusal = check_endpoint_admission(create(spec=spec, service=service_view()))
    assert (
        refusal is not None
        and "'bogus'" in refusal.message
        and refusal.field == "spec.accessControl.sourceCIDRs"
    )


def test_r16_target_cannot_change_but_access_control_can() -> None:
    old = EndpointSpec(serviceName=SERVICE_NAME)
    moved = EndpointAdmission(
        operation=Operation.UPDATE,
        namespace="cons",
        name="e1",
        account=CONSUMER,
        region=REGION,
        spec=EndpointSpec(cloudService="dns"),
        old_spec=old,
    )
    refusal = check_endpoint_admission(moved)
    assert refusal is not None and refusal.reason is Reason.TARGET_IMMUTABLE
    narrowed = moved.model_copy(
        update={
            "spec": EndpointSpec(
                serviceName=SERVICE_NAME, accessControl=AccessControl(sourceCIDRs=["10.0.0.0/8"])
            )
        }
    )
    assert check_endpoint_admission(narrowed) is None


def test_r23_delete_is_always_allowed() -> None:
    request = EndpointAdmission(
        operation=Operation.DELETE, namespace="cons", name="e1", account=CONSUMER, region=REGION
    )
    assert check_endpoint_admission(request) is None


def test_r12_whitelist_with_a_malformed_entry_is_refused_naming_it() -> None:
    spec = WhitelistSpec(endpointService="web", accounts=["iam:domain::team-a", "team-b", "*"])
    refusal = check_whitelist_admission("prov", "wl", spec)
    assert refusal is not None and refusal.reason is Reason.INVALID_ACCOUNT_ENTRY
    assert "'team-b'" in refusal.message and "'iam:domain::team-a'" not in refusal.message


def test_r12_well_formed_whitelist_is_allowed() -> None:
    assert (
        check_whitelist_admission("prov", "wl", WhitelistSpec(endpointService="web", accounts=["*"])) is None
    )


def test_whitelist_status() -> None:
    spec = WhitelistSpec(endpointService="web", accounts=["iam:domain::a"])
    assert (
        decide_whitelist(WhitelistFacts(namespace="prov", name="wl", spec=spec, service_exists=True)).phase
        == "Active"
    )
    missing = decide_whitelist(WhitelistFacts(namespace="prov", name="wl", spec=spec, service_exists=False))
    assert (missing.phase, missing.reason) == ("Failed", Reason.ENDPOINT_SERVICE_NOT_FOUND)
    assert "prov/web" in missing.message
    bad = WhitelistSpec(endpointService="web", accounts=["nope"])
    failed = decide_whitelist(WhitelistFacts(namespace="prov", name="wl", spec=bad, service_exists=True))
    assert failed.reason is Reason.INVALID_ACCOUNT_ENTRY and "'nope'" in failed.message
