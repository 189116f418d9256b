"""R49: the gateway's session, buffer and pipe budget follows the HAProxy container's memory limit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vpcep.api.routing import Listener, Route
from vpcep.builders.gateway_capacity import (
    BASE_BYTES,
    IDLE_SESSION_BYTES,
    MIN_SESSIONS,
    PER_LISTENER_BYTES,
    session_budget,
)
from vpcep.builders.haproxy_config import HaproxySettings, haproxy_config

GIB = 1 << 30
BUFFER = 65536


def test_the_charts_default_limit_holds_tens_of_thousands_of_sessions_not_the_flood_that_oomed_it_R49() -> (
    None
):
    budget = session_budget(GIB, 0, BUFFER)
    assert 40_000 < budget.max_connections < 50_000
    # issue 10: 150,000 idle sessions (~1.6 GB) OOM-killed a 1 GiB gateway; the bound stays far below.
    assert budget.max_connections * 10_700 < GIB // 2
    assert budget.buffers * BUFFER <= GIB // 4
    assert budget.fits


@given(
    limit=st.integers(min_value=BASE_BYTES, max_value=64 * GIB),
    listeners=st.integers(min_value=0, max_value=20_000),
    buffer_size=st.sampled_from([16384, 65536, 262144]),
)
def test_when_it_fits_sessions_buffers_and_pipes_stay_within_seven_eighths_of_the_limit_R49(
    limit: int, listeners: int, buffer_size: int
) -> None:
    budget = session_budget(limit, listeners, buffer_size)
    used = (
        BASE_BYTES
        + listeners * PER_LISTENER_BYTES
        + budget.max_connections * IDLE_SESSION_BYTES
        + budget.buffers * buffer_size
        + budget.pipes * 2 * 65536
    )
    if budget.fits:
        assert used <= limit * 7 // 8 + BASE_BYTES + listeners * PER_LISTENER_BYTES
        assert used <= limit
    assert budget.max_connections >= MIN_SESSIONS


def test_more_routes_leave_fewer_sessions_and_a_too_small_limit_says_so_R49() -> None:
    assert session_budget(GIB, 5000, BUFFER).max_connections < session_budget(GIB, 0, BUFFER).max_connections
    tiny = session_budget(BASE_BYTES, 10, BUFFER)
    assert not tiny.fits and tiny.max_connections == MIN_SESSIONS


def test_the_rendered_global_section_carries_the_budget_and_an_explicit_maxconn_wins_R49() -> None:
    route = Route(
        endpointId="e1",
        markerId=1,
        listeners=[Listener(gatewayPort=30001, clientPort=80, backendHost="10.0.0.1", serverPort=80)],
    )
    budget = session_budget(GIB, 1, BUFFER)
    text = haproxy_config([route], HaproxySettings(memory_limit_bytes=GIB))
    assert f"    maxconn {budget.max_connections}\n" in text
    assert f"    tune.buffers.limit {budget.buffers}\n" in text
    assert f"    maxpipes {budget.pipes}\n" in text
    explicit = haproxy_config([route], HaproxySettings(memory_limit_bytes=GIB, max_connections=500))
    assert "    maxconn 500\n" in explicit
    assert "maxconn" not in haproxy_config([route], HaproxySettings()), "no limit: HAProxy's own default"


@given(
    open_files=st.integers(min_value=1024, max_value=1 << 20),
    listeners=st.integers(min_value=0, max_value=2_000),
)
def test_maxconn_leaves_haproxy_descriptors_within_the_open_file_limit_R49(
    open_files: int, listeners: int
) -> None:
    """HAProxy needs two descriptors per session and per pipe besides its listeners; above the hard limit it
    refuses to start."""
    budget = session_budget(GIB, listeners, BUFFER, None, open_files)
    needed = 2 * budget.max_connections + 2 * budget.pipes + listeners
    assert needed <= open_files or budget.max_connections == MIN_SESSIONS
    assert budget.bounded_by_open_files == (
        budget.max_connections < session_budget(GIB, listeners, BUFFER).max_connections
    )
