"""One version everywhere: the package, the chart's version and appVersion, `vpcep-operator --version`,
and the newest CHANGELOG.md entry."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import tomllib

import yaml

import vpcep

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_pyproject_takes_the_version_from_the_package() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"]
    assert "version" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "vpcep.__version__"}


def test_the_chart_version_and_app_version_are_the_package_version() -> None:
    chart = yaml.safe_load((REPO / "charts" / "vpcep-operator" / "Chart.yaml").read_text())
    assert chart["version"] == vpcep.__version__
    assert chart["appVersion"] == vpcep.__version__


def test_vpcep_operator_version_prints_the_package_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vpcep.main", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO / "operator"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"vpcep-operator {vpcep.__version__}"


def test_the_changelog_starts_with_the_current_version_and_goes_back_to_0_1_0() -> None:
    headings = re.findall(r"^## (\d+\.\d+\.\d+)\b", (REPO / "CHANGELOG.md").read_text(), flags=re.MULTILINE)
    assert headings[0] == vpcep.__version__
    assert headings[-1] == "0.1.0"
