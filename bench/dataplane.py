#!/usr/bin/env python3
"""Data-plane benchmark: the gateway (vpcep-gateway + HAProxy) against direct, its peers and the limit.

One command, bounded (about six minutes; --quick about two), root, everything in three network namespaces it
creates and deletes (also on Ctrl-C):

    sudo .venv/bin/python bench/dataplane.py [--quick] [--placement unpinned|pinned|both] [--paths ...]
                                             [--pinned-gateway-arg=--busy-polling] [--variant-arg=...]
                                             [--json results.json]

    client ns 10.200.1.2 --veth-- 10.200.1.1 gateway ns 10.200.2.1 --veth-- 10.200.2.2 backend ns

Every figure is measured in the same run over four paths, in rotation (D G N K K N G D after a warm-up of
each) so that a drift in the machine's load hits all alike:

- direct: the client dials the backend's own address; the gateway namespace only routes (ip_forward, no NAT,
  no conntrack). Same wires and hops as the other paths, nothing in between that looks at a session.
- gateway: the product's data plane, vpcep-gateway driving its HAProxy from a routes directory exactly as in
  a pod, listening in the gateway namespace.
- nginx: Debian's nginx (nginx-light + libnginx-mod-stream) as a TCP proxy, one ``server`` per port, the same
  buffer size and as many worker processes as HAProxy has threads: the best-known userspace peer.
- kernel: nftables DNAT + masquerade in the gateway namespace (one-hop forwarding, conntrack): the limit of
  what a gateway hop can cost, with none of the product's per-session controls.

Conntrack is switched off (``notrack``) for everything but the kernel path, so it taxes only the path that
needs it. Load generators and backends are Python (epoll, big buffers).

``--placement pinned`` puts the load generator and the backends on CPU 0 and the proxies (agent, HAProxy,
nginx) on CPU 1, so a proxy has a core of its own, as a gateway pod has; ``unpinned`` lets the scheduler
place everything. The kernel path's work runs in softirq context on whichever CPU sends the packet (veth
has no IRQ to steer): it cannot be pinned, and in the pinned run it lands on CPU 0 with the client.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import re
import resource
import secrets
import selectors
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

from vpcep.gateway.haproxy_process import parse_show_proc, unix_command  # noqa: E402

# This machine's hard limit on open files per process (no CAP_SYS_RESOURCE to raise it): one proxy process
# holds at most about half as many sessions, so the idle-session figure holds that many.
FILE_LIMIT = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
SESSIONS_PER_PROXY = max(1000, (FILE_LIMIT - 1000) // 2 - 1000)
NODE_MEMORY = 24 * 1024**3

CLIENT_IP, GATEWAY_FRONT, GATEWAY_BACK, BACKEND_IP = "10.200.1.2", "10.200.1.1", "10.200.2.1", "10.200.2.2"
BACKEND_PROCESSES = 4
# Backend ports: the kernel path has its own pair, so that the gateway namespace can tell its replies (which
# conntrack must see to undo the NAT) from the other paths' (which it must not track).
ECHO_PORT, SINK_PORT, KERNEL_ECHO_PORT, KERNEL_SINK_PORT = 9001, 9002, 9011, 9012
BACKEND_PORTS = {ECHO_PORT: "echo", SINK_PORT: "sink", KERNEL_ECHO_PORT: "echo", KERNEL_SINK_PORT: "sink"}
# Each path's listeners at base+1 (echo) and base+2 (sink); route changes use base+100 onwards. Below the
# ephemeral range (32768+), as gateway ports must be in a pod.
PORT_BASE = {"gateway": 30000, "nginx": 30200, "kernel": 30400, "variant": 30600}
KERNEL_PORTS = "30400-30599"

ALL_PATHS = ("direct", "gateway", "nginx", "kernel")
USERSPACE_PEERS = ("nginx",)
LABELS = {
    "direct": "direct",
    "gateway": "gateway",
    "nginx": "nginx stream",
    "kernel": "kernel (nft DNAT)",
    "variant": "gateway variant",
}


@dataclass(frozen=True)
class Goal:
    """What SPEC §6 asks of the gateway on one figure: its ratio to direct, its excess over direct, or its
    own value."""

    of: str  # "ratio" | "added" | "value"
    at_least: bool
    number: float
    text: str

    def met(self, value: float) -> bool:
        return value >= self.number if self.at_least else value <= self.number


GOALS = {
    "throughput_1": Goal("ratio", True, 0.7, ">= 0.7x"),
    "throughput_8": Goal("ratio", True, 0.7, ">= 0.7x"),
    "conn_rate": Goal("ratio", True, 0.6, ">= 0.6x"),
    "conn_p99": Goal("ratio", False, 1.7, "<= 1.7x"),
    "rtt_us": Goal("added", False, 50, "<= +50 us"),
    "idle_session_bytes": Goal("value", False, 11 * 1024, "<= 11 KB"),
    "reload_failures": Goal("value", False, 0, "0"),
}


# ------------------------------------------------------------------------------------ backends
def serve(ports: dict[int, str]) -> None:
    """Backends in one epoll loop: "echo" ports echo, "sink" ports discard (for throughput).

    Several of these share the ports (SO_REUSEPORT): one process may hold only FILE_LIMIT sockets.
    """
    _raise_file_limit()
    selector = selectors.DefaultSelector()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    for port, role in ports.items():
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("0.0.0.0", port))
        listener.listen(65535)
        listener.setblocking(False)
        selector.register(listener, selectors.EVENT_READ, ("listen", role))
    print("READY", flush=True)
    while True:
        for key, _ in selector.select():
            kind, role = key.data
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            if kind == "listen":
                with contextlib.suppress(BlockingIOError):
                    while True:
                        conn, _ = sock.accept()
                        conn.setblocking(False)
                        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        selector.register(conn, selectors.EVENT_READ, ("conn", role))
                continue
            try:
                size = sock.recv_into(buffer)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                size = 0
            if not size:
                selector.unregister(sock)
                sock.close()
            elif role == "echo":
                try:
                    sock.send(view[:size])  # small messages only: one send fits the socket buffer
                except OSError:
                    selector.unregister(sock)
                    sock.close()


# ------------------------------------------------------------------------------------ helpers
def _raise_file_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def hold(host: str, port: int, count: int) -> None:
    """Hold ``count`` idle connections until stdin closes (a process holds at most FILE_LIMIT)."""
    _raise_file_limit()
    held = [socket.create_connection((host, port), timeout=10) for _ in range(count)]
    print(f"HELD {len(held)}", flush=True)
    sys.stdin.read()
    for sock in held:
        close_now(sock)


class Holders:
    """Idle sessions held by helper processes, ``per_process`` at most in each."""

    def __init__(self, host: str, port: int, sessions: int, per_process: int = 5000) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        left = sessions
        while left > 0:
            count = min(per_process, left)
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--hold", host, str(port), str(count)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
            )
            left -= count
        self.count = 0
        for process in self.processes:
            assert process.stdout is not None
            line = process.stdout.readline().split()
            if not line or line[0] != b"HELD":
                raise RuntimeError("a session holder failed to open its connections")
            self.count += int(line[1])

    def release(self) -> None:
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.close()
        for process in self.processes:
            process.wait(timeout=30)


def connect(host: str, port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def close_now(sock: socket.socket) -> None:
    """Close with RST: no TIME_WAIT left behind to skew the next measurement."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def in_netns(netns: str, *command: str) -> list[str]:
    return ["ip", "netns", "exec", netns, *command]


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (HAProxy's master and workers under the agent)."""
    children: dict[int, list[int]] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                # The command name may hold spaces and parentheses: the parent pid follows the last ')'.
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def processes_mentioning(text: str) -> list[int]:
    """Processes whose command line names ``text`` (the bench's work directory): HAProxy masters and workers
    that outlived their agent are found by their configuration's path."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def pin(pids: list[int], cpus: set[int]) -> None:
    """Every thread of these processes onto ``cpus`` (sched_setaffinity acts on one thread)."""
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(task.name), cpus)


def tool_version(*command: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=10)
    except OSError:
        return "not installed"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0] if lines else "?"


# ------------------------------------------------------------------------------------ paths
@dataclass(frozen=True)
class Namespaces:
    client: str
    gateway: str
    backend: str


class Path:
    """One way from the client to the backends; the proxies among them also take route changes."""

    key = ""
    host = GATEWAY_FRONT
    # Sockets a session costs besides the client's and the backend's own (a proxy holds two more).
    extra_sockets = 2

    def __init__(self, netns: Namespaces, workdir: pathlib.Path, options: argparse.Namespace) -> None:
        self.netns = netns
        self.options = options
        self.workdir = workdir / self.key
        self.workdir.mkdir()
        base = PORT_BASE.get(self.key, 0)
        self.echo_port, self.sink_port = base + 1, base + 2
        self.changes = 0

    @property
    def label(self) -> str:
        return LABELS[self.key]

    def start(self) -> None:
        """Serve the echo and sink ports."""

    def stop(self) -> None:
        """Stop serving, leaving no process behind."""

    def proxy_pids(self) -> list[int]:
        """Processes doing the path's work (pinned to the proxy CPU, their memory counted per session)."""
        return []

    def signal(self, signum: int) -> None:
        for pid in self.proxy_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def churn_port(self, n: int) -> int:
        return PORT_BASE[self.key] + 100 + n

    def change(self, port: int, added: bool) -> str | None:
        """Add a listener on ``port`` towards the echo backend, or remove it; return once applied (as far as
        the path can tell), or why it was not."""
        raise NotImplementedError

    def reload_state(self) -> tuple[int | None, int]:
        """(the pid of the process that must survive every change, changes it has applied)."""
        return None, self.changes

    def reload_note(self) -> str:
        """What follows the number of changes applied in the figure's note."""
        return "changes applied"


class Direct(Path):
    key = "direct"
    host = BACKEND_IP
    extra_sockets = 0

    def __init__(self, netns: Namespaces, workdir: pathlib.Path, options: argparse.Namespace) -> None:
        super().__init__(netns, workdir, options)
        self.echo_port, self.sink_port = ECHO_PORT, SINK_PORT


class ProxyPath(Path):
    """A path served by a process tree (the gateway's agent and HAProxy, nginx's master and workers)."""

    def __init__(self, netns: Namespaces, workdir: pathlib.Path, options: argparse.Namespace) -> None:
        super().__init__(netns, workdir, options)
        self.process: subprocess.Popen[bytes] | None = None

    def proxy_pids(self) -> list[int]:
        return descendants(self.process.pid) if self.process else []

    def stop(self) -> None:
        pids = self.proxy_pids()
        if self.process and self.process.poll() is None:
            self.signal(signal.SIGCONT)  # a stopped process would not act on SIGTERM
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        for pid in {*pids, *processes_mentioning(str(self.workdir))}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class Gateway(ProxyPath):
    """The product: vpcep-gateway and its HAProxy, configured from a routes directory as in a pod."""

    key = "gateway"

    def __init__(self, netns: Namespaces, workdir: pathlib.Path, options: argparse.Namespace) -> None:
        super().__init__(netns, workdir, options)
        self.routes = self.workdir / "routes"
        self.run = self.workdir / "run"
        # Agent options beyond the bench's own (--gateway-arg, and --pinned-gateway-arg in the pinned run).
        self.extra_args: list[str] = [*options.gateway_arg, *self.own_args()]
        self.starts = 0
        self.routes.mkdir()
        self.log = self.workdir / "agent.log"

    def own_args(self) -> list[str]:
        """Options of this gateway beyond those every gateway of the run gets."""
        return []

    @staticmethod
    def route(endpoint_id: str, marker: int, listeners: list[tuple[int, int]]) -> dict[str, Any]:
        return {
            "endpointId": endpoint_id,
            "markerId": marker,
            "maxConnections": 100000,
            "listeners": [
                {"gatewayPort": g, "clientPort": g, "backendHost": BACKEND_IP, "serverPort": s}
                for g, s in listeners
            ],
        }

    def put(self, route: dict[str, Any]) -> None:
        target = self.routes / f"{route['endpointId']}.json"
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(route))
        temporary.rename(target)

    def start(self) -> None:
        self.put(self.route("bench", 1, [(self.echo_port, ECHO_PORT), (self.sink_port, SINK_PORT)]))
        # A fresh runtime directory per start: nothing of the last HAProxy is there to adopt.
        self.starts += 1
        self.run = self.workdir / f"run-{self.starts}"
        env = dict(os.environ, PYTHONPATH=str(ROOT / "operator"))
        options = self.options
        command = [
            sys.executable, "-m", "vpcep.gateway.agent",
            "--routes-dir", str(self.routes), "--runtime-dir", str(self.run),
            "--bind-address", GATEWAY_FRONT, "--buffer-size", str(options.buffer_size),
            "--splice", options.splice, "--threads", str(options.threads),
            *(["--pipe-size", str(options.pipe_size)] if options.pipe_size else []),
            "--debounce", "0.02", "--max-debounce", "0.1", "--log-level", "WARNING",
            *self.extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            in_netns(self.netns.gateway, *command),
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_listening(self, f"the gateway did not come up; see {self.log}")

    def applied_version(self) -> int:
        try:
            return int(json.loads((self.run / "status.json").read_text())["appliedResourceVersion"])
        except (OSError, ValueError, KeyError):
            return -1

    def haproxy_pids(self) -> list[int]:
        return [pid for pid in self.proxy_pids() if pid != (self.process.pid if self.process else None)]

    def show_proc(self) -> Any:
        # The master refuses its CLI for a moment while it re-executes itself (a reload, e.g. the agent's
        # first one after start-up): retry briefly instead of failing the run.
        deadline = time.monotonic() + 10
        while True:
            try:
                return parse_show_proc(unix_command(str(self.run / "master.sock"), "show proc"))
            except (ConnectionRefusedError, FileNotFoundError):
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)

    def change(self, port: int, added: bool) -> str | None:
        version = self.applied_version()
        if added:
            self.put(self.route("churn", 100 + port, [(port, ECHO_PORT)]))
        else:
            (self.routes / "churn.json").unlink()
        deadline = time.monotonic() + 10
        while self.applied_version() <= version and time.monotonic() < deadline:
            time.sleep(0.01)
        return None if self.applied_version() > version else "not applied within 10 s"

    def reload_state(self) -> tuple[int | None, int]:
        proc = self.show_proc()
        return proc.master_pid, proc.reloads

    def reload_note(self) -> str:
        segfaults = len(re.findall(r"exited with code 139", self.log.read_text(errors="replace")))
        return (
            f"reloads (the agent's debounce may merge changes); {segfaults} old HAProxy workers ended by "
            "SIGSEGV after draining (a HAProxy 2.6 defect, gone in 3.0), harmless"
        )


class GatewayVariant(Gateway):
    """A second gateway with more options (--variant-arg): an A/B of a tuning in one run, under one load."""

    key = "variant"

    def own_args(self) -> list[str]:
        return list(self.options.variant_arg)


class Nginx(ProxyPath):
    """nginx's stream proxy doing the gateway's job: one ``server`` per port, the same buffer size, one worker
    process per HAProxy thread. Reloaded with SIGHUP: old workers serve their sessions until they end, as
    HAProxy's do."""

    key = "nginx"
    MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"

    def __init__(self, netns: Namespaces, workdir: pathlib.Path, options: argparse.Namespace) -> None:
        super().__init__(netns, workdir, options)
        self.listeners = {self.echo_port: ECHO_PORT, self.sink_port: SINK_PORT}
        self.config = self.workdir / "nginx.conf"

    def render(self) -> str:
        servers = "".join(
            f"    server {{ listen {GATEWAY_FRONT}:{port} backlog=65535; "
            f"proxy_pass {BACKEND_IP}:{backend}; }}\n"
            for port, backend in sorted(self.listeners.items())
        )
        return (
            f"load_module {self.MODULE};\n"
            f"worker_processes {self.options.threads};\n"
            f"worker_rlimit_nofile {FILE_LIMIT};\n"
            "daemon off;\n"
            f"pid {self.workdir}/nginx.pid;\n"
            f"error_log {self.workdir}/error.log warn;\n"
            f"events {{ worker_connections {FILE_LIMIT}; }}\n"
            "stream {\n"
            # HAProxy's tune.bufsize: one buffer per direction of a session.
            f"    proxy_buffer_size {self.options.buffer_size};\n"
            "    proxy_connect_timeout 5s;\n"
            "    proxy_timeout 3600s;\n"
            f"{servers}"
            "}\n"
        )

    def start(self) -> None:
        self.config.write_text(self.render())
        command = [
            "nginx",
            "-p",
            str(self.workdir),
            "-c",
            str(self.config),
            "-e",
            str(self.workdir / "error.log"),
        ]
        self.process = subprocess.Popen(
            in_netns(self.netns.gateway, *command),
            stdout=(self.workdir / "stdout.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_listening(self, f"nginx did not come up; see {self.workdir / 'error.log'}")

    def change(self, port: int, added: bool) -> str | None:
        assert self.process is not None
        if added:
            self.listeners[port] = ECHO_PORT
        else:
            del self.listeners[port]
        self.config.write_text(self.render())
        workers = set(self.proxy_pids())
        os.kill(self.process.pid, signal.SIGHUP)
        self.changes += 1
        # Applied once the master has started a worker with the new configuration.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if set(self.proxy_pids()) - workers:
                return None
            time.sleep(0.01)
        return "no new worker within 10 s"

    def reload_state(self) -> tuple[int | None, int]:
        return (self.process.pid if self.process else None), self.changes

    def reload_note(self) -> str:
        return "reloads (SIGHUP)"


class Kernel(Path):
    """nftables DNAT (a port -> backend map) and masquerade in the gateway namespace: the one-hop limit."""

    key = "kernel"
    extra_sockets = 0

    def nft(self, *command: str, script: str | None = None) -> None:
        subprocess.run(in_netns(self.netns.gateway, "nft", *command), input=script, text=True, check=True)

    def start(self) -> None:
        self.nft("add", "element", "ip", "vpcep_bench", "forward",
                 f"{{ {self.echo_port} : {BACKEND_IP} . {KERNEL_ECHO_PORT}, "
                 f"{self.sink_port} : {BACKEND_IP} . {KERNEL_SINK_PORT} }}")  # fmt: skip
        wait_listening(self, "the kernel path does not forward")

    def change(self, port: int, added: bool) -> str | None:
        element = f"{{ {port} : {BACKEND_IP} . {KERNEL_ECHO_PORT} }}" if added else f"{{ {port} }}"
        self.nft("add" if added else "delete", "element", "ip", "vpcep_bench", "forward", element)
        self.changes += 1
        return None


PATH_TYPES: dict[str, type[Path]] = {
    "direct": Direct,
    "gateway": Gateway,
    "nginx": Nginx,
    "kernel": Kernel,
    "variant": GatewayVariant,
}


def wait_listening(path: Path, problem: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), connect(path.host, path.echo_port, timeout=1) as sock:
            sock.sendall(b"x")
            if sock.recv(1) == b"x":
                return
        time.sleep(0.1)
    raise RuntimeError(problem)


# ------------------------------------------------------------------------------------ figures
@dataclass
class Figure:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    values: dict[str, float]  # path key -> value; no "direct" where direct is the zero (memory, reloads)
    note: str = ""

    def ratio(self, path: str) -> float | None:
        direct = self.values.get("direct")
        if path == "direct" or not direct or path not in self.values:
            return None
        return self.values[path] / direct

    def gateway_result(self) -> float | None:
        goal = GOALS[self.key]
        if "gateway" not in self.values:
            return None
        if goal.of == "ratio":
            return self.ratio("gateway")
        if goal.of == "added":
            return self.values["gateway"] - self.values["direct"] if "direct" in self.values else None
        return self.values["gateway"]

    def best_peer(self) -> str | None:
        peers = [p for p in USERSPACE_PEERS if p in self.values]
        if not peers:
            return None
        pick = max if self.higher_is_better else min
        return pick(peers, key=lambda p: self.values[p])

    def versus_peer(self) -> tuple[str, float | None, bool] | None:
        """(best userspace peer, gateway / peer, gateway at least as good)."""
        peer = self.best_peer()
        if peer is None or "gateway" not in self.values:
            return None
        gateway, other = self.values["gateway"], self.values[peer]
        as_good = gateway >= other if self.higher_is_better else gateway <= other
        return peer, (gateway / other if other else None), as_good

    def as_dict(self) -> dict[str, Any]:
        result = self.gateway_result()
        versus = self.versus_peer()
        return {
            "key": self.key, "label": self.label, "unit": self.unit,
            "better": "higher" if self.higher_is_better else "lower",
            "values": self.values,
            "ratio_to_direct": {p: self.ratio(p) for p in self.values if self.ratio(p) is not None},
            "goal": GOALS[self.key].text,
            "gateway_result": result,
            "goal_met": None if result is None else GOALS[self.key].met(result),
            "best_peer": versus and versus[0],
            "gateway_to_best_peer": versus and versus[1],
            "gateway_as_good_as_best_peer": versus and versus[2],
            "note": self.note,
        }  # fmt: skip


@dataclass
class Report:
    placement: str
    paths: list[str]
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        cells = ", ".join(f"{p} {_cell(figure, p)}" for p in self.paths if p in figure.values)
        print(f"  {figure.label}: {cells}", flush=True)

    def markdown(self) -> str:
        header = ["measure (better)", *(LABELS[p] for p in self.paths), "gateway ÷ best userspace peer",
                  "goal (gateway vs direct)", "met", "gateway ≥ peer"]  # fmt: skip
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for f in self.figures:
            cells = [_cell(f, p) for p in self.paths]
            versus = f.versus_peer()
            if versus is None:
                peer_cell, as_good = "-", "-"
            else:
                peer, ratio, good = versus
                peer_cell = (
                    f"{ratio:.2f}x ({LABELS[peer]})" if ratio is not None else f"equal ({LABELS[peer]})"
                )
                as_good = "yes" if good else "**no**"
            result = f.gateway_result()
            met = "-" if result is None else ("yes" if GOALS[f.key].met(result) else "**no**")
            better = "higher" if f.higher_is_better else "lower"
            lines.append(
                "| "
                + " | ".join([f"{f.label} ({better})", *cells, peer_cell, GOALS[f.key].text, met, as_good])
                + " |"
            )
        notes = [f"- {f.label}: {f.note}" for f in self.figures if f.note] + [f"- {n}" for n in self.notes]
        title = (
            f"Placement **{self.placement}**. Brackets: ratio to direct. Gateway ÷ best userspace peer: "
            "above 1.00x is better for (higher) rows, below 1.00x for (lower) rows."
        )
        return "\n".join([title, "", *lines, "", *notes]) + "\n"


def _cell(figure: Figure, path: str) -> str:
    if path not in figure.values:
        return "-"
    value = _fmt(figure.values[path], figure.unit)
    ratio = figure.ratio(path)
    if ratio is None:
        return value
    if figure.key == "rtt_us":
        return f"{value} ({ratio:.2f}x, {figure.values[path] - figure.values['direct']:+.0f} us)"
    return f"{value} ({ratio:.2f}x)"


def _fmt(value: float, unit: str) -> str:
    if unit == "MB/s":
        return f"{value:,.0f} MB/s"
    if unit == "KB":
        return f"{value / 1024:.1f} KB" if abs(value) >= 1024 else f"{value / 1024:.2f} KB"
    if unit == "conn/s":
        return f"{value:,.0f} conn/s"
    if unit == "failed":
        return f"{value:.0f} failed"
    if unit == "ms":
        return f"{value:,.2f} ms"
    return f"{value:,.1f} {unit}"


# ------------------------------------------------------------------------------------ measures
def throughput(path: Path, streams: int, seconds: float) -> tuple[float, float]:
    """(bytes, seconds) pushed into the sink over ``streams`` parallel connections."""
    chunk = memoryview(b"\0" * (1 << 20))
    sent = [0] * streams
    start = threading.Barrier(streams + 1)
    deadline: list[float] = []

    def pump(index: int) -> None:
        with connect(path.host, path.sink_port) as sock:
            start.wait()
            while time.monotonic() < deadline[0]:
                sock.sendall(chunk)
                sent[index] += len(chunk)

    threads = [threading.Thread(target=pump, args=(i,)) for i in range(streams)]
    for thread in threads:
        thread.start()
    deadline.append(time.monotonic() + seconds)
    began = time.monotonic()
    start.wait()
    for thread in threads:
        thread.join()
    return sum(sent), time.monotonic() - began


def connection_rate(path: Path, seconds: float, workers: int = 4) -> tuple[list[float], float]:
    """(latencies in s, elapsed s) of connect, 1-byte request/answer, close, in closed loops."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    errors: list[str] = []

    def loop() -> None:
        mine: list[float] = []
        while time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                with socket.create_connection((path.host, path.echo_port), timeout=5) as sock:
                    sock.sendall(b"x")
                    if sock.recv(1) != b"x":
                        raise ConnectionError("no answer")
            except OSError as error:
                errors.append(repr(error))
                continue
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=loop) for _ in range(workers)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    if errors:
        print(f"    {path.key}: {len(errors)} connection errors, e.g. {errors[0]}")
    return latencies, elapsed


def round_trip_us(path: Path, count: int) -> float:
    """Median microseconds of a 1-byte ping-pong on a kept-alive connection."""
    samples = []
    with connect(path.host, path.echo_port) as sock:
        for _ in range(200):  # warm-up
            sock.sendall(b"p")
            sock.recv(1)
        for _ in range(count):
            began = time.perf_counter()
            sock.sendall(b"p")
            sock.recv(1)
            samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1e6


def rotated(measure: Callable[[Path], Any], paths: list[Path], rotations: int) -> dict[str, list[Any]]:
    """Each path once, discarded, then ``rotations`` times forwards and backwards (D G N K K N G D): a drift
    in the machine's load hits every path alike.

    The warm-up matters: HAProxy's memory pools and the kernel's caches grow on the first burst (the first
    round through a fresh HAProxy ran at a third of the later ones).
    """

    def alone(path: Path) -> Any:
        with running_alone(path, paths):
            return measure(path)

    for path in paths:
        alone(path)
    results: dict[str, list[Any]] = {path.key: [] for path in paths}
    for _ in range(rotations):
        for path in [*paths, *reversed(paths)]:
            results[path.key].append(alone(path))
    return results


@contextlib.contextmanager
def running_alone(path: Path, paths: list[Path]) -> Iterator[None]:
    """The other paths' proxies stopped (SIGSTOP) while ``path`` is measured: an idle proxy's timers and
    health checks, or a busy-polling one's spinning, must not take CPU from the path under test."""
    others = [other for other in paths if other is not path]
    for other in others:
        other.signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for other in others:
            other.signal(signal.SIGCONT)


def _rate(rounds: list[tuple[float, float]]) -> float:
    return sum(amount for amount, _ in rounds) / sum(elapsed for _, elapsed in rounds)


def throughput_figures(report: Report, paths: list[Path], seconds: float, rotations: int) -> None:
    for streams, key, label in ((1, "throughput_1", "single-stream"), (8, "throughput_8", "8-stream")):
        print(f"{label} throughput", flush=True)
        rounds = rotated(lambda path, n=streams: throughput(path, n, seconds), paths, rotations)  # type: ignore[misc]
        values = {path: _rate(each) / 1e6 for path, each in rounds.items()}
        report.add(Figure(key, f"{label} throughput", "MB/s", True, values))


def connection_figures(report: Report, paths: list[Path], seconds: float, rotations: int) -> None:
    print("new connections", flush=True)
    rounds = rotated(lambda path: connection_rate(path, seconds), paths, rotations)
    rates = {path: _rate([(len(lat), elapsed) for lat, elapsed in each]) for path, each in rounds.items()}
    p99 = {
        path: percentile([latency for latencies, _ in each for latency in latencies], 0.99) * 1000
        for path, each in rounds.items()
    }
    report.add(Figure("conn_rate", "new-connection rate", "conn/s", True, rates))
    report.add(Figure("conn_p99", "new-connection p99 latency", "ms", False, p99))


def round_trip_figure(report: Report, paths: list[Path], count: int, rotations: int) -> None:
    print("kept-alive round trip", flush=True)
    rounds = rotated(lambda path: round_trip_us(path, count), paths, rotations)
    values = {path: statistics.median(each) for path, each in rounds.items()}
    report.add(Figure("rtt_us", "kept-alive round trip (median)", "us", False, values))


# ------------------------------------------------------------------------------------ memory
# Slab caches that hold one object per TCP socket and that little else on the machine churns.
SOCKET_CACHES = ("TCP", "sock_inode_cache", "eventpoll_epi")
# One object per socket too, but other processes (compilers...) churn them: counted by size.
PER_SOCKET_SHARED = ("filp", "dentry")


def slab_table() -> dict[str, tuple[int, int]]:
    """cache -> (active objects, object size)."""
    table = {}
    with open("/proc/slabinfo") as slabinfo:
        for line in slabinfo:
            if line.startswith(("slabinfo", "#")):
                continue
            parts = line.split()
            table[parts[0]] = (int(parts[1]), int(parts[3]))
    return table


def socket_buffer_bytes(pid: int) -> int:
    """Socket buffer memory of the network namespace ``pid`` lives in (sockstat is per netns)."""
    text = pathlib.Path(f"/proc/{pid}/net/sockstat").read_text()
    match = re.search(r"^TCP:.* mem (\d+)", text, re.M)
    return int(match[1]) * 4096 if match else 0


def established_to_backend(backend_pid: int) -> int:
    """Established connections the backends hold (each a session that went all the way through)."""
    ports = {f"{port:04X}" for port, role in BACKEND_PORTS.items() if role == "echo"}
    count = 0
    for line in pathlib.Path(f"/proc/{backend_pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and fields[1].rsplit(":", 1)[1] in ports:
            count += 1
    return count


def proxy_pss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in pathlib.Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
    return total


def conntrack_bytes(netns: Namespaces) -> int:
    """Conntrack entries of the gateway namespace at the slab's object size (the slab's own count moves
    with per-CPU caching by more than a few thousand entries)."""
    count = subprocess.run(
        in_netns(netns.gateway, "cat", "/proc/sys/net/netfilter/nf_conntrack_count"),
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    return int(count or 0) * slab_table().get("nf_conntrack", (0, 0))[1]


def idle_session_memory(
    paths: list[Path], sessions: int, netns: Namespaces, netns_pids: list[int], backend_pid: int
) -> Figure:
    """Proxy + kernel bytes per idle session on each path, beyond what a direct session costs.

    Kernel: growth of the per-socket slab caches, of conntrack's entries and of the three namespaces' socket
    buffers with the sessions held through the path, minus the same with as many direct sessions, plus one
    file and one dentry per extra socket at their slab object size. Proxy: growth of the proxy processes'
    proportional set size (the gateway's agent included: it does not grow with sessions).
    """

    def kernel_bytes() -> int:
        table = slab_table()
        caches = sum(table[name][0] * table[name][1] for name in SOCKET_CACHES if name in table)
        return caches + sum(socket_buffer_bytes(pid) for pid in netns_pids) + conntrack_bytes(netns)

    def held(path: Path) -> tuple[int, int, int]:
        """(kernel growth, proxy growth, sessions through) while ``sessions`` are held on ``path``."""
        pids = path.proxy_pids()
        settle()
        kernel_0, proxy_0, through_0 = kernel_bytes(), proxy_pss(pids), established_to_backend(backend_pid)
        holders = Holders(path.host, path.echo_port, sessions)
        deadline = time.monotonic() + 30
        while established_to_backend(backend_pid) - through_0 < holders.count and time.monotonic() < deadline:
            time.sleep(0.2)
        settle()
        through = established_to_backend(backend_pid) - through_0
        growth = kernel_bytes() - kernel_0, proxy_pss(path.proxy_pids()) - proxy_0, through
        holders.release()
        return growth

    table = slab_table()
    shared_per_socket = sum(table[name][1] for name in PER_SOCKET_SHARED if name in table)
    direct = next(path for path in paths if path.key == "direct")
    kernel_direct, _, through_direct = held(direct)
    values: dict[str, float] = {}
    notes = []
    for path in paths:
        if path.key == "direct":
            continue
        kernel, proxy, through = held(path)
        kernel_per_session = kernel / through - kernel_direct / through_direct
        kernel_per_session += path.extra_sockets * shared_per_socket
        proxy_per_session = proxy / through
        values[path.key] = kernel_per_session + proxy_per_session
        notes.append(
            f"{path.label} {through} sessions, {proxy_per_session / 1024:.2f} KB proxy + "
            f"{kernel_per_session / 1024:.2f} KB kernel, "
            f"~{NODE_MEMORY / values[path.key] / 1e6:.1f} M on 24 GiB"
        )
    note = f"beyond a direct session's two sockets; {'; '.join(notes)}"
    return Figure("idle_session_bytes", "memory per idle session", "KB", False, values, note=note)


def settle(seconds: float = 1.5) -> None:
    time.sleep(seconds)


# ------------------------------------------------------------------------------------ reloads
def change_served(path: Path, port: int, added: bool, within: float = 2.0) -> str | None:
    """None once a route change shows on the wire: an added listener echoes, a removed one refuses
    connections. Else why not. Polled briefly: the status is written right after the reload, and the old
    worker lets go of a removed listener while it drains."""
    deadline = time.monotonic() + within
    problem = "not checked"
    while True:
        try:
            with connect(path.host, port, timeout=1) as sock:
                sock.sendall(b"x")
                answered = sock.recv(1) == b"x"
            if added and answered:
                return None
            problem = "still accepts connections after its route was removed" if not added else "no echo"
        except OSError as error:
            if not added and isinstance(error, ConnectionRefusedError):
                return None
            problem = repr(error)
        if time.monotonic() >= deadline:
            return f"port {port}: {problem}"
        time.sleep(0.05)


def measure_reloads(path: Path, changes: int) -> tuple[int, str]:
    """(failures, note) across ``changes`` route changes under load: lost or refused client connections,
    changes not applied or not visible on the wire, a restart of the process that must survive."""
    stop = threading.Event()
    failures: list[str] = []
    completed = [0]

    def short_connections() -> None:
        while not stop.is_set():
            try:
                with socket.create_connection((path.host, path.echo_port), timeout=5) as sock:
                    sock.sendall(b"hello")
                    got = b""
                    while len(got) < 5:
                        chunk = sock.recv(5)
                        if not chunk:
                            raise ConnectionError("closed")
                        got += chunk
                completed[0] += 1
            except OSError as error:
                failures.append(repr(error))

    def long_lived() -> None:
        try:
            with connect(path.host, path.echo_port) as sock:
                while not stop.is_set():
                    sock.sendall(b"t")
                    if sock.recv(1) != b"t":
                        raise ConnectionError("lost")
                    completed[0] += 1
                    time.sleep(0.01)
        except OSError as error:
            failures.append(repr(error))

    threads = [threading.Thread(target=short_connections) for _ in range(3)]
    threads += [threading.Thread(target=long_lived) for _ in range(16)]
    survivor, applied_before = path.reload_state()
    for thread in threads:
        thread.start()
    for n in range(changes):
        added = n % 2 == 0
        port = path.churn_port(n if added else n - 1)
        if problem := path.change(port, added):
            failures.append(f"route change {n}: {problem}")
        elif problem := change_served(path, port, added):
            failures.append(f"route change {n} not served: {problem}")
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    survivor_after, applied_after = path.reload_state()
    if survivor_after != survivor:
        failures.append("the master process restarted")
    for failure in failures[:5]:
        print(f"    {path.key} failure: {failure}")
    note = (
        f"{completed[0]} exchanges on 3 connecting and 16 long-lived clients; "
        f"{applied_after - applied_before} {path.reload_note()}"
    )
    return len(failures), note


def reload_figure(report: Report, paths: list[Path], changes: int) -> None:
    print(f"{changes} route changes under load", flush=True)
    values, notes = {}, []
    for path in paths:
        if path.key == "direct":
            continue
        failed, note = measure_reloads(path, changes)
        values[path.key] = float(failed)
        notes.append(f"{path.label}: {note}")
    label = f"failed connections or unserved changes across {changes} route changes"
    report.add(Figure("reload_failures", label, "failed", False, values, note="; ".join(notes)))


# ------------------------------------------------------------------------------------ topology
NFT_RULES = f"""
table ip vpcep_bench {{
  map forward {{
    type inet_service : ipv4_addr . inet_service
  }}
  chain raw_prerouting {{
    type filter hook prerouting priority raw; policy accept;
    tcp dport {KERNEL_PORTS} return
    tcp sport {KERNEL_ECHO_PORT}-{KERNEL_SINK_PORT} return
    notrack
  }}
  chain raw_output {{
    type filter hook output priority raw; policy accept;
    notrack
  }}
  chain nat_prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    dnat ip to tcp dport map @forward
  }}
  chain nat_postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ct status dnat masquerade
  }}
}}
"""

SYSCTLS = (
    # Gateway ports (30000-31999 here) stay out of the ephemeral range, as they must in a pod.
    "net.ipv4.ip_local_port_range=32768 65000",
    "net.ipv4.tcp_tw_reuse=1",
    "net.core.somaxconn=65535",
    # Closed connections' TIME_WAIT entries would otherwise pile up across phases and slow connect() for
    # whichever path is measured later.
    "net.ipv4.tcp_max_tw_buckets=1024",
)


@contextlib.contextmanager
def bench_namespaces() -> Iterator[Namespaces]:
    """client --veth-- gateway --veth-- backend; deleted, with every process in them, whatever happens."""
    tag = f"{os.getpid()}-{secrets.token_hex(2)}"
    netns = Namespaces(f"vpcep-bc-{tag}", f"vpcep-bg-{tag}", f"vpcep-bb-{tag}")
    created: list[str] = []
    try:
        for name in (netns.client, netns.gateway, netns.backend):
            subprocess.run(["ip", "netns", "add", name], check=True)
            created.append(name)

        def run(name: str, *command: str, script: str | None = None) -> None:
            subprocess.run(in_netns(name, *command), check=True, input=script, text=True)

        subprocess.run(["ip", "link", "add", "c0", "netns", netns.client, "type", "veth",
                        "peer", "name", "g0", "netns", netns.gateway], check=True)  # fmt: skip
        subprocess.run(["ip", "link", "add", "b0", "netns", netns.backend, "type", "veth",
                        "peer", "name", "g1", "netns", netns.gateway], check=True)  # fmt: skip
        for name, device, address, gateway in (
            (netns.client, "c0", f"{CLIENT_IP}/24", GATEWAY_FRONT),
            (netns.gateway, "g0", f"{GATEWAY_FRONT}/24", None),
            (netns.gateway, "g1", f"{GATEWAY_BACK}/24", None),
            (netns.backend, "b0", f"{BACKEND_IP}/24", GATEWAY_BACK),
        ):
            run(name, "ip", "addr", "add", address, "dev", device)
            run(name, "ip", "link", "set", device, "up")
            if gateway:
                run(name, "ip", "route", "add", "default", "via", gateway)
        for name in created:
            run(name, "ip", "link", "set", "lo", "up")
            for setting in SYSCTLS:
                run(name, "sysctl", "-qw", setting)
        run(netns.gateway, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        run(netns.gateway, "nft", "-f", "-", script=NFT_RULES)
        # Closed kernel-path sessions leave their conntrack entries for two minutes by default; the
        # idle-session figure counts conntrack's slab, which entries expiring meanwhile would skew.
        run(netns.gateway, "sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_timeout_time_wait=1")
        yield netns
    finally:
        for name in created:
            pids = subprocess.run(
                ["ip", "netns", "pids", name], capture_output=True, text=True
            ).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        for name in created:
            subprocess.run(["ip", "netns", "del", name], check=False)


# ------------------------------------------------------------------------------------ the run
def facts(args: argparse.Namespace) -> dict[str, Any]:
    debian = pathlib.Path("/etc/debian_version")
    return {
        "load average at start": " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3]),
        "CPUs": os.cpu_count(),
        "kernel": os.uname().release,
        "Debian": debian.read_text().strip() if debian.exists() else "?",
        "HAProxy": tool_version("haproxy", "-v"),
        "nginx": tool_version("nginx", "-v"),
        "nft": tool_version("nft", "--version"),
        "Python": sys.version.split()[0],
        "HAProxy nbthread = nginx worker_processes": args.threads,
        "tune.bufsize = proxy_buffer_size": args.buffer_size,
        "splice": args.splice,
        "tune.pipesize": args.pipe_size or "kernel default",
        "extra agent options": " ".join(args.gateway_arg) or "none",
        "extra agent options in the pinned run": " ".join(args.pinned_gateway_arg) or "none",
    }


def place(placement: str, paths: list[Path], backend_pids: list[int]) -> None:
    cpus = set(range(os.cpu_count() or 1))
    load, proxy = ({0}, {1}) if placement == "pinned" else (cpus, cpus)
    # This thread's affinity is inherited by the load generator's threads and session holders.
    os.sched_setaffinity(0, load)
    pin(backend_pids, load)
    for path in paths:
        pin(path.proxy_pids(), proxy)


def run_inside(args: argparse.Namespace, netns: Namespaces, workdir: pathlib.Path) -> dict[str, Any]:
    _raise_file_limit()
    served = ",".join(f"{port}:{role}" for port, role in BACKEND_PORTS.items())
    servers = [
        subprocess.Popen(
            in_netns(netns.backend, sys.executable, __file__, "--serve", served), stdout=subprocess.PIPE
        )
        for _ in range(BACKEND_PROCESSES)
    ]
    paths = [PATH_TYPES[key](netns, workdir, args) for key in args.paths]
    phases = set(args.only.split(",")) if args.only else {"tput", "conn", "rtt", "mem", "reload"}
    seconds, rotations = (0.5, 1) if args.quick else (1.5, 2)
    result: dict[str, Any] = {"facts": facts(args), "placements": {}}
    for key, value in result["facts"].items():
        print(f"{key}: {value}")
    try:
        for server in servers:
            assert server.stdout is not None and server.stdout.readline().strip() == b"READY"
        for path in paths:
            path.start()
        backend_pids = [server.pid for server in servers]
        for index, placement in enumerate(args.placements):
            print(f"\n== placement: {placement}", flush=True)
            report = Report(placement, [path.key for path in paths])
            configure_gateway(
                paths, [*args.gateway_arg, *(args.pinned_gateway_arg if placement == "pinned" else [])]
            )
            place(placement, paths, backend_pids)
            for gateway in (path for path in paths if isinstance(path, Gateway)):
                options = " ".join(gateway.extra_args) or "the bench defaults"
                report.notes.append(f"{gateway.label} agent options: {options}")
            if "tput" in phases:
                throughput_figures(report, paths, seconds, rotations)
            if "conn" in phases:
                connection_figures(report, paths, seconds, rotations)
            if "rtt" in phases:
                round_trip_figure(report, paths, 2000 if args.quick else 5000, rotations)
            # Memory and route changes do not depend on where the CPUs are: measured in the first placement.
            if index == 0 and "mem" in phases:
                print(f"memory per idle session ({args.sessions} sessions per path)", flush=True)
                netns_pids = [os.getpid(), backend_pids[0], *_gateway_netns_pid(paths)]
                report.add(idle_session_memory(paths, args.sessions, netns, netns_pids, backend_pids[0]))
            if index == 0 and "reload" in phases:
                reload_figure(report, paths, args.reloads)
            if index > 0 and phases & {"mem", "reload"}:
                report.notes.append(
                    f"memory per idle session and route changes: see the {args.placements[0]} run"
                )
            if placement == "pinned":
                report.notes.append(
                    "pinned: load generator and backends on CPU 0, proxies on CPU 1; the kernel path runs in "
                    "softirq on the sending CPU and cannot be pinned"
                )
            result["placements"][placement] = report
            print()
            print(report.markdown(), flush=True)
    finally:
        for path in paths:
            path.stop()
        for server in servers:
            server.kill()
        if leftovers := processes_mentioning(str(workdir)):
            print(f"killing {len(leftovers)} leftover processes: {leftovers}", flush=True)
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def configure_gateway(paths: list[Path], extra_args: list[str]) -> None:
    """Restart the gateway if this placement wants other agent options (a pod with CPUs of its own may be
    configured differently from one sharing them)."""
    for path in paths:
        if isinstance(path, Gateway) and path.extra_args != [*extra_args, *path.own_args()]:
            path.stop()
            path.extra_args = [*extra_args, *path.own_args()]
            path.start()


def _gateway_netns_pid(paths: list[Path]) -> list[int]:
    """A process in the gateway namespace, to read its socket-buffer memory (none if only direct runs)."""
    return next(([path.proxy_pids()[0]] for path in paths if path.proxy_pids()), [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="shorter phases, 3,000 sessions, 20 route changes"
    )
    parser.add_argument(
        "--paths", default=",".join(ALL_PATHS),
        help=f"comma-separated subset of {','.join(ALL_PATHS)} (direct is always measured: the reference)",
    )  # fmt: skip
    parser.add_argument("--placement", choices=("unpinned", "pinned", "both"), default="both")
    parser.add_argument("--sessions", type=int, default=None, help="idle sessions per path (default 8000)")
    parser.add_argument("--reloads", type=int, default=None, help="route changes under load (default 100)")
    parser.add_argument(
        "--buffer-size", type=int, default=65536, help="HAProxy tune.bufsize, nginx proxy_buffer_size"
    )
    parser.add_argument("--splice", choices=("auto", "always", "off"), default="always")
    parser.add_argument("--pipe-size", type=int, default=None, help="HAProxy tune.pipesize")
    parser.add_argument("--threads", type=int, default=1, help="HAProxy nbthread and nginx worker_processes")
    parser.add_argument(
        "--gateway-arg", action="append", default=[], metavar="ARG",
        help="more vpcep-gateway options, e.g. --gateway-arg=--busy-polling (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--pinned-gateway-arg", action="append", default=[], metavar="ARG",
        help="vpcep-gateway options for the pinned run only, where the gateway has a CPU of its own",
    )  # fmt: skip
    parser.add_argument(
        "--variant-arg", action="append", default=[], metavar="ARG",
        help="measure a second gateway with these options too (an A/B of a tuning under the same load)",
    )  # fmt: skip
    parser.add_argument("--only", default="", help="comma-separated phases: tput,conn,rtt,mem,reload")
    parser.add_argument("--json", type=pathlib.Path, default=None, help="also write the figures here")
    parser.add_argument("--inside", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--hold", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve({int(port): role for port, role in (item.split(":") for item in args.serve.split(","))})
        return 0
    if args.hold:
        hold(args.hold[0], int(args.hold[1]), int(args.hold[2]))
        return 0
    wanted = [key.strip() for key in args.paths.split(",") if key.strip()]
    if unknown := set(wanted) - set(ALL_PATHS):
        parser.error(f"unknown paths {sorted(unknown)}; choose from {','.join(ALL_PATHS)}")
    args.paths = [key for key in ALL_PATHS if key == "direct" or key in wanted]
    if args.variant_arg:
        args.paths.append("variant")
    args.placements = ["unpinned", "pinned"] if args.placement == "both" else [args.placement]
    if "pinned" in args.placements and (os.cpu_count() or 1) < 2:
        parser.error("--placement pinned needs two CPUs")
    args.sessions = min(args.sessions or (3000 if args.quick else 8000), SESSIONS_PER_PROXY)
    args.reloads = args.reloads or (20 if args.quick else 100)
    if args.inside:
        result = run_inside(args, Namespaces(*args.inside[:3]), pathlib.Path(args.inside[3]))
        if args.json:
            placements = {
                name: [f.as_dict() for f in report.figures] for name, report in result["placements"].items()
            }
            args.json.write_text(json.dumps({"facts": result["facts"], "placements": placements}, indent=2))
        return 0
    if os.geteuid() != 0:
        print("bench/dataplane.py needs root (it creates network namespaces)", file=sys.stderr)
        return 2
    forwarded = list(argv if argv is not None else sys.argv[1:])
    # Made and removed here: on Ctrl-C the inner process may be killed before its own clean-up ends.
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="vpcep-bench-"))
    try:
        with bench_namespaces() as netns:
            # The bench itself is the client: it runs in the client namespace and starts the rest in theirs.
            return subprocess.run(
                in_netns(netns.client, sys.executable, __file__, "--inside", netns.client, netns.gateway,
                         netns.backend, str(workdir), *forwarded)
            ).returncode  # fmt: skip
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
