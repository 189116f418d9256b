"""The incremental quota order gives the same ranks as counting from scratch (R9, R22: oldest objects hold
quota), whatever sequence of adds, deletes, account moves and rebuilds the watch delivers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vpcep.state.quota_order import Member, Order, QuotaQueues

KINDS = ("Endpoint", "EndpointService")
uids = st.sampled_from([f"uid-{n}" for n in range(4)])
members = st.one_of(
    st.none(),
    st.tuples(
        st.sampled_from(["acct-a", "acct-b"]),
        st.tuples(st.sampled_from([f"2026-01-01T00:00:0{n}Z" for n in range(4)]), st.just("ns"), uids),
    ),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("update"), st.sampled_from(KINDS), uids, members),
        st.tuples(st.just("forget"), st.none(), st.none(), st.none()),
        st.tuples(st.just("rank"), st.sampled_from(KINDS), st.none(), members),
    ),
    max_size=60,
)


def naive_rank(truth: dict[tuple[str, str], Member], kind: str, account: str, me: Order) -> int:
    return sum(1 for (k, _), (a, order) in truth.items() if k == kind and a == account and order < me)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_incremental_order_matches_counting_from_scratch(script: list[tuple]) -> None:
    truth: dict[tuple[str, str], Member] = {}

    def members_of(kind: str) -> list[tuple[str, Member]]:
        return [(uid, member) for (k, uid), member in truth.items() if k == kind]

    queues = QuotaQueues(members_of)
    for action, kind, uid, member in script:
        if action == "update":
            if member is None:
                truth.pop((kind, uid), None)
            else:
                truth[(kind, uid)] = member
            queues.update(kind, uid, member)
        elif action == "forget":
            queues.forget()
        elif member is not None:
            account, me = member
            assert queues.rank(kind, account, me) == naive_rank(truth, kind, account, me)
            assert queues.used(kind, account) == sum(
                1 for (k, _), (a, _) in truth.items() if k == kind and a == account
            )


def test_a_deleted_object_frees_its_place_for_the_next_in_line() -> None:
    """R22: deleting the oldest endpoint moves everyone after it one place up."""
    truth = {
        "old": ("acct", ("2026-01-01T00:00:01Z", "ns", "old")),
        "mid": ("acct", ("2026-01-01T00:00:02Z", "ns", "mid")),
        "new": ("acct", ("2026-01-01T00:00:03Z", "ns", "new")),
    }
    queues = QuotaQueues(lambda kind: list(truth.items()))
    assert queues.rank("Endpoint", "acct", truth["new"][1]) == 2
    queues.update("Endpoint", "old", None)
    assert queues.rank("Endpoint", "acct", truth["new"][1]) == 1
    assert queues.used("Endpoint", "acct") == 2
