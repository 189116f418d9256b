"""R48 in the domain: which namespaces have an account a decision trusts, and what an untrusted one gets."""

from __future__ import annotations

import pytest
from domain_factories import endpoint_facts, service_facts, status

from vpcep.api.endpoint import EndpointPhase, EndpointSpec
from vpcep.api.endpoint_service import ServicePhase
from vpcep.domain.accounts import account_problem
from vpcep.domain.endpoint import DataPathAction, EndpointAdmission, check_endpoint_admission, decide_endpoint
from vpcep.domain.reasons import Reason
from vpcep.domain.service import Operation, ServiceAdmission, check_service_admission, decide_service

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
