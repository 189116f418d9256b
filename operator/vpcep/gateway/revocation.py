"""R43: a revoked endpoint's sessions end after a drain period, in every HAProxy process.

A route that leaves the route source is a revoked endpoint: the operator removes an endpoint's
route only on Reject, deletion or a Failed phase, while any change of an endpoint that stays
Accepted (its source CIDRs, its connection cap, the backend address) rewrites the route under the same
endpointId. The reload that drops the route closes its listeners at once, so new connections are
refused at once; but every HAProxy worker that served the endpoint before the reload keeps its
open sessions until they end, because old workers run without ``hard-stop-after`` (R30: a reload
never cuts the sessions of the endpoints that stay). This module ends exactly the revoked
endpoint's sessions, in the current worker and in every old one, once the drain period is over.

What HAProxy offers for that (checked on Debian 12's 2.6 and in the 3.x management guide):

- ``shutdown sessions server <backend>/<server>`` refuses in an old worker ("Proxy is disabled.":
  its proxies are stopped), in 2.6 and still in 3.x, so it cannot reach old workers at all.
- ``shutdown session <id>`` works in every process, old workers included, addressed through the
  master CLI as ``@!<pid>``; the ids are the first field of ``show sess``. 2.6 cannot filter
  ``show sess``; 3.2 adds ``show sess frontend <name>`` (a possible saving, not needed for
  correctness). ``show proc`` lists the current and the old workers.
- The master CLI applies an ``@!<pid>`` prefix to one command only: a batch of commands
  separated by ``;`` repeats the prefix for each.
- ``show stat <proxy> 1 -1`` answers one frontend's open session count (``scur``), old workers
  included, in a line: the drainer asks it first and reads a process's session list only when it
  holds sessions to cut (a proxy the process lacks answers "No such proxy.").

The drainer is level-triggered: what it compares is the sessions the processes actually hold
against the routes that should be served. It sweeps (the processes that may hold revoked sessions)
when a route has left and its drain is over, and once after it starts, because a
route may have been removed while the agent was away and an adopted HAProxy's old workers may still
carry its sessions. Such sessions, found without a known removal time, get a full drain period from
the moment they are found (so an agent restart delays a cut by at most one drain period; it never
loses it). An endpoint is forgotten only after a sweep finds none of its sessions left.

A refused reload leaves a revoked endpoint in the current worker's configuration, listening: the
drainer then stops that frontend (``shutdown frontend``) so that it takes no new session, and sweeps
the current worker too. (In master-worker mode a stopped frontend's socket stays open for a later
worker: a new connection may complete its handshake in the kernel's backlog but is never accepted.)
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from vpcep.builders.haproxy_config import endpoint_of_proxy, frontend_name
from vpcep.gateway.haproxy_process import HaproxyError, ProcessTable

log = logging.getLogger(__name__)

# "0x55c2ec9da980: proto=tcpv4 src=10.0.0.1:47206 fe=ep_<endpointId> be=... srv=..."
SESSION_LINE = re.compile(r"^(0x[0-9a-fA-F]+): .*?\bfe=(\S+)")
# Commands per master CLI request: well inside the CLI's line buffer (tune.bufsize, >= 16 KB).
COMMANDS_PER_REQUEST = 200
# After a cut (or a failed sweep) the next sweep, which confirms nothing is left, waits this long.
RESWEEP_INTERVAL_S = 0.5


class MasterCli(Protocol):
    """What the drainer needs from the HAProxy master (``HaproxyMaster`` provides it)."""

    def process_table(self, patience_s: float = ...) -> ProcessTable: ...

    def master_command(self, command: str) -> str: ...


@dataclass(frozen=True)
class Session:
    process: int
    stream_id: str
    endpoint_id: str


def parse_show_sess(text: str) -> list[tuple[str, str]]:
    """(stream id, frontend name) of each session line of ``show sess``."""
    return [(match[1], match[2]) for line in text.splitlines() if (match := SESSION_LINE.match(line))]


def parse_frontend_sessions(text: str) -> list[tuple[str, int]]:
    """(frontend name, current sessions) of each FRONTEND row of ``show stat`` CSV (scur is column 5)."""
    rows = []
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) > 4 and fields[1] == "FRONTEND" and fields[4].isdigit():
            rows.append((fields[0], int(fields[4])))
    return rows


class RevocationDrainer:
    """Owns the drain bookkeeping. ``observe`` may be called from any thread (the agent's apply loop);
    everything else runs on one thread, ``run``'s, so that a long sweep (a big session list) never
    holds up applying routes or reporting status."""

    def __init__(
        self, master: MasterCli, drain_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._master = master
        self._drain_s = drain_s
        self._clock = clock
        # (when, desired, serving) handed over by observe, taken in order by the drainer's thread.
        self._inbox: queue.SimpleQueue[tuple[float, frozenset[str], frozenset[str]]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._desired: frozenset[str] | None = None
        self._serving: frozenset[str] = frozenset()
        # endpointId -> when its sessions are cut (clock time); kept until a sweep finds none left.
        self._deadlines: dict[str, float] = {}
        # Revoked endpoints the current worker still listens for (its reload was refused).
        self._frontends_to_close: frozenset[str] = frozenset()
        # Nothing is known of what the processes hold before the first sweep (an adopted HAProxy).
        self._discover = True
        self._not_before = 0.0
        self.sessions_cut = 0

    @property
    def draining(self) -> dict[str, float]:
        self._take_observations()
        return dict(self._deadlines)

    def observe(self, desired: Iterable[str], serving: Iterable[str]) -> None:
        """After each apply: the endpoints the route source lists (one that left starts its drain now)
        and those the current worker's configuration serves (normally the listed ones that HAProxy
        accepted; a refused reload leaves a revoked one in it)."""
        self._inbox.put((self._clock(), frozenset(desired), frozenset(serving)))
        self._wake.set()

    def run(self, stop: threading.Event, haproxy_running: Callable[[], bool]) -> None:
        """The drainer's thread: sweep whenever something is due, until ``stop``."""
        while not stop.is_set():
            wait = self.seconds_to_next_sweep() if haproxy_running() else None
            # At most a second between looks: HAProxy may come (back) up, ``stop`` may be set.
            if self._wake.wait(1.0 if wait is None else min(wait, 1.0)):
                self._wake.clear()
            if stop.is_set() or not haproxy_running():
                continue
            try:
                self.sweep()
            except (OSError, HaproxyError) as error:  # HAProxy busy re-executing: the next look retries
                log.warning("cannot drain revoked endpoints yet: %s", error)
            except Exception:  # never let the drainer die: log and go on
                log.exception("draining revoked endpoints failed")

    def _take_observations(self) -> None:
        while True:
            try:
                when, wanted, serving = self._inbox.get_nowait()
            except queue.Empty:
                return
            if self._desired is not None:
                for endpoint_id in self._desired - wanted:
                    self._deadlines.setdefault(endpoint_id, when + self._drain_s)
                    log.info("endpoint %s revoked: its sessions end in %.1f s", endpoint_id, self._drain_s)
            for endpoint_id in wanted & self._deadlines.keys():
                # Served again before its cut (accepted again, a route object recreated): keep its sessions.
                del self._deadlines[endpoint_id]
                log.info("endpoint %s is served again: its sessions are kept", endpoint_id)
            self._desired = wanted
            self._serving = serving
            self._frontends_to_close = serving - wanted

    def seconds_to_next_sweep(self) -> float | None:
        self._take_observations()
        if self._desired is None:
            return None
        if self._discover or self._frontends_to_close:
            due = 0.0
        elif self._deadlines:
            due = min(self._deadlines.values())
        else:
            return None
        return max(0.0, due - self._clock(), self._not_before - self._clock())

    def sweep(self) -> None:
        """Cut the sessions of revoked endpoints whose drain is over, in every process holding them."""
        wait = self.seconds_to_next_sweep()
        if self._desired is None or wait is None or wait > 0:
            return
        desired = self._desired
        self._not_before = self._clock() + RESWEEP_INTERVAL_S  # also when HAProxy does not answer
        table = self._master.process_table()
        processes = list(table.old_workers)
        if table.current_worker is not None:
            if self._frontends_to_close:
                self._close_frontends(table.current_worker, self._frontends_to_close)
                self._frontends_to_close = frozenset()
            if self._discover or not self._serving <= desired:
                processes.append(table.current_worker)
        # Which process holds sessions of which revoked endpoint: the frontends' session counts are cheap
        # to ask for (one line per frontend); a session list costs a line per session of every endpoint.
        asked = None if self._discover else self._deadlines.keys()
        holders = {pid: self._frontends_with_sessions(pid, asked) - desired for pid in processes}
        now = self._clock()
        for pid, endpoint_ids in holders.items():
            for endpoint_id in endpoint_ids - self._deadlines.keys():
                self._deadlines[endpoint_id] = now + self._drain_s
                log.info(
                    "process %d still carries sessions of endpoint %s, which is not served: "
                    "they end in %.1f s",
                    pid,
                    endpoint_id,
                    self._drain_s,
                )
        due = {endpoint_id for endpoint_id, deadline in self._deadlines.items() if deadline <= now}
        for pid, endpoint_ids in holders.items():
            if endpoint_ids & due:
                self._cut(self._sessions_of(pid, endpoint_ids & due))
        holding = set().union(*holders.values())
        for endpoint_id in due - holding:
            del self._deadlines[endpoint_id]  # drained, cut, and a sweep found nothing left
        self._discover = False

    def _close_frontends(self, pid: int, endpoint_ids: Iterable[str]) -> None:
        """A refused reload left revoked endpoints in the current worker: stop them accepting at once,
        as the reload would have (their open sessions drain as everywhere else)."""
        names = [frontend_name(endpoint_id) for endpoint_id in sorted(endpoint_ids)]
        self._batched([f"@!{pid} shutdown frontend {name}" for name in names])
        log.warning("the reload was refused: stopped listening for revoked %s in worker %d", names, pid)

    def _frontends_with_sessions(self, pid: int, endpoint_ids: Iterable[str] | None) -> set[str]:
        """Endpoints (of ``endpoint_ids``, or any when None) whose frontend has open sessions in ``pid``."""
        if endpoint_ids is None:
            commands = [f"@!{pid} show stat -1 1 -1"]  # every frontend
        else:  # a proxy the process does not have answers "No such proxy.", which parses to nothing
            commands = [f"@!{pid} show stat {frontend_name(e)} 1 -1" for e in sorted(endpoint_ids)]
        return {
            endpoint_id
            for frontend, sessions in parse_frontend_sessions(self._batched(commands))
            if sessions > 0 and (endpoint_id := endpoint_of_proxy(frontend)) is not None
        }

    def _sessions_of(self, pid: int, endpoint_ids: set[str]) -> list[Session]:
        # HAProxy 2.6 cannot filter "show sess" (3.2 can: "show sess frontend <name>").
        return [
            Session(pid, stream_id, endpoint_id)
            for stream_id, frontend in parse_show_sess(self._master.master_command(f"@!{pid} show sess"))
            if (endpoint_id := endpoint_of_proxy(frontend)) in endpoint_ids
        ]

    def _cut(self, sessions: list[Session]) -> None:
        self._batched([f"@!{s.process} shutdown session {s.stream_id}" for s in sessions])
        self.sessions_cut += len(sessions)
        by_endpoint: dict[str, int] = {}
        for session in sessions:
            by_endpoint[session.endpoint_id] = by_endpoint.get(session.endpoint_id, 0) + 1
        for endpoint_id, count in sorted(by_endpoint.items()):
            log.info("endpoint %s revoked: cut %d session(s) after the drain", endpoint_id, count)

    def _batched(self, commands: list[str]) -> str:
        """Send commands through the master CLI, many per request; the answers, concatenated."""
        return "".join(
            self._master.master_command("; ".join(commands[start : start + COMMANDS_PER_REQUEST]))
            for start in range(0, len(commands), COMMANDS_PER_REQUEST)
        )


__all__ = ["RevocationDrainer", "Session", "parse_frontend_sessions", "parse_show_sess"]
