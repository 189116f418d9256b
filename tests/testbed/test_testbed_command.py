"""hack/testbed as engineers use it next to each other on one machine: instances are independent, a taken
port is named, a crash is reported, and `up` twice is harmless."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTBED = Path(__file__).resolve().parents[2] / "hack" / "testbed"

pytestmark = pytest.mark.cluster  # needs the build


def _testbed(instance: Path, *args: str) -> subprocess.CompletedProcess[str]:
    keep = {"VPCEP_TESTBED_CACHE", "VPCEP_TESTBED_MIRROR"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPCEP_TESTBED_") or k in keep}
    env["VPCEP_TESTBED_DIR"] = str(instance)
    return subprocess.run([str(TESTBED), *args], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[list[Path]]:
    made: list[Path] = []
    yield made
    for instance in made:
        _testbed(instance, "down", "--purge")


def _new(instances: list[Path], tmp_path: Path, name: str) -> Path:
    instance = tmp_path / name
    instances.append(instance)
    return instance


def _api_port(instance: Path) -> int:
    state = dict(line.split("=", 1) for line in (instance / "state").read_text().splitlines())
    return int(state["api_port"])


def test_up_twice_is_harmless_and_down_stops_only_its_own(instances: list[Path], tmp_path: Path) -> None:
    a, b = _new(instances, tmp_path, "a"), _new(instances, tmp_path, "b")
    assert _testbed(a, "up").returncode == 0
    port = _api_port(a)
    again = _testbed(a, "up")
    assert again.returncode == 0 and "already up" in again.stderr
    assert _api_port(a) == port
    assert _testbed(b, "up").returncode == 0
    assert _api_port(b) != port

    assert _testbed(a, "down").returncode == 0
    assert _testbed(a, "status").returncode == 3
    status_b = _testbed(b, "status")
    assert status_b.returncode == 0 and "api: ready" in status_b.stdout
    assert _testbed(b, "env").stdout.strip() == f"export KUBECONFIG={b}/kubeconfig"


def test_a_port_in_use_is_named(instances: list[Path], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _testbed(_new(instances, tmp_path, "c"), "up", "--api-port", str(port))
    assert proc.returncode != 0
    assert f"port {port} on 127.0.0.1 is in use" in proc.stderr


def test_status_reports_a_crashed_process(instances: list[Path], tmp_path: Path) -> None:
    d = _new(instances, tmp_path, "d")
    assert _testbed(d, "up").returncode == 0
    os.kill(int((d / "apiserver.pid").read_text()), signal.SIGKILL)
    time.sleep(0.3)  # the kernel reaps it
    status = _testbed(d, "status")
    assert status.returncode == 1
    assert "apiserver: CRASHED" in status.stdout
    assert "etcd: running" in status.stdout
    # `up` recovers the instance.
    assert _testbed(d, "up").returncode == 0
    assert _testbed(d, "status").returncode == 0
