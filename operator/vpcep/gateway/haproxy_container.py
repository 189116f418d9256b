"""The gateway pod's HAProxy container: HAProxy alone, without API credentials (R47).

``python -m vpcep.gateway.haproxy_container --runtime-dir=/run/vpcep`` waits until the agent (in the
pod's other container, the only one with a ServiceAccount token) has written the first ``haproxy.cfg`` into
the shared emptyDir, then replaces itself with the HAProxy master in master-worker mode, with the master CLI
socket beside the config. From then on the agent drives HAProxy through that socket only (``reload``).

``--soft-stop`` is the container's preStop hook (R52, vpcep.gateway.drain): wait ``--leave-seconds`` while
HAProxy still accepts (the agent has reported the gateway draining and the operator takes it out of every
EndpointSlice meanwhile), then SIGUSR1 to the master (stop listening, let sessions end, R30), then wait for it
to exit, so the kubelet's SIGTERM (a hard stop for HAProxy) comes only after the drain or at the end of the
grace period.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import signal
import sys
import time
from collections.abc import Sequence

from vpcep.gateway.haproxy_process import RuntimeFiles, raise_file_limit


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="vpcep-gateway-haproxy", description=__doc__)
    parser.add_argument(
        "--runtime-dir",
        type=pathlib.Path,
        default=pathlib.Path(env("GATEWAY_RUNTIME_DIR") or "/var/run/vpcep-gateway"),
        help="the directory shared with the agent's container (env GATEWAY_RUNTIME_DIR)",
    )
    parser.add_argument("--haproxy", default=env("HAPROXY_BINARY") or "haproxy", help="HAProxy binary")
    parser.add_argument(
        "--soft-stop",
        action="store_true",
        help="stop the running master gracefully and wait until it is gone (the preStop hook)",
    )
    parser.add_argument(
        "--leave-seconds",
        type=float,
        default=float(env("GATEWAY_DRAIN_LEAVE_SECONDS") or 0),
        help="with --soft-stop: seconds HAProxy keeps accepting before it stops listening (R52; env "
        "GATEWAY_DRAIN_LEAVE_SECONDS)",
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds to wait for the config, or for a soft stop"
    )
    return parser.parse_args(argv)


def wait_for_config(files: RuntimeFiles, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not files.config.exists():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def soft_stop(files: RuntimeFiles, timeout_s: float) -> int:
    try:
        pid = int(files.pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0  # nothing runs
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return 0
        time.sleep(0.5)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    files = RuntimeFiles(args.runtime_dir)
    if args.soft_stop:
        time.sleep(args.leave_seconds)
        return soft_stop(files, args.timeout)
    print(f"waiting for {files.config} from the gateway agent", file=sys.stderr, flush=True)
    if not wait_for_config(files, args.timeout):
        print(f"no {files.config} after {args.timeout:.0f} s", file=sys.stderr, flush=True)
        return 1
    raise_file_limit()
    files.remove_stale()
    command = files.master_worker_command(args.haproxy)
    print("exec " + " ".join(command), file=sys.stderr, flush=True)
    # exec, not a child: the master is what the container runtime watches and signals.
    os.execvp(command[0], command)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
