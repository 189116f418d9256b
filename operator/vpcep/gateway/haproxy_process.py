"""The HAProxy master process: start it, adopt it after an agent restart, reload it, ask it things.

HAProxy runs in master-worker mode (``-W``) with a master CLI socket (``-S``). A reload is the
master CLI ``reload`` command: the master re-executes itself with the same arguments and reads
the config file again; the new worker takes the listening sockets over from the old one through
the stats socket's ``expose-fd listeners``, so no connection is refused, and the old worker
keeps serving its open sessions until they end (R30).

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


class HaproxyMaster:
    """One HAProxy master process with its runtime files under ``runtime_dir``."""

    def __init__(self, binary: str, runtime_dir: pathlib.Path, config_path: pathlib.Path) -> None:
        self.binary = binary
        self.runtime_dir = runtime_dir
        self.config_path = config_path
        self.master_socket = runtime_dir / "master.sock"
        self.stats_socket = runtime_dir / "haproxy.sock"
        self.pid_file = runtime_dir / "haproxy.pid"
        self._child: subprocess.Popen[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def adopt(self) -> bool:
        """Take over a master left running by a previous agent (it keeps serving meanwhile)."""
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
        for stale in (self.master_socket, self.stats_socket, self.pid_file):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        command = [
            self.binary,
            "-W",
            "-S", f"{self.master_socket},mode,600",
            "-f", str(self.config_path),
            "-p", str(self.pid_file),
        ]  # fmt: skip
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

    def running(self) -> bool:
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

    def stop(self, graceful: bool = True, timeout_s: float = 10.0) -> None:
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
