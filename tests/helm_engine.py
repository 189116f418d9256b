"""Helm's own engine for the tests: helm_python, Helm's Go SDK as a C library (the pinned helm-python-sdk).

Imported by the chart and end-to-end tests; a missing engine fails them with the fix, it never skips them.
(Helm's chart loader logs at INFO on stderr that files/crds is a symlink to crds/: expected, not a problem.)
"""

from __future__ import annotations

import pathlib

try:
    import helm_python as helm
except (ImportError, OSError) as error:  # OSError: the packaged C library cannot be opened
    raise ImportError(
        f"Helm's engine (helm-python-sdk, import helm_python) cannot be loaded: {error}. "
        "Install the test dependencies: hack/setup (or python3 -m pip install -e '.[test]')"
    ) from error

REPO = pathlib.Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "vpcep-operator"

__all__ = ["CHART", "REPO", "helm"]
