"""`hack/fresh-machine --proven`: CI skips the long bare-Debian run only when a recorded proof covers HEAD.

What a maintainer would notice (issue 19, docs/testing.md): a proof line recorded for Debian 12 lets CI
skip the run; a change to what a bare machine exercises (hack/'s set-up, demo, test or testbed scripts,
pyproject.toml's dependencies, the README's two commands) makes CI run it again; a change to prose, tests
or product code does not; a proof for Debian 13 says nothing about Debian 12. Runs the real script on a
scratch clone; no root needed.
"""

from __future__ import annotations

import pathlib
import re
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[2]


def git(clone: pathlib.Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(clone), "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def proven(clone: pathlib.Path, version: str = "12") -> tuple[bool, str]:
    command = [str(clone / "hack" / "fresh-machine"), version, "--proven"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode == 0, result.stderr


def commit_change(clone: pathlib.Path, path: str, line: str) -> None:
    target = clone / path
    target.write_text(target.read_text() + f"\n{line}\n")
    git(clone, "commit", "-qam", f"change {path}")


def record(clone: pathlib.Path, line: str) -> None:
    (clone / ".ci" / "fresh-machine-proven").write_text(f"# header\n{line}\n")
    git(clone, "add", ".ci/fresh-machine-proven")
    git(clone, "commit", "-qm", "proof")


def test_a_recorded_proof_skips_the_run_until_what_it_proved_changes(tmp_path: pathlib.Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=60)
    (clone / ".ci" / "fresh-machine-proven").unlink(missing_ok=True)

    ok, message = proven(clone)
    assert not ok and "not proven" in message
    inputs = re.search(r"\(([0-9a-f]{16})\)", message)
    assert inputs, message
    record(clone, f"13 {inputs[1]} 0123456789ab 2026-12-04 1800s")
    assert not proven(clone, "12")[0], "a Debian 13 proof must not stand for Debian 12"
    assert proven(clone, "13")[0]

    record(clone, f"12 {inputs[1]} 0123456789ab 2026-12-04 1800s")
    assert proven(clone)[0]
    for path in ("docs/testing.md", "tests/conftest.py", "operator/vpcep/__init__.py", "hack/kind-up.sh"):
        commit_change(clone, path, "# a change a bare machine does not exercise")
        assert proven(clone)[0], f"a change to {path} must not require a new bare-Debian run"

    for path in ("hack/setup", "pyproject.toml", "hack/testbed.d/sid-packages.lock"):
        before = git(clone, "rev-parse", "HEAD").strip()
        commit_change(clone, path, "# a change to what a bare machine installs")
        assert not proven(clone)[0], f"a change to {path} must require a new bare-Debian run"
        git(clone, "reset", "-q", "--hard", before)
        assert proven(clone)[0]

    readme = clone / "README.md"
    readme.write_text(readme.read_text().replace("hack/test ", "hack/test -x ", 1))
    git(clone, "commit", "-qam", "change the README's second command")
    assert not proven(clone)[0], "a change to the README's commands must require a new bare-Debian run"
