"""R48 in the domain: which namespaces have an account a decision trusts, and what an untrusted one gets."""

from __future__ import annotations

import pytest
from domain_factories import endpoint_facts, service_facts, status

from vpcep.api.endpoint import EndpointPhase, EndpointSpec
from vpcep.api.endpoint_service import ServicePhase
from vpcep.api.whitelist import WhitelistSpec
from vpcep.domain.accounts import account_problem
from vpcep.domain.endpoint import DataPathAction, EndpointAdmission, check_endpoint_admission, decide_endpoint
from vpcep.domain.reasons import Reason
from vpcep.domain.service import Operation, ServiceAdmission, check_service_admission, decide_service
from vpcep.domain.whitelist import WhitelistFacts, check_whitelist_account, decide_whitelist

CONFLICT = account_problem("bank", labelled=False, labelled_elsewhere=True, require_label=False)


@pytest.mark.parametrize(
    ("labelled", "elsewhere", "required", "trusted"),
    [
        (True, False, False, True),  # an administrator's label
        (True, True, True, True),  # labelled: never in conflict, label present
        (False, False, False, True),  # the namespace is the account named like it
        (False, True, False, False),  # ... unless that account is claimed by label elsewhere
        (False, False, True, False),  # ... or the operator requires the label
    ],
)
def test_which_namespaces_have_a_trusted_account(
    labelled: bool, elsewhere: bool, required: bool, trusted: bool
) -> None:
    problem = account_problem("bank", labelled=labelled, labelled_elsewhere=elsewhere, require_label=required)
    assert (problem is None) == trusted


def test_the_conflict_message_names_the_namespace_the_account_and_the_fix() -> None:
    assert CONFLICT is not None
    assert "namespace bank has no vpcep.io/account label" in CONFLICT
    assert "account bank belongs to the namespaces labelled vpcep.io/account=bank" in CONFLICT
    assert "ask a cluster administrator" in CONFLICT


@pytest.mark.parametrize("phase", [None, EndpointPhase.ACCEPTED, EndpointPhase.PENDING_ACCEPTANCE])
def test_an_endpoint_in_a_namespace_without_a_trusted_account_fails_and_holds_nothing(
    phase: EndpointPhase | None,
) -> None:
    """Established or not: the whitelist entry and acceptance it rode on were the other account's."""
    decision = decide_endpoint(
        endpoint_facts(status=status(phase) if phase else None, account_problem=CONFLICT)
    )
    assert (decision.phase, decision.reason) == (EndpointPhase.FAILED, Reason.ACCOUNT_UNCLEAR)
    assert decision.data_path is DataPathAction.REMOVE and CONFLICT in decision.message


def test_a_deleting_endpoint_still_goes_away() -> None:
    decision = decide_endpoint(endpoint_facts(deleting=True, account_problem=CONFLICT))
    assert decision.phase is EndpointPhase.DELETING and decision.may_finalize


def test_a_service_in_such_a_namespace_fails_but_cloud_services_need_no_account() -> None:
    decision = decide_service(service_facts(account_problem=CONFLICT))
    assert (decision.phase, decision.reason) == (ServicePhase.FAILED, Reason.ACCOUNT_UNCLEAR)
    assert (
        decide_service(service_facts(account_problem=CONFLICT, system=True)).phase is ServicePhase.AVAILABLE
    )


def test_admission_refuses_new_objects_with_the_same_reason() -> None:
    endpoint = EndpointAdmission(
        operation=Operation.CREATE,
        namespace="bank",
        name="e",
        account="bank",
        region="local-1",
        spec=EndpointSpec(serviceName="local-1.web.x"),
        account_problem=CONFLICT,
    )
    refusal = check_endpoint_admission(endpoint)
    assert refusal is not None and refusal.reason is Reason.ACCOUNT_UNCLEAR
    service = ServiceAdmission(
        operation=Operation.CREATE,
        namespace="bank",
        name="web",
        account="bank",
        spec=service_facts().spec,
        quota_limit=20,
        account_problem=CONFLICT,
    )
    refusal = check_service_admission(service)
    assert refusal is not None and refusal.reason is Reason.ACCOUNT_UNCLEAR


def test_a_whitelist_in_such_a_namespace_permits_nobody_and_is_refused_at_admission() -> None:
    """R48: its Whitelists would otherwise count against the quota of the account it is named like (R49)."""
    spec = WhitelistSpec(endpointService="web", accounts=["iam:domain::bank"])
    decision = decide_whitelist(
        WhitelistFacts(namespace="bank", name="wl", spec=spec, service_exists=True, account_problem=CONFLICT)
    )
    assert (decision.phase, decision.reason) == ("Failed", Reason.ACCOUNT_UNCLEAR)
    assert "permits nobody" in decision.message and "ask a cluster administrator" in decision.message
    refusal = check_whitelist_account("bank", "wl", CONFLICT)
    assert refusal is not None and refusal.reason is Reason.ACCOUNT_UNCLEAR
    assert check_whitelist_account("bank-home", "wl", None) is None
