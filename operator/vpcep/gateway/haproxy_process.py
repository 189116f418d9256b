"""The HAProxy master process: start it, adopt it after an agent restart, reload it, ask it things.

HAProxy runs in master-worker mode (``-W``) with a master CLI socket (``-S``). A reload is the
master CLI ``reload`` command: the master re-executes itself with the same arguments and reads
the config file again; the new worker takes the listening sockets over from the old one through
the stats socket's ``expose-fd listeners``, so no connection is refused, and the old worker
keeps serving its open sessions until they end (R30).

Two ways to run it (R47):
- in-process (the demo, the benchmarks, most data-plane tests): the agent starts the master as its child;
- external (the chart): HAProxy runs in a container of its own (``vpcep.gateway.haproxy_container``), without
  API credentials, sharing only ``runtime_dir`` (an emptyDir) with the agent's container. The agent never
  starts or signals it: it writes ``haproxy.cfg`` (the container's HAProxy starts once the file exists) and
  drives it through the master CLI socket alone (``reload``, ``show proc``, ``@!<pid>``).

Known HAProxy 2.6 behaviour: an old worker sometimes exits with SIGSEGV after its last session
has closed. The master logs it and stays up; the current worker is untouched; no connection is
lost (tests/dataplane/test_reload.py counts). Debian 13's HAProxy 3.0 does not show it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import re
import resource
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

PROC_MASTER_LINE = re.compile(r"^(\d+)\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]")
PROC_WORKER_LINE = re.compile(r"^(\d+)\s+worker\s+(\d+)\s")


class HaproxyError(RuntimeError):
    pass


@dataclass(frozen=True)
class ProcessTable:
    """The master's ``show proc``: how often it reloaded, how many reloads failed, which workers run."""

    master_pid: int
    reloads: int
    failed_reloads: int
    current_worker: int | None
    old_workers: tuple[int, ...]


def parse_show_proc(text: str) -> ProcessTable:
    master: tuple[int, int, int] | None = None
    workers: list[tuple[int, int]] = []
    for line in text.splitlines():
        if match := PROC_MASTER_LINE.match(line):
            master = (int(match[1]), int(match[2]), int(match[3]))
        elif match := PROC_WORKER_LINE.match(line):
            workers.append((int(match[1]), int(match[2])))
    if master is None:
        raise HaproxyError(f"unexpected 'show proc' answer: {text[:200]!r}")
    # A worker's "reloads" column counts the reloads it survived: the current one has 0.
    current = [pid for pid, survived in workers if survived == 0]
    old = tuple(pid for pid, survived in workers if survived > 0)
    return ProcessTable(master[0], master[1], master[2], current[0] if current else None, old)


def unix_command(path: str, command: str, timeout_s: float = 5.0) -> str:
    """Send one command to an HAProxy CLI socket and return the whole answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(path)
        sock.sendall(command.encode() + b"\n")
        sock.shutdown(socket.SHUT_WR)  # one command per connection: the CLI answers, then closes
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


@dataclass(frozen=True)
class RuntimeFiles:
    """Where the agent and HAProxy meet: the config, the two CLI sockets, the master's pid file."""

    runtime_dir: pathlib.Path

    @property
    def config(self) -> pathlib.Path:
        return self.runtime_dir / "haproxy.cfg"

    @property
    def master_socket(self) -> pathlib.Path:
        return self.runtime_dir / "master.sock"

    @property
    def stats_socket(self) -> pathlib.Path:
        return self.runtime_dir / "haproxy.sock"

    @property
    def pid_file(self) -> pathlib.Path:
        return self.runtime_dir / "haproxy.pid"

    def master_worker_command(self, binary: str) -> list[str]:
        """The master in master-worker mode with its CLI socket; both run modes start exactly this."""
        return [
            binary,
            "-W",
            "-S", f"{self.master_socket},mode,600",
            "-f", str(self.config),
            "-p", str(self.pid_file),
        ]  # fmt: skip

    def remove_stale(self) -> None:
        """Sockets and pid file of a master that is gone (the emptyDir outlives a container restart)."""
        for stale in (self.master_socket, self.stats_socket, self.pid_file):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


def raise_file_limit() -> None:
    """HAProxy inherits the limit; each session takes two descriptors: give it all we may."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class HaproxyMaster:
    """One HAProxy master process with its runtime files under ``runtime_dir``.

    ``external``: the master runs in another container (see the module's docstring); it is known only by
    what its master CLI socket answers, and ``start``/``stop`` leave it alone.
    """

    # How long an external master may take to appear once its config file exists (container start).
    EXTERNAL_START_TIMEOUT_S = 30.0

    def __init__(self, binary: str, runtime_dir: pathlib.Path, external: bool = False) -> None:
        self.binary = binary
        self.files = RuntimeFiles(runtime_dir)
        self.runtime_dir = runtime_dir
        self.config_path = self.files.config
        self.master_socket = self.files.master_socket
        self.stats_socket = self.files.stats_socket
        self.pid_file = self.files.pid_file
        self.external = external
        self._child: subprocess.Popen[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def adopt(self) -> bool:
        """Take over a master left running by a previous agent (it keeps serving meanwhile)."""
        if self.external:
            adopted = self._master_answers()
            if adopted:
                log.info("the HAProxy container's master answers: adopting it")
            return adopted
        pid = self._pid_from_file()
        if pid is None or not _alive(pid):
            return False
        try:
            table = self.process_table(patience_s=0)
        except (OSError, HaproxyError):
            return False
        if table.master_pid != pid:
            return False
        log.info("adopted running HAProxy master %d", pid)
        return True

    def start(self) -> None:
        """Start a fresh master; returns once its worker answers on the stats socket."""
        if self.external:
            self._await_external()
            return
        self.files.remove_stale()
        command = self.files.master_worker_command(self.binary)
        log.info("starting %s", " ".join(command))
        # Own session: signals aimed at the agent's process group (Ctrl-C) do not hit HAProxy,
        # the agent decides how it stops.
        self._child = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._child.poll() is not None:
                raise HaproxyError(f"haproxy exited with code {self._child.returncode} at start")
            if self._worker_ready():
                return
            time.sleep(0.05)
        raise HaproxyError("haproxy did not become ready within 10 s")

    def _await_external(self) -> None:
        """The config file exists now: the HAProxy container starts its master on it (or already runs)."""
        deadline = time.monotonic() + self.EXTERNAL_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._master_answers() and self._worker_ready():
                log.info("the HAProxy container serves")
                return
            time.sleep(0.1)
        raise HaproxyError(
            f"the HAProxy container did not answer on {self.master_socket} within "
            f"{self.EXTERNAL_START_TIMEOUT_S:.0f} s (see its log)"
        )

    def _master_answers(self) -> bool:
        try:
            self.process_table(patience_s=0)
        except (OSError, HaproxyError):
            return False
        return True

    def running(self) -> bool:
        if self.external:
            return self._master_answers()
        if self._child is not None and self._child.poll() is not None:
            return False
        pid = self._pid_from_file()
        return pid is not None and _alive(pid)

    def reload(self, timeout_s: float = 10.0) -> ProcessTable:
        """Reload the configuration file; raises HaproxyError if the master refused it.

        The old worker stays until its sessions end; the returned table shows the new worker.
        """
        before = self.process_table()
        try:
            unix_command(str(self.master_socket), "reload", timeout_s=timeout_s)
        except OSError as error:  # the master closes the CLI while it re-executes itself
            log.debug("master CLI closed during reload: %s", error)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            time.sleep(0.02)
            try:
                after = self.process_table(patience_s=0)
            except (OSError, HaproxyError):
                continue  # re-executing; the socket comes back
            if after.failed_reloads > before.failed_reloads:
                raise HaproxyError("HAProxy refused the new configuration; the previous one keeps serving")
            new_worker = after.current_worker not in (None, before.current_worker)
            if after.reloads > before.reloads and new_worker and self._worker_ready():
                return after
        raise HaproxyError(f"reload did not complete within {timeout_s} s")

    def soft_stop(self) -> None:
        """Stop listening and let open sessions end (SIGUSR1 to the master, which exits after its last
        worker); returns at once. External: the HAProxy container's preStop hook does it (R47)."""
        if self.external:
            return
        pid = self._pid_from_file()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR1)

    def stop(self, graceful: bool = True, timeout_s: float = 10.0) -> None:
        if self.external:
            # Its own container stops it (a preStop soft stop, then the kubelet's signal); the agent's
            # going away must not cut sessions.
            return
        pid = self._pid_from_file()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            # SIGUSR1: stop listening, let sessions finish; SIGTERM: stop now.
            os.kill(pid, signal.SIGUSR1 if graceful else signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            if self._child is not None:
                self._child.poll()
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self._child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._child.wait(timeout=2)

    # -- queries ---------------------------------------------------------------------------
    def process_table(self, patience_s: float = 2.0) -> ProcessTable:
        """The master's process table; waits ``patience_s`` for a master that is re-executing itself."""
        deadline = time.monotonic() + patience_s
        while True:
            try:
                return parse_show_proc(unix_command(str(self.master_socket), "show proc"))
            except (OSError, HaproxyError):
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def worker_command(self, command: str) -> str:
        return unix_command(str(self.stats_socket), command)

    def master_command(self, command: str) -> str:
        """A master CLI request; ``@!<pid> <command>`` reaches any worker, old ones included."""
        return unix_command(str(self.master_socket), command)

    def _worker_ready(self) -> bool:
        try:
            return "Name: HAProxy" in self.worker_command("show info")
        except OSError:
            return False

    def _pid_from_file(self) -> int | None:
        try:
            return int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    return True
