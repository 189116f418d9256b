"""Helm's own engine judges the chart: `helm lint --strict`, release-name limits, the renderer's failures."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from chart_rendering import RENDER, RenderError, render

from helm_engine import CHART, REPO, helm

# A lowercase RFC 1123 label (Services, and what the chart derives its names from) and subdomain (the rest).
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SEVERITY_WARNING = 2


@pytest.mark.parametrize("namespace", [None, "vpcep-system"], ids=["no-namespace", "vpcep-system"])
def test_helm_lint_strict_is_clean(namespace: str | None) -> None:
    """`helm lint --strict` (warnings are errors), with and without a namespace: lint renders with an empty
    one, where the webhook configuration's name "<release>-<namespace>.vpcep.io" used to be invalid."""
    report = helm.lint(CHART, strict=True, namespace=namespace)
    problems = [m for m in report["messages"] if m["severity"] >= SEVERITY_WARNING]
    assert report["errors"] == [] and problems == [], report


def test_the_longest_release_name_gives_valid_names() -> None:
    """Helm allows 53 characters; every name the chart derives from it stays a valid Kubernetes name."""
    release = "r" * 52 + "1"
    helm.validate_release_name(release)
    rendered = render(release=release)
    for obj in rendered.objects:
        name = obj["metadata"]["name"]
        pattern = DNS_LABEL if obj["kind"] in {"Service", "Namespace"} else DNS_SUBDOMAIN
        assert pattern.match(name) and len(name) <= 253, f"{obj['kind']} {name}"


def test_a_release_name_too_long_is_refused_naming_the_limit() -> None:
    with pytest.raises(RenderError, match="must not be longer than 53"):
        render(release="r" * 54)


def test_render_chart_without_helms_engine_says_how_to_fix_it() -> None:
    """No silent fallback: without helm_python (here: no site-packages) the command fails naming the fix."""
    result = subprocess.run(
        [sys.executable, "-S", str(REPO / "hack" / "render_chart.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "helm-python-sdk" in result.stderr and "hack/setup" in result.stderr, result.stderr
    assert not result.stdout


def test_render_chart_prints_what_helm_installs_in_install_order() -> None:
    """`helm template` order: CRDs and the namespace-wide objects before the Deployments that need them."""
    result = subprocess.run(
        [str(RENDER), "vpcep", "-n", "vpcep-system"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    kinds = re.findall(r"^kind: (\w+)$", result.stdout, flags=re.MULTILINE)
    assert kinds.index("CustomResourceDefinition") < kinds.index("Deployment")
    assert kinds.index("ServiceAccount") < kinds.index("Deployment")
