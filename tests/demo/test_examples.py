"""examples/ run against `hack/dev`: every command an example's comments show, and the output they promise.

The convention (examples/README.md): in an example file's leading comments, `#   $ COMMAND` is a command a
user types, in order (provider side first), and the `#   ` lines right after it are what it prints on
`hack/dev`. IDs, IP addresses, ages and column padding differ from run to run and are compared as such;
everything else must match. Statuses settle asynchronously, so a command is repeated until its output matches
(or 45 s pass).
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.netns]

REPO = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (REPO / "examples").iterdir() if p.is_dir())
SETTLE_SECONDS = 45
# the order a user follows: the provider publishes, the consumer connects
FILE_ORDER = ("provider.yaml", "consumer.yaml", "endpoint.yaml")


@dataclass(frozen=True)
class Step:
    file: str
    command: str
    expected: list[str]


def steps_of(example: pathlib.Path) -> list[Step]:
    steps: list[Step] = []
    for path in sorted(example.glob("*.yaml"), key=lambda p: FILE_ORDER.index(p.name)):
        current: Step | None = None
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                break  # the leading comment block only
            if line.startswith("#   $ "):
                current = Step(path.name, line.removeprefix("#   $ "), [])
                steps.append(current)
            elif line.startswith("#   ") and current is not None:
                current.expected.append(line.removeprefix("#   "))
            else:  # prose or an empty comment line ends a command's output
                current = None
    return steps


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
IPV4 = re.compile(r"\b\d{1,3}(\.\d{1,3}){3}\b")
AGE = re.compile(r"\b\d+[smhd](\d+[smh])?\b")


def normalised(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        line = AGE.sub("<age>", IPV4.sub("<ip>", UUID.sub("<uuid>", line)))
        line = " ".join(line.split())
        if line:
            out.append(line)
    return out


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    if os.geteuid() != 0:
        pytest.fail("hack/dev needs root (the gateway's network namespace)", pytrace=False)
    env = {
        **os.environ,
        "VPCEP_DEV_DIR": str(tmp_path_factory.mktemp("dev") / "state"),
        "VPCEP_DEV_NET": str(os.getpid() % 250 + 1),
    }
    up = subprocess.run(
        [str(REPO / "hack" / "dev"), "up"], env=env, capture_output=True, text=True, timeout=900
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "Stop: hack/dev down" in up.stdout
        export = subprocess.run(
            [str(REPO / "hack" / "dev"), "env"], env=env, capture_output=True, text=True, check=True
        ).stdout
        kubeconfig, path = re.fullmatch(r"export KUBECONFIG=(\S+) PATH=(\S+):\$PATH\n", export).groups()  # type: ignore[union-attr]
        yield {**env, "KUBECONFIG": kubeconfig, "PATH": f"{path}:{env['PATH']}"}
    finally:
        subprocess.run([str(REPO / "hack" / "dev"), "down"], env=env, capture_output=True, timeout=120)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_prints_what_its_comments_say(dev: dict[str, str], example: pathlib.Path) -> None:
    steps = steps_of(example)
    assert steps, f"{example.name}: no '#   $ command' lines"
    assignments: list[str] = []  # SERVICE_NAME=$(...) lines, replayed before each later command
    for step in steps:
        script = "\n".join(["set -euo pipefail", *assignments, step.command])
        if re.match(r"^[A-Z_]+=\$\(", step.command):
            assignments.append(step.command)
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            done = subprocess.run(
                ["bash", "-c", script], cwd=REPO, env=dev, capture_output=True, text=True, timeout=60
            )
            printed = (done.stdout + done.stderr).splitlines()
            expected_failure = any(
                line.startswith(("Error from server", "not found:")) for line in step.expected
            )
            ok = (done.returncode == 0) != expected_failure
            if ok and normalised(printed) == normalised(step.expected):
                break
            if time.monotonic() > deadline:
                assert normalised(printed) == normalised(step.expected), (
                    f"{example.name}/{step.file}: $ {step.command}\n(exit {done.returncode})"
                )
                assert ok, f"{example.name}/{step.file}: $ {step.command} exited {done.returncode}"
            time.sleep(1)
