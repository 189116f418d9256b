"""`hack/demo`, the README's first command, run for real: testbed, operator, gateway agent, HAProxy in netns.

What a user would notice: the demo ends with exit 0, the same-account Endpoint is Accepted (R12), the bytes
sent from the consumer namespace to nodeIP:clientPort come back from the provider's backend (R18), the backend
is not reachable directly (R19), and the demo leaves nothing behind -- after a normal run, after Ctrl-C, and
after being killed (the next run cleans up).
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import time

import pytest

from dataplane.netns import require_netns

pytestmark = [pytest.mark.cluster, pytest.mark.netns]

REPO = pathlib.Path(__file__).resolve().parents[2]
DEMO = REPO / "hack" / "demo"
RUN_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="module", autouse=True)
def _requirements() -> None:
    require_netns("DEMO TESTS (hack/demo creates network namespaces)")
    # Build (or find cached) the control plane first, so the runs below are timed without a cold build.
    subprocess.run([str(REPO / "hack" / "testbed"), "build"], check=True, capture_output=True, timeout=900)


def leftovers(pid: int) -> list[str]:
    """What a demo run with this pid would leave behind: netns, work directory, processes."""
    found = []
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [
        name
        for name in (line.split()[0] for line in namespaces.splitlines() if line)
        if name.endswith(f"-{pid}")
    ]
    work = pathlib.Path("/tmp") / f"vpcep-demo.{pid}"
    if work.exists():
        found.append(str(work))
    marker = f"vpcep-demo.{pid}/".encode()
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes():
                    found.append(f"process {entry.name}")
            except OSError:
                pass
    return found


def run_demo() -> tuple[int, str, int, float]:
    started = time.monotonic()
    process = subprocess.Popen(
        [str(DEMO)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=30)
        pytest.fail(f"hack/demo took over {RUN_TIMEOUT_SECONDS} s:\n{output}")
    return process.returncode, output, process.pid, time.monotonic() - started


def assert_demo_passed(returncode: int, output: str) -> None:
    assert returncode == 0, output
    assert re.search(r"endpoint\.vpcep\.io/orders\s+\S+\s+Accepted\s", output), output
    sent = re.search(r"sent: +(.+)", output)
    received = re.search(r"received: +(.+)", output)
    assert sent and received, output
    assert received.group(1) == f"provider backend echoes: {sent.group(1)}", output
    direct = re.search(r"direct connection: (.+)", output)
    assert direct, output
    assert re.search(r"timed out|refused|unreachable", direct.group(1), re.IGNORECASE), output
    assert "standing in for kubelet" in output and "Standing in for kube-proxy" in output, output


def test_demo_passes_twice_and_leaves_nothing_behind() -> None:
    for _ in range(2):  # the second run finds the machine as the first left it
        returncode, output, pid, seconds = run_demo()
        assert_demo_passed(returncode, output)
        assert leftovers(pid) == [], output
        print(f"hack/demo passed in {seconds:.1f} s")


def test_ctrl_c_cleans_up() -> None:
    process = subprocess.Popen(
        [str(DEMO)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:  # interrupt once the operator, agent and HAProxy are all running
        lines.append(line)
        if "gateway status ConfigMap" in line:
            break
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    output = "".join(lines) + process.communicate(timeout=60)[0]
    assert process.returncode != 0, output
    assert "Tearing down" in output, output
    assert leftovers(process.pid) == [], output


def test_run_after_a_killed_run_removes_its_leftovers() -> None:
    process = subprocess.Popen(
        [str(DEMO)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "gateway status ConfigMap" in line:
            break
    process.kill()  # SIGKILL to the script alone: no trap runs, its children stay
    process.communicate(timeout=30)
    assert leftovers(process.pid), "a killed run should have left something for the next run to clean"

    returncode, output, pid, _ = run_demo()
    assert_demo_passed(returncode, output)
    assert f"removing leftovers of an earlier run (pid {process.pid})" in output, output
    assert leftovers(process.pid) == [], output
    assert leftovers(pid) == [], output
