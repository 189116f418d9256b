"""The previous release, rebuilt from this clone's history (issue 18 deliverable 3): CHANGELOG.md records the
commit each released version was built from; `git worktree add` checks that commit out beside this tree (no
network fetch of the code), and its package is installed from that checkout into a virtualenv of its own
(pip may take its dependencies from the registry or its cache), which plays the release's image for the
kubelet stand-in: the previous release's operator and gateway run from there, never from this tree.

Built once per commit and Python into ~/.cache/vpcep-releases (VPCEP_RELEASES_CACHE), under a lock; the
worktree is removed again once its package and chart are copied out, so the clone's worktree list is left as
it was. A shallow clone lacks the commit: the build stops with what to run (`git fetch --unshallow`)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kubelet import Image

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("VPCEP_RELEASES_CACHE", Path.home() / ".cache" / "vpcep-releases"))
RELEASED = re.compile(r"^## (\d+\.\d+\.\d+) — \d{4}-\d\d-\d\d\n\nReleased from commit ([0-9a-f]{40})\.", re.M)


class PreviousReleaseMissing(RuntimeError):
    """The recorded commit is not in this clone's history: the message says how to get it."""


@dataclass(frozen=True)
class PreviousRelease:
    version: str
    commit: str
    tree: Path  # the release's charts/ and examples/, as checked out
    venv: Path

    @property
    def chart(self) -> Path:
        return self.tree / "charts" / "vpcep-operator"

    @property
    def image(self) -> Image:
        """What the release's image runs: its own interpreter and installed package, nothing of this tree."""
        return Image(python=str(self.venv / "bin" / "python"), pythonpath="", passwd=self.image_users())

    def image_users(self) -> tuple[str, ...]:
        """The /etc/passwd lines its Dockerfile's `useradd --uid N ... NAME` adds."""
        found = re.findall(
            r"useradd [^\n]*?--uid (\d+) [^\n]*?(\w+)\s*$", (self.tree / "Dockerfile").read_text(), re.M
        )
        return tuple(f"{name}:x:{uid}:{uid}::/nonexistent:/usr/sbin/nologin" for uid, name in found)


def recorded_release(repo: Path = REPO) -> tuple[str, str]:
    """(version, commit) of the newest released version in CHANGELOG.md."""
    found = RELEASED.search((repo / "CHANGELOG.md").read_text())
    if found is None:
        raise PreviousReleaseMissing("CHANGELOG.md records no released version with its commit")
    return found.group(1), found.group(2)


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=check)


def check_history(repo: Path, version: str, commit: str) -> None:
    if _git(repo, "cat-file", "-e", f"{commit}^{{commit}}", check=False).returncode == 0:
        return
    where = f"release {version}'s commit {commit} (CHANGELOG.md) is not in the history of the clone {repo}"
    if _git(repo, "rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        raise PreviousReleaseMissing(
            f"{where}: it is a shallow clone. Fetch the whole history with "
            f"`git -C {repo} fetch --unshallow` (or clone without --depth), then run the tests again."
        )
    raise PreviousReleaseMissing(f"{where}. Fetch it from where this clone came from: `git -C {repo} fetch`.")


def build(repo: Path = REPO, cache: Path = CACHE) -> PreviousRelease:
    version, commit = recorded_release(repo)
    check_history(repo, version, commit)
    # Keyed by the interpreter too: a virtualenv runs only with the one it was made from.
    python = hashlib.sha256(os.path.realpath(_base_python()).encode()).hexdigest()[:8]
    home = cache / f"{version}-{commit[:12]}-py{sys.version_info.major}{sys.version_info.minor}-{python}"
    release = PreviousRelease(version, commit, home / "tree", home / "venv")
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; the others wait and find it done
        if (home / "built").exists():
            return release
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir()
        _build_into(repo, commit, release)
        (home / "built").write_text(f"{version} {commit}\n")
    return release


def _base_python() -> str:
    """The interpreter this tree's virtualenv was made from: the release's image has nothing of ours."""
    return str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}")


def _build_into(repo: Path, commit: str, release: PreviousRelease) -> None:
    checkout = Path(tempfile.mkdtemp(prefix="vpcep-previous-")) / "tree"
    _git(repo, "worktree", "add", "--detach", str(checkout), commit)
    try:
        subprocess.run([_base_python(), "-m", "venv", str(release.venv)], check=True, capture_output=True)
        installed = subprocess.run(
            [str(release.venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(checkout)],
            capture_output=True,
            text=True,
        )
        if installed.returncode != 0:
            raise RuntimeError(
                f"pip could not install release {commit} from its checkout:\n{installed.stderr}"
            )
        release.tree.mkdir(parents=True)
        for part in ("charts", "examples", "crds"):
            shutil.copytree(checkout / part, release.tree / part, symlinks=True)
        shutil.copy(checkout / "Dockerfile", release.tree / "Dockerfile")
    finally:
        _git(repo, "worktree", "remove", "--force", str(checkout), check=False)
        _git(repo, "worktree", "prune", check=False)
        shutil.rmtree(checkout.parent, ignore_errors=True)
