"""decide_endpoint as a chain of named checks: endpoint finalization (R23, R33) and the one "established"
predicate (R7, R11, R14) that the endpoint and service decisions share."""

from __future__ import annotations

import pytest
from domain_factories import LIVE_PATH, SERVICE_NAME, endpoint_facts, service_view, status
from hypothesis import given
from hypothesis import strategies as st

from vpcep.api.endpoint import EndpointPhase
from vpcep.api.endpoint_service import ServicePhase
from vpcep.domain.endpoint import ENDPOINT_CHECKS, DataPathAction, decide_endpoint, endpoint_status
from vpcep.domain.facts import EndpointView, is_established
from vpcep.domain.reasons import Reason

P = EndpointPhase


# ---- R23, R33: when the finalizer of a deleting endpoint may go ------------------------------------------


@pytest.mark.parametrize(
    ("marker", "recorded", "service_present", "may_finalize"),
    [
        pytest.param(None, 0, True, True, id="no marker handed out yet: nothing to remember"),
        pytest.param(7, 7, True, True, id="the service has the marker on record"),
        pytest.param(7, 9, True, True, id="the service's record is past the marker"),
        pytest.param(7, 6, True, False, id="the service has not recorded the marker yet: wait"),
        pytest.param(7, 0, True, False, id="the service has recorded no marker at all: wait"),
        pytest.param(7, 0, False, True, id="the service is gone: no one can hand the marker out again"),
    ],
)
def test_r33_a_deleting_endpoint_is_finalized_only_once_its_marker_is_on_the_services_record(
    marker: int | None, recorded: int, service_present: bool, may_finalize: bool
) -> None:
    facts = endpoint_facts(
        deleting=True,
        status=status(P.ACCEPTED, markerId=marker, nodeIP="10.96.0.10"),
        service=service_view(last_marker_id=recorded) if service_present else None,
    )
    decision = decide_endpoint(facts)
    assert decision.may_finalize is may_finalize
    # R23: whether or not the finalizer may go yet, everything of the endpoint is torn down at once.
    assert (decision.phase, decision.reason) == (P.DELETING, Reason.DELETING)
    assert decision.data_path is DataPathAction.REMOVE and not decision.keep_connection
    assert decision.node_ip is None and decision.gateway_ports == ()
    if not may_finalize:  # the status says what the deletion waits for
        assert f"record marker id {marker}" in decision.message


def test_r33_the_marker_held_in_this_process_counts_before_status_shows_it() -> None:
    """A marker decided in a pass whose status write is still to come is the endpoint's marker as well."""
    facts = endpoint_facts(
        deleting=True,
        status=status(P.CREATING),
        service=service_view(last_marker_id=0),
        allocation={"held_marker_id": 4},
    )
    decision = decide_endpoint(facts)
    assert decision.marker_id == 4 and not decision.may_finalize


@given(phase=st.sampled_from([None, *EndpointPhase]), deleting=st.booleans())
def test_only_a_deleting_endpoint_may_be_finalized(phase: EndpointPhase | None, deleting: bool) -> None:
    decision = decide_endpoint(endpoint_facts(deleting=deleting, status=status(phase)))
    assert decision.may_finalize is deleting
    assert (decision.phase is P.DELETING) is deleting


# ---- one predicate for "established" ---------------------------------------------------------------------


@pytest.mark.parametrize("phase", [None, *EndpointPhase])
def test_established_means_creating_or_accepted_for_the_endpoint_and_for_its_service(
    phase: EndpointPhase | None,
) -> None:
    expected = phase in (P.CREATING, P.ACCEPTED)
    assert is_established(phase) is expected
    assert endpoint_facts(status=status(phase)).established is expected
    view = EndpointView(namespace="cons", name="e1", uid="u1", account="consumer", created="t0", phase=phase)
    assert view.established is expected


@pytest.mark.parametrize("phase", list(EndpointPhase))
def test_r7_only_an_established_endpoint_keeps_a_deleting_service_working(phase: EndpointPhase) -> None:
    """The endpoint's side of R7 uses the predicate the service's deletion waits on."""
    held = service_view(deleting=True, phase=ServicePhase.DELETING, reason="HasActiveEndpoints")
    decision = decide_endpoint(endpoint_facts(status=status(phase), service=held))
    if is_established(phase):
        assert decision.phase is P.ACCEPTED and "keeps working" in decision.message
    else:
        assert (decision.phase, decision.reason) == (P.FAILED, Reason.SERVICE_DELETED)


# ---- the chain itself ------------------------------------------------------------------------------------


def test_the_chain_is_a_visible_list_of_distinct_named_checks() -> None:
    names = [check.__name__ for check in ENDPOINT_CHECKS]
    assert len(set(names)) == len(names)
    assert names[0] == "endpoint_is_deleting"  # nothing outranks a deletion (R23)
    # who may connect is settled before the provider's decision is read, and both before the data path
    order = {name: index for index, name in enumerate(names)}
    assert order["account_is_not_permitted"] < order["connection_is_rejected"] < order["no_gateway_is_ready"]


def test_r7_service_deleted_is_stable_across_reconciles() -> None:
    """Level-triggered: the status ServiceDeleted writes, read back by the next reconcile, decides the same
    (it read as a mistyped name -- ServiceNotFound, "check the name" -- one reconcile later)."""
    accepted = status(EndpointPhase.ACCEPTED, serviceName=SERVICE_NAME, endpointId="e-1", markerId=3)
    first = decide_endpoint(endpoint_facts(status=accepted, service=None))
    assert (first.phase, first.reason) == (P.FAILED, Reason.SERVICE_DELETED)
    written = endpoint_status(first, previous=accepted, now="2026-12-03T00:00:00Z", generation=1)
    again = decide_endpoint(endpoint_facts(status=written, service=None))
    assert (again.phase, again.reason, again.message) == (first.phase, first.reason, first.message)


def test_r30_a_route_rewrite_keeps_an_accepted_endpoint_accepted_but_a_new_one_waits() -> None:
    """A fleet change rewrites every route (R21's share of the cap): Accepted endpoints keep serving on the
    previous version meanwhile; a new endpoint is Accepted only once the gateways serve its route."""
    rewriting = LIVE_PATH.model_copy(update={"route_applied": False})
    accepted = status(EndpointPhase.ACCEPTED, serviceName=SERVICE_NAME, endpointId="e-1", markerId=3)
    kept = decide_endpoint(endpoint_facts(status=accepted, data_path=rewriting))
    assert kept.phase is P.ACCEPTED
    new = decide_endpoint(endpoint_facts(status=None, data_path=rewriting))
    assert (new.phase, new.reason) == (P.CREATING, Reason.ROUTE_PENDING)
