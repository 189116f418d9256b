"""The house's import contracts (.importlinter), checked by import-linter: each room of the operator imports
only the rooms below it (api -> domain -> builders -> k8s/config -> runtime -> state -> controllers ->
handlers -> main), the gateway agent is independent of the operator's rooms, kopf is imported only where the
operator is wired, and the domain does no I/O (STYLE.md)."""

import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    venv_bin = str(pathlib.Path(sys.executable).parent)
    lint_imports = shutil.which("lint-imports", path=venv_bin) or shutil.which("lint-imports")
    assert lint_imports, "import-linter is a test dependency (pyproject.toml [test]): run hack/setup"
    result = subprocess.run(
        [lint_imports, "--no-cache"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "operator")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
