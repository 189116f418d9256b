"""How many sessions, buffers and pipes one gateway's HAProxy may hold within its container's memory limit
(R49).

Without a bound HAProxy accepts until the file-descriptor limit (hundreds of thousands of sessions) and one
tenant's flood of idle connections OOM-kills the gateway for every tenant (150,000 idle sessions ~ 1.6 GB
against a 1 GiB limit). With a global ``maxconn`` HAProxy stops accepting at the bound instead: the excess
waits in the kernel's accept backlog (or is dropped when that is full) and is served as sessions end.

The budget, from the HAProxy container's memory limit L (the downward API's ``limits.memory``):
- fixed = 16 MiB + 64 KiB per listener: HAProxy's base (master + worker, ~12 MB measured) and its
  configuration, measured at ~30 KiB per one-listener route in master + worker (HAProxy 2.6, 1,000 and 4,000
  routes), doubled so that one old worker still holding the previous configuration after a reload fits;
- of the rest (A = L - fixed): half for idle sessions at 11 KiB each (bench/README.md: 10.7 KB per idle
  session, 3.5 KB in HAProxy and 7.3 KB of kernel socket state, both charged to the container's cgroup):
  ``maxconn = A / 2 / 11 KiB``;
- a quarter for HAProxy's data buffers (``tune.buffers.limit = A / 4 / bufsize``): a session holds buffers
  only while data is in flight, so a busy gateway waits for a free buffer instead of allocating past the
  limit;
- an eighth for splicing pipes (``maxpipes = A / 8 / (2 x pipe size)``; HAProxy falls back to buffers when
  none is free);
- the last eighth is margin: kernel socket buffers of busy sessions beyond the idle cost, allocator slack.

With the chart's 1 GiB and no routes: ~46,900 sessions, 4,031 buffers of 64 KiB, 1,007 pipes. Each figure has
a floor so that a too small limit still leaves a working gateway (it then says so in its log).

The open-file limit bounds the sessions too: HAProxy needs two descriptors per session and per pipe besides
its listeners and its own sockets, and refuses to start when it cannot raise its limit that far ("Cannot raise
FD limit"): a crash loop. So ``maxconn`` is also at most (F - 256 - listeners - 2 x pipes) / 2 for the
container's hard limit F (container runtimes give 2^19 or more; a lower one, as on some hosts, now costs
sessions, not the gateway).
"""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB
BASE_BYTES = 16 * MIB
PER_LISTENER_BYTES = 64 * KIB
IDLE_SESSION_BYTES = 11 * KIB
DEFAULT_PIPE_BYTES = 64 * KIB  # the kernel's default pipe size when tune.pipesize is unset
MIN_SESSIONS = 100
MIN_BUFFERS = 16
MIN_PIPES = 16
FD_RESERVE = 256  # HAProxy's own descriptors: CLI and master sockets, health checks, the health listener


@dataclass(frozen=True)
class SessionBudget:
    max_connections: int
    buffers: int
    pipes: int
    # False when a floor applied: the limit is too small for this many listeners.
    fits: bool
    # True when the open-file limit, not memory, set max_connections.
    bounded_by_open_files: bool = False


def session_budget(
    memory_limit_bytes: int,
    listeners: int,
    buffer_size: int,
    pipe_size: int | None = None,
    open_files: int | None = None,
) -> SessionBudget:
    available = memory_limit_bytes - BASE_BYTES - PER_LISTENER_BYTES * listeners
    sessions = available // 2 // IDLE_SESSION_BYTES
    buffers = available // 4 // buffer_size
    pipes = available // 8 // (2 * (pipe_size or DEFAULT_PIPE_BYTES))
    used_pipes = max(MIN_PIPES, pipes)
    by_files = sessions if open_files is None else (open_files - FD_RESERVE - listeners - 2 * used_pipes) // 2
    return SessionBudget(
        max_connections=max(MIN_SESSIONS, min(sessions, by_files)),
        buffers=max(MIN_BUFFERS, buffers),
        pipes=used_pipes,
        fits=min(sessions, by_files) >= MIN_SESSIONS and buffers >= MIN_BUFFERS and pipes >= MIN_PIPES,
        bounded_by_open_files=by_files < sessions,
    )
