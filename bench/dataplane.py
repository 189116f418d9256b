#!/usr/bin/env python3
"""Data-plane benchmark: the HAProxy gateway (driven by vpcep-gateway) against a direct connection.

One command, bounded (about two minutes), root, everything inside a network namespace it creates
and deletes (loopback only):

    python3 bench/dataplane.py [--quick] [--json results.json]

Every figure is measured twice in the same run, directly (client -> backend) and through the
gateway (client -> HAProxy -> backend), and reported as a ratio or a difference, so the machine's
speed cancels out. Load generators and backends are Python (epoll, big buffers); the proxy is
HAProxy, configured by vpcep-gateway from a routes directory exactly as in production.
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

# This machine's hard limit on open files per process (no CAP_SYS_RESOURCE to raise it): sessions
# are spread over several holder processes, backend processes and gateways accordingly.
FILE_LIMIT = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
SESSIONS_PER_GATEWAY = max(1000, (FILE_LIMIT - 1000) // 2 - 1000)
BACKEND_PROCESSES = 4
ECHO_PORT, SINK_PORT = 9001, 9002
GATEWAY_ECHO_PORT, GATEWAY_SINK_PORT = 30001, 30002
NODE_MEMORY = 24 * 1024**3

GOALS = {
    "throughput_1": ">= 0.7x",
    "throughput_8": ">= 0.7x",
    "conn_rate": ">= 0.6x",
    "conn_p99": "<= 1.7x",
    "rtt_added_us": "<= 50 us",
    "idle_session_bytes": "<= 11 KB",
    "reload_failures": "0",
}


# ------------------------------------------------------------------------------------ backends
def serve(ports: tuple[int, int]) -> None:
    """Backends in one epoll loop: port 1 echoes, port 2 discards (a sink for throughput).

    Several of these share the ports (SO_REUSEPORT): one process may hold only FILE_LIMIT sockets.
    """
    _raise_file_limit()
    selector = selectors.DefaultSelector()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    for port, role in zip(ports, ("echo", "sink"), strict=True):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", port))
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


def hold(port: int, count: int) -> None:
    """Hold ``count`` idle connections until stdin closes (a process holds at most FILE_LIMIT)."""
    _raise_file_limit()
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
    print(f"HELD {len(held)}", flush=True)
    sys.stdin.read()
    for sock in held:
        close_now(sock)


class Holders:
    """Idle sessions held by helper processes, ``per_process`` at most in each."""

    def __init__(self, ports: list[int], sessions: int, per_process: int = 5000) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        share = sessions // len(ports)
        for port in ports:
            left = share
            while left > 0:
                count = min(per_process, left)
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, __file__, "--hold", str(port), str(count)],
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


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
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


@dataclass
class Figure:
    key: str
    label: str
    direct: float
    gateway: float
    unit: str
    kind: str  # "ratio": gateway/direct; "added": gateway - direct; "value": gateway only
    note: str = ""

    @property
    def result(self) -> float:
        if self.kind == "ratio":
            return self.gateway / self.direct if self.direct else float("nan")
        if self.kind == "added":
            return self.gateway - self.direct
        return self.gateway

    def met(self) -> bool:
        goal = GOALS[self.key]
        number = float(re.findall(r"[\d.]+", goal)[0])
        if self.unit == "KB":
            number *= 1024
        if goal.startswith(">="):
            return self.result >= number
        if goal.startswith("<="):
            return self.result <= number
        return self.result == number


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        print(
            f"  {figure.label}: {self.render_result(figure)} ({'met' if figure.met() else 'MISSED'})",
            flush=True,
        )

    @staticmethod
    def render_result(figure: Figure) -> str:
        if figure.kind == "ratio":
            return f"{figure.result:.2f}x"
        if figure.unit == "KB":
            return f"{figure.result / 1024:.1f} KB"
        return f"{figure.result:.0f} {figure.unit}"

    def markdown(self) -> str:
        lines = [
            "| measure | direct | through gateway | result | goal | met |",
            "|---|---|---|---|---|---|",
        ]
        for f in self.figures:
            direct = "-" if f.kind == "value" else _fmt(f.direct, f.unit)
            lines.append(
                f"| {f.label} | {direct} | {_fmt(f.gateway, f.unit)} | {self.render_result(f)} | "
                f"{GOALS[f.key]} | {'yes' if f.met() else '**no**'} |"
            )
        notes = [f"- {f.label}: {f.note}" for f in self.figures if f.note]
        facts = [f"- {k}: {v}" for k, v in self.facts.items()]
        return "\n".join([*lines, "", *notes, *facts]) + "\n"


def _fmt(value: float, unit: str) -> str:
    if unit == "MB/s":
        return f"{value:,.0f} MB/s"
    if unit == "KB":
        return f"{value / 1024:.1f} KB"
    if unit == "conn/s":
        return f"{value:,.0f} conn/s"
    if unit == "failed":
        return f"{value:.0f} failed"
    return f"{value:,.1f} {unit}"


# ------------------------------------------------------------------------------------ measures
def throughput(port: int, streams: int, seconds: float) -> tuple[float, float]:
    """(bytes, seconds) pushed into the sink over ``streams`` parallel connections."""
    chunk = memoryview(b"\0" * (1 << 20))
    sent = [0] * streams
    start = threading.Barrier(streams + 1)
    deadline: list[float] = []

    def pump(index: int) -> None:
        with connect(port) as sock:
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


def connection_rate(port: int, seconds: float, workers: int = 4) -> tuple[list[float], float]:
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
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
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
        print(f"    {len(errors)} connection errors, e.g. {errors[0]}")
    return latencies, elapsed


def alternating(
    measure: Callable[[int], Any], direct_port: int, gateway_port: int
) -> tuple[list[Any], list[Any]]:
    """Direct, gateway, gateway, direct (ABBA): drift in the machine's load hits both paths alike.

    One discarded round per path first: HAProxy's memory pools and the kernel's caches grow on the
    first burst (the first round through a fresh HAProxy ran at a third of the later ones).
    """
    measure(direct_port)
    measure(gateway_port)
    direct, gateway = [], []
    for port in (direct_port, gateway_port, gateway_port, direct_port):
        (direct if port == direct_port else gateway).append(measure(port))
    return direct, gateway


def round_trip_us(port: int, count: int) -> float:
    """Median microseconds of a 1-byte ping-pong on a kept-alive connection."""
    samples = []
    with connect(port) as sock:
        for _ in range(200):  # warm-up
            sock.sendall(b"p")
            sock.recv(1)
        for _ in range(count):
            began = time.perf_counter()
            sock.sendall(b"p")
            sock.recv(1)
            samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1e6


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


def socket_cache_bytes() -> int:
    table = slab_table()
    return sum(table[name][0] * table[name][1] for name in SOCKET_CACHES if name in table)


def socket_buffer_bytes() -> int:
    """Socket buffer memory of this network namespace (/proc/net/sockstat is per netns)."""
    text = pathlib.Path("/proc/net/sockstat").read_text()
    match = re.search(r"^TCP:.* mem (\d+)", text, re.M)
    return int(match[1]) * 4096 if match else 0


def kernel_bytes() -> int:
    return socket_cache_bytes() + socket_buffer_bytes()


def haproxy_pss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in pathlib.Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
    return total


def settle(seconds: float = 1.5) -> None:
    time.sleep(seconds)


# ------------------------------------------------------------------------------------ gateway
class Gateway:
    def __init__(self, workdir: pathlib.Path, options: argparse.Namespace, index: int = 0) -> None:
        buffer_size = options.buffer_size
        self.options = options
        workdir = workdir / f"gateway-{index}"
        workdir.mkdir()
        self.echo_port = GATEWAY_ECHO_PORT + 10 * index
        self.sink_port = GATEWAY_SINK_PORT + 10 * index
        self.index = index
        self.workdir = workdir
        self.routes = workdir / "routes"
        self.run = workdir / "run"
        self.routes.mkdir()
        self.buffer_size = buffer_size
        self.process: subprocess.Popen[bytes] | None = None

    def route(self, endpoint_id: str, marker: int, listeners: list[tuple[int, int]]) -> dict[str, Any]:
        return {
            "endpointId": endpoint_id,
            "markerId": marker,
            "maxConnections": 100000,
            "listeners": [
                {"gatewayPort": g, "clientPort": g, "backendHost": "127.0.0.1", "serverPort": s}
                for g, s in listeners
            ],
        }

    def put(self, route: dict[str, Any]) -> None:
        target = self.routes / f"{route['endpointId']}.json"
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(route))
        temporary.rename(target)

    def start(self) -> None:
        self.put(
            self.route(f"bench{self.index}", 1, [(self.echo_port, ECHO_PORT), (self.sink_port, SINK_PORT)])
        )
        env = dict(os.environ, PYTHONPATH=str(ROOT / "operator"))
        log = (self.workdir / "agent.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "vpcep.gateway.agent",
                "--routes-dir", str(self.routes), "--runtime-dir", str(self.run),
                "--bind-address", "127.0.0.1", "--buffer-size", str(self.buffer_size),
                "--splice", self.options.splice,
                *(["--pipe-size", str(self.options.pipe_size)] if self.options.pipe_size else []),
                *(["--threads", str(self.options.threads)] if self.options.threads else []),
                "--heartbeat-interval", "0.5", "--debounce", "0.02", "--max-debounce", "0.1",
                "--log-level", "WARNING",
            ],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                connect(self.echo_port, timeout=1).close()
                return
            time.sleep(0.1)
        raise RuntimeError("the gateway did not come up; see " + str(self.workdir / "agent.log"))

    def applied_version(self) -> int:
        try:
            return int(json.loads((self.run / "status.json").read_text())["appliedResourceVersion"])
        except (OSError, ValueError, KeyError):
            return -1

    def pids(self) -> list[int]:
        marker = str(self.run / "haproxy.cfg").encode()
        found = []
        for entry in pathlib.Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    cmdline = (entry / "cmdline").read_bytes()
                    if cmdline.split(b"\0")[0].endswith(b"haproxy") and marker in cmdline:
                        found.append(int(entry.name))
        return found

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

    def current_connections(self) -> int:
        info = unix_command(str(self.run / "haproxy.sock"), "show info")
        return int(re.search(r"^CurrConns: (\d+)", info, re.M)[1])  # type: ignore[index]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)


# ------------------------------------------------------------------------------------ phases
def change_served(port: int, added: bool, within: float = 2.0) -> str | None:
    """None once a route change shows on the wire: an added listener echoes, a removed one refuses
    connections. Else why not. Polled briefly: the status is written right after the reload, and the old
    worker lets go of a removed listener while it drains."""
    deadline = time.monotonic() + within
    problem = "not checked"
    while True:
        try:
            with connect(port, timeout=1) as sock:
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


def measure_reloads(gateway: Gateway, reloads: int) -> tuple[int, int, int, int]:
    """(failed, completed exchanges, reloads done, old workers ended by SIGSEGV) across ``reloads`` route
    changes under load.

    Failed counts lost or refused client connections and route changes not served (not applied, or not
    visible on the wire). The number of reloads is reported but not judged: the agent's debounce may merge
    two changes into one reload by design.
    """
    stop = threading.Event()
    failures: list[str] = []
    completed = [0]

    def short_connections() -> None:
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", gateway.echo_port), timeout=5) as sock:
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
            with connect(gateway.echo_port) as sock:
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
    before = gateway.show_proc()
    for thread in threads:
        thread.start()
    for n in range(reloads):
        version = gateway.applied_version()
        added = n % 2 == 0
        port = 31000 + n if added else 31000 + n - 1
        if added:
            gateway.put(gateway.route(f"churn-{n % 2}", 100 + n, [(port, ECHO_PORT)]))
        else:
            (gateway.routes / f"churn-{(n - 1) % 2}.json").unlink()
        deadline = time.monotonic() + 10
        while gateway.applied_version() <= version and time.monotonic() < deadline:
            time.sleep(0.01)
        if gateway.applied_version() <= version:
            failures.append(f"route change {n} not applied within 10 s")
        elif problem := change_served(port, added):
            failures.append(f"route change {n} not served: {problem}")
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    after = gateway.show_proc()
    if after.master_pid != before.master_pid:
        failures.append("the master restarted")
    done = after.reloads - before.reloads
    log = (gateway.workdir / "agent.log").read_text(errors="replace")
    for failure in failures[:5]:
        print(f"    failure: {failure}")
    return len(failures), completed[0], done, len(re.findall(r"exited with code 139", log))


def run_inside(args: argparse.Namespace) -> Report:
    _raise_file_limit()
    report = Report()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="vpcep-bench-"))
    servers = [
        subprocess.Popen(
            [sys.executable, __file__, "--serve", str(ECHO_PORT), str(SINK_PORT)], stdout=subprocess.PIPE
        )
        for _ in range(BACKEND_PROCESSES)
    ]
    for server in servers:
        assert server.stdout is not None and server.stdout.readline().strip() == b"READY"
    gateway_count = -(-args.sessions // SESSIONS_PER_GATEWAY)
    gateways = [Gateway(workdir, args, index) for index in range(gateway_count)]
    gateway = gateways[0]
    seconds = 2.0 if args.quick else 6.0  # per path, in four alternating rounds
    try:
        for each in gateways:
            each.start()
        report.facts["HAProxy"] = subprocess.run(
            ["haproxy", "-v"], capture_output=True, text=True, check=False
        ).stdout.splitlines()[0]
        report.facts["CPUs"] = os.cpu_count()
        report.facts["tune.bufsize"] = args.buffer_size
        report.facts["splice"] = args.splice
        report.facts["nbthread"] = args.threads or "one per CPU"
        report.facts["sessions held per HAProxy process at most"] = SESSIONS_PER_GATEWAY
        report.facts["load average at start"] = pathlib.Path("/proc/loadavg").read_text().split()[0]
        phases = set(args.only.split(",")) if args.only else {"tput", "conn", "rtt", "mem", "reload"}
        if "tput" in phases:
            throughput_phases(report, gateway, seconds)
        if "conn" in phases:
            connection_phases(report, gateway, seconds)
        if "rtt" in phases:
            print("kept-alive round trip", flush=True)
            count = 2000 if args.quick else 10000
            report.add(Figure("rtt_added_us", "kept-alive round-trip, added", round_trip_us(ECHO_PORT, count),
                              round_trip_us(gateway.echo_port, count), "us", "added"))  # fmt: skip
        if "mem" in phases:
            print(
                f"memory per idle session ({args.sessions} sessions over {gateway_count} HAProxy)", flush=True
            )
            report.add(idle_session_memory(gateways, args.sessions))
        if "reload" in phases:
            print(f"{args.reloads} reloads under load", flush=True)
            failed, exchanges, done, segfaults = measure_reloads(gateway, args.reloads)
            note = (
                f"{exchanges} exchanges on 3 connecting and 16 long-lived clients; {done} reloads for "
                f"{args.reloads} route changes (the agent's debounce may merge changes); {segfaults} "
                "old workers ended by SIGSEGV after draining (HAProxy 2.6), harmless"
            )
            label = f"failed connections or unserved changes across {args.reloads} route changes"
            report.add(Figure("reload_failures", label, 0, failed, "failed", "value", note=note))
    finally:
        for each in gateways:
            each.stop()
        for server in servers:
            server.kill()
    return report


def throughput_phases(report: Report, gateway: Gateway, seconds: float) -> None:
    for streams, key, label in ((1, "throughput_1", "single-stream"), (8, "throughput_8", "8-stream")):
        print(f"{label} throughput", flush=True)
        direct, proxied = alternating(lambda port, n=streams: throughput(port, n, seconds / 4), SINK_PORT,
                                      gateway.sink_port)  # fmt: skip
        report.add(
            Figure(key, f"{label} throughput", _rate(direct) / 1e6, _rate(proxied) / 1e6, "MB/s", "ratio")
        )


def connection_phases(report: Report, gateway: Gateway, seconds: float) -> None:
    print("new connections", flush=True)
    direct, proxied = alternating(
        lambda port: connection_rate(port, seconds / 4), ECHO_PORT, gateway.echo_port
    )

    def p99_ms(rounds: list[tuple[list[float], float]]) -> float:
        return percentile([latency for latencies, _ in rounds for latency in latencies], 0.99) * 1000

    counted_direct = [(len(latencies), elapsed) for latencies, elapsed in direct]
    counted_proxied = [(len(latencies), elapsed) for latencies, elapsed in proxied]
    rates = _rate(counted_direct), _rate(counted_proxied)
    report.add(Figure("conn_rate", "new-connection rate", *rates, "conn/s", "ratio"))
    report.add(
        Figure("conn_p99", "new-connection p99 latency", p99_ms(direct), p99_ms(proxied), "ms", "ratio")
    )


def _rate(rounds: list[tuple[float, float]]) -> float:
    return sum(amount for amount, _ in rounds) / sum(elapsed for _, elapsed in rounds)


def idle_session_memory(gateways: list[Gateway], sessions: int) -> Figure:
    """Proxy + kernel bytes per idle proxied session, beyond what a direct session costs.

    Kernel: growth of the per-socket slab caches and socket buffers with the sessions held through
    the gateways, minus the same with as many direct sessions (the difference is HAProxy's two
    sockets per session), plus one file and one dentry per extra socket at their slab object size.
    Proxy: growth of the HAProxy processes' proportional set size.
    """
    pids = [pid for gateway in gateways for pid in gateway.pids()]
    kernel_0 = kernel_bytes()
    direct = Holders([ECHO_PORT], sessions)
    settle()
    kernel_direct = kernel_bytes() - kernel_0
    direct.release()
    settle()
    kernel_1 = kernel_bytes()
    proxy_0 = haproxy_pss(pids)
    proxied = Holders([gateway.echo_port for gateway in gateways], sessions)
    deadline = time.monotonic() + 30
    while sum(g.current_connections() for g in gateways) < proxied.count and time.monotonic() < deadline:
        time.sleep(0.2)
    settle()
    live = sum(gateway.current_connections() for gateway in gateways)
    kernel_gateway = kernel_bytes() - kernel_1
    proxy_growth = haproxy_pss(pids) - proxy_0
    proxied.release()
    table = slab_table()
    shared_per_socket = sum(table[name][1] for name in PER_SOCKET_SHARED if name in table)
    kernel_per_session = (kernel_gateway - kernel_direct) / live + 2 * shared_per_socket
    proxy_per_session = proxy_growth / live
    per_session = kernel_per_session + proxy_per_session
    note = (
        f"{live} sessions open in {len(gateways)} HAProxy processes (the per-process file limit here is "
        f"{FILE_LIMIT}); {proxy_per_session / 1024:.1f} KB in HAProxy + {kernel_per_session / 1024:.1f} KB "
        f"kernel for its two sockets; a 24 GiB node holds ~{NODE_MEMORY / per_session / 1e6:.1f} M "
        "idle sessions"
    )
    label = "memory per idle session (proxy + kernel)"
    return Figure("idle_session_bytes", label, 0, per_session, "KB", "value", note=note)


# ------------------------------------------------------------------------------------ netns
@contextlib.contextmanager
def bench_netns() -> Iterator[str]:
    name = f"vpcep-bench-{os.getpid()}-{secrets.token_hex(2)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for command in (
            ["ip", "link", "set", "lo", "up"],
            # Gateway ports (30000-31999 here) stay out of the ephemeral range, as they must in a pod.
            ["sysctl", "-qw", "net.ipv4.ip_local_port_range=32768 65000"],
            ["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"],
            ["sysctl", "-qw", "net.core.somaxconn=65535"],
            # Closed connections' TIME_WAIT entries would otherwise pile up across phases and slow
            # connect() for whichever path is measured later.
            ["sysctl", "-qw", "net.ipv4.tcp_max_tw_buckets=1024"],
        ):
            subprocess.run(["ip", "netns", "exec", name, *command], check=True)
        yield name
    finally:
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)
        subprocess.run(["ip", "netns", "del", name], check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="shorter phases, 5k sessions, 20 reloads")
    parser.add_argument("--sessions", type=int, default=None, help="idle sessions to hold (default 20000)")
    parser.add_argument("--reloads", type=int, default=None, help="reloads under load (default 100)")
    parser.add_argument("--buffer-size", type=int, default=65536, help="HAProxy tune.bufsize")
    parser.add_argument("--splice", choices=("auto", "always", "off"), default="always")
    parser.add_argument("--pipe-size", type=int, default=None, help="HAProxy tune.pipesize")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="HAProxy nbthread (default 1: the two cores are shared by load generator, backend and proxy)",
    )  # fmt: skip
    parser.add_argument("--only", default="", help="comma-separated phases: tput,conn,rtt,mem,reload")
    parser.add_argument("--json", type=pathlib.Path, default=None, help="also write the figures here")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hold", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve((args.serve[0], args.serve[1]))
        return 0
    if args.hold:
        hold(args.hold[0], args.hold[1])
        return 0
    args.sessions = args.sessions or (5000 if args.quick else 20000)
    args.reloads = args.reloads or (20 if args.quick else 100)
    if not args.inside:
        if os.geteuid() != 0:
            print("bench/dataplane.py needs root (it creates a network namespace)", file=sys.stderr)
            return 2
        with bench_netns() as name:
            forwarded = [a for a in (argv if argv is not None else sys.argv[1:])]
            return subprocess.run(
                ["ip", "netns", "exec", name, sys.executable, __file__, "--inside", *forwarded]
            ).returncode
    report = run_inside(args)
    print()
    print(report.markdown())
    if args.json:
        rows = [f.__dict__ | {"result": f.result, "met": f.met()} for f in report.figures]
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
