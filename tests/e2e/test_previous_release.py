"""The previous release is rebuilt from the clone's own history (issue 18 deliverable 3): a fresh clone has
the commit CHANGELOG.md records, the release's package runs from its own virtualenv (not this tree), and a
shallow clone is told what to fetch instead of failing somewhere later."""

from __future__ import annotations

import subprocess
from pathlib import Path

import previous_release
import pytest
from previous_release import REPO, PreviousReleaseMissing, check_history, recorded_release


def _clone(tmp_path: Path, *options: str) -> Path:
    target = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "--quiet", *options, f"file://{REPO}", str(target)], check=True, capture_output=True
    )
    return target


def test_a_fresh_clone_has_the_previous_release_commit(tmp_path: Path) -> None:
    clone = _clone(tmp_path)
    version, commit = recorded_release(clone)
    check_history(clone, version, commit)  # raises if the clone lacks it


def test_a_shallow_clone_is_told_to_fetch_the_history(tmp_path: Path) -> None:
    clone = _clone(tmp_path, "--depth=1")
    version, _commit = recorded_release(clone)
    with pytest.raises(PreviousReleaseMissing) as refused:
        previous_release.build(clone, cache=tmp_path / "cache")
    message = str(refused.value)
    assert f"release {version}'s commit" in message and "shallow clone" in message, message
    assert f"git -C {clone} fetch --unshallow" in message, message
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_the_previous_release_runs_from_its_own_virtualenv() -> None:
    release = previous_release.build()
    probe = (
        "import importlib.metadata, vpcep; "
        "print(importlib.metadata.version('vpcep-operator')); print(vpcep.__file__)"
    )
    found = subprocess.run(
        [release.image.python, "-c", probe], capture_output=True, text=True, check=True, cwd="/"
    ).stdout.split()
    assert found[0] == release.version
    assert found[1].startswith(str(release.venv)), found  # its installed package, nothing of this tree
    assert (release.chart / "Chart.yaml").read_text().count(f"version: {release.version}") >= 1
    worktrees = subprocess.run(
        ["git", "-C", str(REPO), "worktree", "list", "--porcelain"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "vpcep-previous-" not in worktrees  # the checkout was removed once built
