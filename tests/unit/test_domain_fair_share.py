"""R49 fair sharing, the pure decisions: the gateway-port quota per account, the Whitelist quota, the R21 cap
shared across gateway replicas, and refusals that name the limit and the value that raises it."""

from __future__ import annotations

import pytest
from domain_factories import endpoint_facts, status

from vpcep.api.endpoint import EndpointPhase, GatewayPort
from vpcep.api.whitelist import WhitelistSpec
from vpcep.config import OperatorConfig
from vpcep.controllers.context import quota_policy
from vpcep.domain.connection_cap import per_gateway_cap
from vpcep.domain.endpoint import DataPathAction, decide_endpoint
from vpcep.domain.quota import GatewayPortStanding, QuotaStanding
from vpcep.domain.reasons import Reason
from vpcep.domain.whitelist import WhitelistFacts, check_whitelist_quota, decide_whitelist
from vpcep.state.gateway_port_quota import GatewayPortQuota


def _ports(**fields: int) -> GatewayPortStanding:
    return GatewayPortStanding(account="consumer", **fields)


def test_an_endpoint_whose_port_mappings_do_not_fit_the_account_quota_waits_holding_nothing_R49() -> None:
    """The hostile tenant: an account already holding 199 of 200 ports asks for a 2-port endpoint."""
    decision = decide_endpoint(endpoint_facts(gateway_port_quota=_ports(held_by_others=199, limit=200)))
    assert decision.phase is EndpointPhase.FAILED
    assert decision.reason is Reason.GATEWAY_PORT_QUOTA_EXCEEDED
    assert decision.data_path is DataPathAction.REMOVE
    assert decision.gateway_ports == ()
    for fragment in ("2 gateway port(s)", "199", "at most 200", "quotas.overrides.consumer.gatewayPorts",
                     "quotas.default.gatewayPorts", "by itself"):  # fmt: skip
        assert fragment in decision.message


def test_an_endpoint_that_fits_exactly_is_set_up_R49() -> None:
    decision = decide_endpoint(endpoint_facts(gateway_port_quota=_ports(held_by_others=198, limit=200)))
    assert decision.phase is EndpointPhase.ACCEPTED
    assert len(decision.gateway_ports) == 2


def test_an_endpoint_holding_its_ports_keeps_them_when_the_limit_is_lowered_R49() -> None:
    held = status(
        EndpointPhase.ACCEPTED,
        gatewayPorts=[
            GatewayPort(clientPort=80, gatewayPort=20000),
            GatewayPort(clientPort=443, gatewayPort=20001),
        ],
    )
    facts = endpoint_facts(status=held, gateway_port_quota=_ports(held=2, held_by_others=500, limit=10))
    assert decide_endpoint(facts).phase is EndpointPhase.ACCEPTED


def test_a_younger_endpoint_never_overtakes_an_older_waiter_R49() -> None:
    """Two ports free; an older endpoint waits for three: a younger two-port one queues behind it."""
    facts = endpoint_facts(gateway_port_quota=_ports(held_by_others=8, wanted_before=3, limit=10))
    decision = decide_endpoint(facts)
    assert decision.reason is Reason.GATEWAY_PORT_QUOTA_EXCEEDED
    assert "3 wanted by its older waiting endpoints" in decision.message


def test_the_tally_counts_per_account_and_orders_waiters_R49() -> None:
    tally = GatewayPortQuota()
    tally.hold("a", "team-a", 3)
    tally.hold("b", "team-a", 2)
    tally.hold("c", "team-b", 7)
    assert (tally.held_by_account("team-a"), tally.held_by_account("team-b")) == (5, 7)
    tally.hold("a", "team-a", 0)  # a Failed endpoint gives its ports back
    tally.hold("b", "team-c", 2)  # its namespace moved to another account
    assert (tally.held_by_account("team-a"), tally.held_by_account("team-c")) == (0, 2)
    tally.wait("old", "team-a", ("2026-01-01T00:00:00Z", "ns", "old"), 4)
    tally.wait("new", "team-a", ("2026-01-02T00:00:00Z", "ns", "new"), 1)
    assert tally.wanted_before("team-a", ("2026-01-01T12:00:00Z", "ns", "mid")) == 4
    assert tally.wanted_before("team-a", ("2026-01-01T00:00:00Z", "ns", "old")) == 0
    tally.forget("old")
    assert tally.wanted_before("team-a", ("2026-01-03T00:00:00Z", "ns", "x")) == 1


def test_an_override_replaces_only_the_limits_it_sets_R49() -> None:
    config = OperatorConfig.model_validate(
        {
            "quotas": {
                "default": {"gatewayPorts": 30, "whitelists": 4},
                "overrides": {"big": {"gatewayPorts": 900}},
            }
        }
    )
    policy = quota_policy(config)
    assert (policy.gateway_port_limit("big"), policy.whitelist_limit("big")) == (900, 4)
    assert (policy.gateway_port_limit("small"), policy.endpoint_limit("big")) == (30, 50)
    assert config.quotas.for_account("big").whitelists == 4


def test_a_whitelist_past_the_account_quota_is_failed_and_names_the_fix_R49() -> None:
    spec = WhitelistSpec(endpointService="web", accounts=["*"])
    facts = WhitelistFacts(
        namespace="prov", name="wl51", spec=spec, service_exists=True, account="provider",
        quota=QuotaStanding(rank=50, limit=50),
    )  # fmt: skip
    decision = decide_whitelist(facts)
    assert (decision.phase, decision.reason) == ("Failed", Reason.QUOTA_EXCEEDED)
    for fragment in ("50 of at most 50 Whitelists", "permits nobody", "quotas.overrides.provider.whitelists"):
        assert fragment in decision.message
    within = decide_whitelist(facts.model_copy(update={"quota": QuotaStanding(rank=49, limit=50)}))
    assert within.phase == "Active"


def test_whitelist_admission_refuses_the_one_past_the_quota_R49() -> None:
    refusal = check_whitelist_quota("prov", "wl", "provider", used=50, limit=50)
    assert refusal is not None and refusal.reason is Reason.QUOTA_EXCEEDED
    assert "Whitelist prov/wl" in refusal.message and "quotas.default.whitelists" in refusal.message
    assert check_whitelist_quota("prov", "wl", "provider", used=49, limit=50) is None


@pytest.mark.parametrize(
    ("cap", "gateways", "share"),
    [(3000, 0, 3000), (3000, 1, 3000), (3000, 2, 1500), (10, 3, 4), (1, 4, 1), (3001, 2, 1501)],
)
def test_each_gateway_enforces_its_share_of_the_cap_R21_R49(cap: int, gateways: int, share: int) -> None:
    assert per_gateway_cap(cap, gateways) == share
    assert cap <= share * max(gateways, 1) <= cap + max(gateways, 1) - 1  # the documented accuracy
