"""Hypothesis properties of the domain's invariants.

- An endpoint is Accepted only if permitted and (approval off, auto-accepted or accepted) and not rejected
  (R10-R13); an established endpoint keeps going when its account leaves the whitelists (R14 choice).
- Quotas are never exceeded over any sequence of creates and deletes (R9, R22).
- No two endpoints of a service share a marker id, and ids are never reused (R33).
- No two listeners share a gateway port; ports stay put while a mapping exists (R30).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from domain_factories import (
    LIVE_PATH,
    PROVIDER,
    SERVICE_NAME,
    endpoint_view,
    service_facts,
    service_spec,
    service_view,
    whitelist,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from vpcep.api.endpoint import EndpointPhase, EndpointSpec, EndpointStatus, GatewayPort
from vpcep.api.endpoint_connection import Decision
from vpcep.domain.accounts import entry_for
from vpcep.domain.allocation import PortRange, allocate_gateway_ports, allocate_marker_id
from vpcep.domain.endpoint import (
    ESTABLISHED_PHASES,
    AllocationFacts,
    EndpointAdmission,
    EndpointFacts,
    check_endpoint_admission,
    decide_endpoint,
    endpoint_status,
)
from vpcep.domain.facts import ServiceView, WhitelistView
from vpcep.domain.quota import QuotaKey, quota_standing
from vpcep.domain.reasons import Reason
from vpcep.domain.service import Operation, check_service_deletion, decide_service

ACCOUNTS = ("a", "b", "c", PROVIDER)
DECISIONS = st.sampled_from([None, Decision.PENDING, Decision.ACCEPT, Decision.REJECT])
PHASES = st.sampled_from([None, *EndpointPhase])


# ---- one decision, any facts -----------------------------------------------------------------------------


@settings(max_examples=400)
@given(
    account=st.sampled_from(ACCOUNTS),
    listed=st.lists(st.sampled_from([*(entry_for(a) for a in ACCOUNTS), "*", "garbage"]), max_size=3),
    approval=st.booleans(),
    auto=st.lists(st.sampled_from([entry_for("a"), entry_for("b"), "*"]), max_size=2),
    decision=DECISIONS,
    previous_phase=PHASES,
    system=st.booleans(),
)
def test_accepted_only_if_permitted_approved_and_not_rejected(
    account: str,
    listed: list[str],
    approval: bool,
    auto: list[str],
    decision: Decision | None,
    previous_phase: EndpointPhase | None,
    system: bool,
) -> None:
    spec = service_spec(approvalRequired=approval, autoAcceptAccounts=auto)
    facts = EndpointFacts.model_validate(
        {
            "namespace": "cons",
            "name": "e",
            "uid": "uid-e",
            "account": account,
            "region": "local-1",
            "spec": EndpointSpec(serviceName=SERVICE_NAME),
            "status": EndpointStatus(phase=previous_phase) if previous_phase else None,
            "service": service_view(spec=spec, system=system),
            "whitelists": (whitelist(*listed),),
            "decision": decision,
            "quota": {"rank": 0, "limit": 50},
            "data_path": LIVE_PATH,
        }
    )
    result = decide_endpoint(facts)
    permitted = system or account == PROVIDER or "*" in listed or entry_for(account) in listed
    approved = not approval or "*" in auto or entry_for(account) in auto or decision is Decision.ACCEPT
    established = previous_phase in ESTABLISHED_PHASES
    if result.phase in ESTABLISHED_PHASES:
        assert decision is not Decision.REJECT
        assert permitted or established, "R13; R14 keeps established endpoints"
        assert approved or established, "R10: approval"
    if permitted and approved and decision is not Decision.REJECT:
        assert result.phase is EndpointPhase.ACCEPTED, "R10/R11: nothing else holds it back here"
    if decision is Decision.REJECT and (permitted or established):
        assert result.phase is EndpointPhase.REJECTED
    # R39: every state says why, naming the object, and only Accepted is Ready.
    assert result.message.startswith("Endpoint cons/e: ") and result.reason
    ready = next(c for c in result.conditions if c.type == "Ready")
    assert ready.status is (result.phase is EndpointPhase.ACCEPTED)


@given(
    phases=st.lists(st.tuples(st.sampled_from([None, *EndpointPhase]), st.booleans()), max_size=8),
    deleting=st.booleans(),
)
def test_r7_service_delete_waits_exactly_for_active_endpoints(
    phases: list[tuple[EndpointPhase | None, bool]], deleting: bool
) -> None:
    endpoints = tuple(endpoint_view(f"e{i}", phase, deleting=gone) for i, (phase, gone) in enumerate(phases))
    decision = decide_service(service_facts(deleting=deleting, endpoints=endpoints))
    active = {e.ref for e in endpoints if not e.deleting and e.phase in ESTABLISHED_PHASES}
    assert set(decision.blocking_endpoints) == (active if deleting else set())
    assert decision.may_finalize is (deleting and not active)
    refusal = check_service_deletion(service_facts().ref, endpoints)
    assert (refusal is None) is (not active)
    if refusal is not None:  # each named by endpoint id, none by namespace/name (R46)
        live = [e for e in endpoints if e.ref in active]
        assert all(e.uid in refusal.message and str(e.ref) not in refusal.message for e in live)


# ---- allocation ------------------------------------------------------------------------------------------


@given(
    client_ports=st.lists(st.integers(1, 65535), max_size=8),
    taken=st.frozensets(st.integers(30000, 30020), max_size=15),
    current=st.lists(st.tuples(st.integers(1, 65535), st.integers(29990, 30030)), max_size=6),
)
def test_gateway_ports_are_unique_in_range_and_never_someone_elses(
    client_ports: list[int], taken: frozenset[int], current: list[tuple[int, int]]
) -> None:
    port_range = PortRange(first=30000, last=30020)
    held = [GatewayPort(clientPort=c, gatewayPort=g) for c, g in current]
    allocation = allocate_gateway_ports(client_ports, held, taken, port_range)
    ports = [p.gatewayPort for p in allocation.ports]
    assert len(ports) == len(set(ports))
    assert all(p in port_range and p not in taken for p in ports)
    assert sorted({*(p.clientPort for p in allocation.ports), *allocation.unallocated}) == sorted(
        set(client_ports)
    )
    free = port_range.size - len(taken)
    assert len(allocation.ports) == min(len(set(client_ports)), free) or len(allocation.ports) >= free
    for assignment in allocation.ports:
        previous = [h for h in held if h.clientPort == assignment.clientPort]
        if previous and previous[0].gatewayPort in port_range and previous[0].gatewayPort not in taken:
            duplicate_held = [h for h in held if h.gatewayPort == previous[0].gatewayPort]
            if duplicate_held[0] is previous[0]:
                assert assignment.gatewayPort == previous[0].gatewayPort, "stable while the mapping exists"


@given(
    client_ports=st.lists(st.integers(1, 65535), max_size=8),
    taken=st.frozensets(st.integers(30000, 30020), max_size=15),
    current=st.lists(st.tuples(st.integers(1, 65535), st.integers(29990, 30030)), max_size=6),
)
def test_drawing_from_the_ledgers_free_ports_allocates_what_scanning_the_range_does(
    client_ports: list[int], taken: frozenset[int], current: list[tuple[int, int]]
) -> None:
    """The operator passes the lowest free ports (one per mapping plus one per current port) instead of every
    port other endpoints hold (10,000 endpoints); the allocation must not change (R30: ports never shared)."""
    port_range = PortRange(first=30000, last=30020)
    held = [GatewayPort(clientPort=c, gatewayPort=g) for c, g in current]
    free = [p for p in range(port_range.first, port_range.last + 1) if p not in taken]
    free = free[: len(set(client_ports)) + len(held)]
    scanned = allocate_gateway_ports(client_ports, held, taken, port_range)
    drawn = allocate_gateway_ports(
        client_ports, held, {h.gatewayPort for h in held} & taken, port_range, free=free
    )
    assert drawn == scanned


@given(
    current=st.none() | st.integers(1, 100),
    taken=st.frozensets(st.integers(1, 100)),
    high=st.integers(0, 120),
)
def test_marker_ids_are_fresh_or_kept(current: int | None, taken: frozenset[int], high: int) -> None:
    marker = allocate_marker_id(current, taken, high)
    assert marker not in taken
    if current is not None and current not in taken:
        assert marker == current
    else:
        assert marker > high and marker > max(taken, default=0)


@given(
    keys=st.lists(
        st.tuples(st.integers(0, 5), st.text("ab", min_size=1, max_size=3)), unique=True, max_size=30
    ),
    limit=st.integers(0, 10),
)
def test_quota_holders_never_exceed_the_limit(keys: list[tuple[int, str]], limit: int) -> None:
    quota_keys = [QuotaKey(created=f"2026-01-01T00:00:0{t}Z", namespace="ns", name=n) for t, n in keys]
    holders = [k for k in quota_keys if quota_standing(k, [o for o in quota_keys if o != k], limit).within]
    assert len(holders) == min(limit, len(quota_keys))


# ---- a world of endpoints over time ----------------------------------------------------------------------


@dataclass
class Ep:
    name: str
    account: str
    created: int
    status: EndpointStatus | None = None
    decision: Decision | None = None
    markers_seen: set[int] = field(default_factory=set)


LIMIT = 3
PORT_RANGE = PortRange(first=40000, last=40006)  # 7 ports, 2 per endpoint: room for 3 Accepted endpoints


class EndpointWorld(RuleBasedStateMachine):
    """Random creates, deletes, decisions, approval and whitelist changes; reconcile to a fixpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.endpoints: dict[str, Ep] = {}
        self.clock = 0
        self.approval = False
        self.listed: frozenset[str] = frozenset()
        self.high_water = 0
        self.every_marker: dict[int, str] = {}
        self.bypassed_admission = False

    # -- actions --

    def _new(self, account: str) -> Ep:
        self.clock += 1
        return Ep(name=f"e{self.clock}", account=account, created=self.clock)

    @rule(account=st.sampled_from(ACCOUNTS))
    def create_past_the_webhook(self, account: str) -> None:
        ep = self._new(account)
        self.endpoints[ep.name] = ep
        self.bypassed_admission = True

    @rule(account=st.sampled_from(ACCOUNTS))
    def create_through_admission(self, account: str) -> None:
        ep = self._new(account)
        used = sum(1 for e in self.endpoints.values() if e.account == account)
        request = EndpointAdmission(
            operation=Operation.CREATE,
            namespace="cons",
            name=ep.name,
            account=account,
            region="local-1",
            spec=EndpointSpec(serviceName=SERVICE_NAME),
            service=self._service(),
            whitelists=(self._whitelist(),),
            quota_used=used,
            quota_limit=LIMIT,
        )
        if check_endpoint_admission(request) is None:
            self.endpoints[ep.name] = ep

    @precondition(lambda self: bool(self.endpoints))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.endpoints)))
        del self.endpoints[name]

    @precondition(lambda self: bool(self.endpoints))
    @rule(data=st.data(), decision=DECISIONS)
    def decide(self, data: st.DataObject, decision: Decision | None) -> None:
        self.endpoints[data.draw(st.sampled_from(sorted(self.endpoints)))].decision = decision

    @rule()
    def toggle_approval(self) -> None:
        self.approval = not self.approval

    @rule(accounts=st.frozensets(st.sampled_from(ACCOUNTS[:3])))
    def set_whitelist(self, accounts: frozenset[str]) -> None:
        self.listed = accounts

    # -- reconcile --

    def _service(self) -> ServiceView:
        return service_view(spec=service_spec(approvalRequired=self.approval))

    def _whitelist(self) -> WhitelistView:
        return whitelist(*(entry_for(a) for a in sorted(self.listed)))

    def _permitted(self, account: str) -> bool:
        return account == PROVIDER or account in self.listed

    def _reconcile(self, ep: Ep) -> bool:
        others = [e for e in self.endpoints.values() if e.name != ep.name]
        same_account = [
            QuotaKey(created=f"{e.created:08d}", namespace="cons", name=e.name)
            for e in others
            if e.account == ep.account
        ]
        facts = EndpointFacts(
            namespace="cons",
            name=ep.name,
            uid=f"uid-{ep.name}",
            account=ep.account,
            region="local-1",
            spec=EndpointSpec(serviceName=SERVICE_NAME),
            status=ep.status,
            service=self._service(),
            whitelists=(self._whitelist(),),
            decision=ep.decision,
            quota=quota_standing(
                QuotaKey(created=f"{ep.created:08d}", namespace="cons", name=ep.name), same_account, LIMIT
            ),
            allocation=AllocationFacts(
                taken_marker_ids=frozenset(
                    e.status.markerId for e in others if e.status and e.status.markerId
                ),
                marker_high_water=self.high_water,
                taken_gateway_ports=frozenset(
                    p.gatewayPort for e in others if e.status for p in e.status.gatewayPorts
                ),
                port_range=PORT_RANGE,
            ),
            data_path=LIVE_PATH,
        )
        decision = decide_endpoint(facts)
        new = endpoint_status(decision, previous=ep.status, now="t", generation=1)
        was = ep.status.phase if ep.status else None
        if new.phase in ESTABLISHED_PHASES and was not in ESTABLISHED_PHASES:
            # A fresh acceptance: permitted, approved, not rejected right now.
            assert self._permitted(ep.account), "R13"
            assert ep.decision is not Decision.REJECT, "R11"
            assert not self.approval or ep.decision is Decision.ACCEPT, "R10"
        if new.phase is EndpointPhase.ACCEPTED:
            assert ep.decision is not Decision.REJECT
        if ep.status and ep.status.markerId is not None:
            assert (
                new.markerId == ep.status.markerId or ep.status.markerId in facts.allocation.taken_marker_ids
            )
        if new.markerId is not None:
            owner = self.every_marker.setdefault(new.markerId, ep.name)
            assert owner == ep.name, f"marker {new.markerId} reused: was {owner}'s"
            self.high_water = max(self.high_water, new.markerId)  # the service decision records it
        if ep.status and was is EndpointPhase.ACCEPTED and new.phase is EndpointPhase.ACCEPTED:
            assert new.gatewayPorts == ep.status.gatewayPorts, "ports stay put while accepted"
        changed = new != ep.status
        ep.status = new
        return changed

    def _settle(self) -> None:
        for _ in range(10):
            if not any(
                [self._reconcile(ep) for ep in sorted(self.endpoints.values(), key=lambda e: e.created)]
            ):
                return
        raise AssertionError("reconciliation did not converge in 10 rounds")

    # -- invariants --

    @invariant()
    def settled_world_keeps_its_promises(self) -> None:
        self._settle()
        live = list(self.endpoints.values())
        markers = [e.status.markerId for e in live if e.status and e.status.markerId is not None]
        assert len(markers) == len(set(markers)), "R33: marker ids unique within the service"
        ports = [p.gatewayPort for e in live if e.status for p in e.status.gatewayPorts]
        assert len(ports) == len(set(ports)), "R30: no two listeners share a gateway port"
        assert all(p in PORT_RANGE for p in ports)
        for account in ACCOUNTS:
            holding = [
                e
                for e in live
                if e.account == account and e.status and e.status.reason != Reason.QUOTA_EXCEEDED
            ]
            assert len(holding) <= LIMIT, "R22: quota never exceeded"
            if not self.bypassed_admission:
                assert len([e for e in live if e.account == account]) <= LIMIT
        for e in live:
            assert e.status is not None
            if e.status.phase is EndpointPhase.ACCEPTED:
                assert len(e.status.gatewayPorts) == 2 and e.status.markerId is not None


EndpointWorld.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestEndpointWorld = EndpointWorld.TestCase
