"""`helm template` for charts/vpcep-operator with Helm's own engine (helm_python, Helm's Go SDK via ctypes).

The output is the manifest of a client-side dry-run install, which is what `helm template` prints: objects in
Helm's install order, values merged as Helm merges them (chart defaults, then -f files, then --set), checked
against values.schema.json, and `lookup` empty. Exit 1 with Helm's message when the values or templates are
refused; exit 2, naming the fix, when Helm's engine is not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import sys
from collections.abc import Iterator
from typing import Any

CHART = pathlib.Path(__file__).resolve().parents[1] / "charts" / "vpcep-operator"
# A kubeconfig with no cluster: a client-side dry run never contacts one.
NO_CLUSTER = "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n"
NOTES_MARKER = "NOTES:"  # where `helm install --dry-run` starts the notes, after the manifest
MISSING_ENGINE = (
    "render-chart: Helm's engine (the Python package helm-python-sdk, import helm_python) cannot be "
    "loaded: {error}\n"
    "Install the project's test dependencies with hack/setup, or: python3 -m pip install -e '.[test]'"
)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's mergeMaps: nested maps merge key by key, anything else (lists too) is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Helm's chart loader logs on the process's stderr at INFO that files/crds is a symlink (to crds/, so the
    packaged chart carries the CRDs); a load failure still raises with Helm's message."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="render-chart", description=__doc__.splitlines()[0])
    parser.add_argument("release", nargs="?", default="vpcep", help="release name (default vpcep)")
    parser.add_argument("-n", "--namespace", default="default", help="release namespace")
    parser.add_argument("-f", "--values", action="append", default=[], help="a values file (repeatable)")
    parser.add_argument("--set", action="append", default=[], help="K=V as helm --set (repeatable)")
    parser.add_argument("--set-string", action="append", default=[], help="K=V kept a string (repeatable)")
    parser.add_argument(
        "--notes",
        action="store_true",
        help="print the install notes after the manifest (as helm install --dry-run does)",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    options = _arguments(argv)
    try:
        import helm_python as helm
    except (ImportError, OSError) as error:  # OSError: the packaged C library cannot be opened
        print(MISSING_ENGINE.format(error=error), file=sys.stderr)
        return 2
    values: dict[str, Any] = {}
    try:
        for path in options.values:
            values = _merge(values, helm.values_from_yaml(pathlib.Path(path).read_text()))
        # Helm parses every --set into one map in turn, so `--set l[0]=a --set l[1]=b` builds one list: the
        # same as one comma-joined expression.
        if options.set:
            values = _merge(values, helm.parse_set_string(",".join(options.set)))
        if options.set_string:
            values = _merge(values, helm.parse_set_string_values(",".join(options.set_string)))
        with _stderr_silenced():
            chart = helm.Chart.load(CHART)
        with chart, helm.Config(kubeconfig_content=NO_CLUSTER) as config:
            release = config.install(
                chart, options.release, values, namespace=options.namespace, dry_run="client"
            )
    except (helm.HelmError, OSError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(release["manifest"])
    if options.notes:
        sys.stdout.write(f"{NOTES_MARKER}\n{release['notes']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
