"""R43: the drainer's decisions (when to sweep, what to cut, what to keep) against an in-memory master CLI.

The real HAProxy behaviour (old workers, ``@!<pid>``, ``shutdown session``) is proven in
tests/dataplane/test_revocation_drain.py; this checks our own bookkeeping quickly.
"""

from __future__ import annotations

import argparse
import pathlib
import threading
import time
from collections import Counter

import pytest

from vpcep.gateway.agent import parse_args
from vpcep.gateway.haproxy_process import ProcessTable
from vpcep.gateway.revocation import (
    COMMANDS_PER_REQUEST,
    RESWEEP_INTERVAL_S,
    RevocationDrainer,
    parse_frontend_sessions,
    parse_show_sess,
)

# Captured from an HAProxy 2.6 old worker: one session of each endpoint and the CLI's own.
SHOW_SESS = (pathlib.Path(__file__).parent / "data" / "show_sess.txt").read_text()
# Captured from an HAProxy 2.6 old worker: "show stat ep_a 1 -1; show stat ep_gone 1 -1; show stat ep_b 1 -1"
# (two sessions on ep_a, a proxy it does not have, one session on ep_b).
SHOW_STAT_FRONTENDS = (pathlib.Path(__file__).parent / "data" / "show_stat_frontends.csv").read_text()


class FakeMaster:
    """The master CLI as the drainer uses it: ``show proc``, ``@!<pid> show sess``, batched shutdowns."""

    def __init__(self, current: int, sessions: dict[int, list[tuple[str, str]]]) -> None:
        self.current = current
        self.sessions = sessions  # pid -> [(stream id, frontend)]
        self.requests: list[str] = []

    def process_table(self, patience_s: float = 2.0) -> ProcessTable:
        old = tuple(pid for pid in self.sessions if pid != self.current)
        return ProcessTable(1, len(old), 0, self.current, old)

    def master_command(self, command: str) -> str:
        self.requests.append(command)
        answers = []
        for part in command.split("; "):
            prefix, _, rest = part.partition(" ")
            pid = int(prefix.removeprefix("@!"))
            if rest == "show sess":
                answers += [
                    f"{sid}: proto=tcpv4 src=10.0.0.1:1 fe={fe} be=x srv=backend\n"
                    for sid, fe in self.sessions[pid]
                ]
            elif rest.startswith("show stat "):
                proxy = rest.split()[2]
                counts = Counter(fe for _, fe in self.sessions[pid])
                names = sorted(counts) if proxy == "-1" else [proxy]
                answers += [f"# pxname,svname,qcur,qmax,scur\n{n},FRONTEND,,,{counts[n]},\n\n" for n in names]
            elif rest.startswith("shutdown session "):
                stream = rest.removeprefix("shutdown session ")
                self.sessions[pid] = [(sid, fe) for sid, fe in self.sessions[pid] if sid != stream]
        return "".join(answers) or "\n"

    def requests_to(self, pid: int) -> list[str]:
        return [
            part for request in self.requests for part in request.split("; ") if part.startswith(f"@!{pid} ")
        ]

    def frontends(self) -> dict[int, list[str]]:
        return {pid: sorted(fe for _, fe in streams) for pid, streams in self.sessions.items()}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drainer_for(master: FakeMaster, drain_s: float, clock: Clock, served: set[str]) -> RevocationDrainer:
    drainer = RevocationDrainer(master, drain_s, clock)
    drainer.observe(served, served)
    drainer.sweep()  # the sweep at start finds nothing revoked
    clock.now += RESWEEP_INTERVAL_S
    return drainer


def test_show_sess_lines_give_stream_ids_and_frontends() -> None:
    assert parse_show_sess(SHOW_SESS) == [
        ("0x55c2ec9da980", "ep_a"),
        ("0x55c2ecaf8d70", "ep_b"),
        ("0x7f3a68039fe0", "GLOBAL"),
    ]


def test_frontend_rows_give_session_counts_and_an_unknown_proxy_gives_nothing() -> None:
    assert parse_frontend_sessions(SHOW_STAT_FRONTENDS) == [("ep_a", 2), ("ep_b", 1)]
    assert "No such proxy." in SHOW_STAT_FRONTENDS


def test_a_removed_route_is_cut_after_the_drain_in_old_workers_only_its_sessions_R43() -> None:
    master = FakeMaster(
        30,
        {
            10: [("0x1", "ep_a"), ("0x2", "ep_b")],
            20: [("0x3", "ep_a"), ("0x4", "ep_b")],
            30: [("0x5", "ep_b")],
        },
    )
    clock = Clock()
    drainer = drainer_for(master, 5.0, clock, {"a", "b"})
    drainer.observe({"b"}, {"b"})
    assert drainer.seconds_to_next_sweep() == 5.0
    clock.now += 4.9
    drainer.sweep()
    assert master.frontends()[10] == ["ep_a", "ep_b"], "nothing is cut before the drain is over"
    clock.now += 0.1
    drainer.sweep()
    assert master.frontends() == {10: ["ep_b"], 20: ["ep_b"], 30: ["ep_b"]}
    assert drainer.sessions_cut == 2
    assert master.requests_to(30) == ["@!30 show stat -1 1 -1"], "the current worker no longer serves a"
    assert "@!10 show stat ep_a 1 -1" in master.requests_to(10), "a frontend's count tells who holds sessions"
    assert set(drainer.draining) == {"a"}, "kept until a sweep confirms nothing is left"
    clock.now += RESWEEP_INTERVAL_S
    drainer.sweep()
    assert drainer.draining == {} and drainer.seconds_to_next_sweep() is None


def test_a_zero_drain_cuts_at_the_first_sweep_R43() -> None:
    master = FakeMaster(30, {10: [("0x1", "ep_a")], 30: []})
    clock = Clock()
    drainer = drainer_for(master, 0.0, clock, {"a"})
    drainer.observe(set(), set())
    assert drainer.seconds_to_next_sweep() == 0.0
    drainer.sweep()
    assert master.frontends()[10] == []


def test_a_route_back_within_the_drain_keeps_its_sessions_R43() -> None:
    master = FakeMaster(30, {10: [("0x1", "ep_a")], 30: []})
    clock = Clock()
    drainer = drainer_for(master, 5.0, clock, {"a"})
    drainer.observe(set(), set())
    clock.now += 2
    drainer.observe({"a"}, {"a"})
    clock.now += 10
    drainer.sweep()
    assert master.frontends()[10] == ["ep_a"]
    assert drainer.seconds_to_next_sweep() is None


def test_a_new_agent_finds_sessions_revoked_while_it_was_away_and_drains_them_in_full_R43() -> None:
    master = FakeMaster(
        30, {10: [("0x1", "ep_gone"), ("0x2", "ep_b"), ("0x9", "vpcep-health")], 30: [("0x3", "ep_b")]}
    )
    clock = Clock()
    drainer = RevocationDrainer(master, 5.0, clock)
    assert drainer.seconds_to_next_sweep() is None, "nothing is swept before the source listed every route"
    drainer.observe({"b"}, {"b"})
    assert drainer.seconds_to_next_sweep() == 0.0
    drainer.sweep()
    assert (
        master.requests_to(30)
        == ["@!30 show stat -1 1 -1"]
        == [r.replace("10", "30") for r in master.requests_to(10)]
    )
    assert drainer.draining == {"gone": clock.now + 5}, "a full drain from when it is found"
    assert master.frontends()[10] == ["ep_b", "ep_gone", "vpcep-health"]
    clock.now += 5
    drainer.sweep()
    assert master.frontends()[10] == ["ep_b", "vpcep-health"]


def test_a_revoked_route_left_live_by_a_refused_reload_stops_listening_at_once_and_drains_R43() -> None:
    master = FakeMaster(30, {30: [("0x1", "ep_a"), ("0x2", "ep_b")]})
    clock = Clock()
    drainer = drainer_for(master, 1.0, clock, {"a", "b"})
    drainer.observe({"b"}, serving={"a", "b"})  # the reload that would drop a was refused
    assert drainer.seconds_to_next_sweep() == 0.0, "its listener must close now, not after the drain"
    drainer.sweep()
    assert "@!30 shutdown frontend ep_a" in master.requests
    assert master.frontends()[30] == ["ep_a", "ep_b"], "its open session drains like any other"
    clock.now += 1
    drainer.sweep()
    assert master.frontends()[30] == ["ep_b"]
    clock.now += RESWEEP_INTERVAL_S
    drainer.sweep()
    assert drainer.draining == {} and drainer.seconds_to_next_sweep() is None
    drainer.observe({"b"}, serving={"a", "b"})  # the next attempt is refused too: closing again is harmless
    assert drainer.seconds_to_next_sweep() == RESWEEP_INTERVAL_S, "soon, but no busier than the resweep pace"
    drainer.observe({"b"}, serving={"b"})  # a reload went through: nothing left to close
    assert drainer.seconds_to_next_sweep() is None


def test_many_sessions_are_cut_in_batches_each_command_addressed_to_its_process_R43() -> None:
    count = COMMANDS_PER_REQUEST + 5
    master = FakeMaster(30, {10: [(f"0x{n:x}", "ep_a") for n in range(1, count + 1)], 30: []})
    clock = Clock()
    drainer = drainer_for(master, 0.0, clock, {"a"})
    drainer.observe(set(), set())
    drainer.sweep()
    shutdowns = [r for r in master.requests if "shutdown" in r]
    assert len(shutdowns) == 2
    assert all(part.startswith("@!10 shutdown session 0x") for r in shutdowns for part in r.split("; "))
    assert master.frontends()[10] == []


def test_the_drain_period_is_a_flag_or_environment_value_and_never_negative_R43(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert parse_args([]).revocation_drain_seconds == 5.0
    assert parse_args(["--revocation-drain-seconds", "0"]).revocation_drain_seconds == 0.0
    monkeypatch.setenv("GATEWAY_REVOCATION_DRAIN_SECONDS", "2.5")
    assert parse_args([]).revocation_drain_seconds == 2.5
    with pytest.raises(SystemExit):
        parse_args(["--revocation-drain-seconds", "-1"])
    with pytest.raises(argparse.ArgumentTypeError, match="not a number"):
        from vpcep.gateway.agent import non_negative_seconds

        non_negative_seconds("soon")


def test_the_drainer_thread_cuts_on_its_own_and_stops_when_told_R43() -> None:
    master = FakeMaster(30, {10: [("0x1", "ep_a"), ("0x2", "ep_b")], 30: []})
    drainer = RevocationDrainer(master, 0.2)
    stop = threading.Event()
    thread = threading.Thread(target=drainer.run, args=(stop, lambda: True), daemon=True)
    thread.start()
    drainer.observe({"a", "b"}, {"a", "b"})
    revoked_at = time.monotonic()
    drainer.observe({"b"}, {"b"})
    while master.frontends()[10] != ["ep_b"] and time.monotonic() < revoked_at + 5:
        time.sleep(0.02)
    assert master.frontends()[10] == ["ep_b"]
    assert time.monotonic() - revoked_at >= 0.2
    stop.set()
    thread.join(timeout=3)
    assert not thread.is_alive()
