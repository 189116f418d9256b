"""Render charts/vpcep-operator through hack/render-chart: Helm's own engine, as `helm template` does."""

from __future__ import annotations

import functools
import pathlib
import subprocess
from dataclasses import dataclass
from typing import Any

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "vpcep-operator"
RENDER = REPO / "hack" / "render-chart"
NOTES_MARKER = "NOTES:"  # hack/render_chart.py --notes
NAMESPACE = "vpcep-system"


class RenderError(Exception):
    """The chart refused the values (schema) or failed to render; str() is what the user sees."""


@dataclass(frozen=True)
class Rendered:
    objects: list[dict[str, Any]]
    notes: str = ""  # what `helm install` prints after installing (templates/NOTES.txt)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = [obj for obj in self.all(kind) if obj["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def names(self, kind: str) -> set[str]:
        return {obj["metadata"]["name"] for obj in self.all(kind)}


@functools.cache  # deterministic but for fresh certificates, which no test compares across calls
def render(
    *sets: str, release: str = "vpcep", namespace: str = NAMESPACE, values_file: str | None = None
) -> Rendered:
    args = [str(RENDER), release, "--namespace", namespace, "--notes"]
    if values_file:
        args += ["-f", values_file]
    for item in sets:
        args += ["--set", item]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    manifest, _, notes = result.stdout.partition(f"\n{NOTES_MARKER}\n")
    objects = [doc for doc in yaml.safe_load_all(manifest) if doc]
    return Rendered(objects, notes)


def operator_config(rendered: Rendered) -> dict[str, Any]:
    configmap = rendered.one("ConfigMap", "vpcep-operator-config")
    loaded: dict[str, Any] = yaml.safe_load(configmap["data"]["config.yaml"])
    return loaded
