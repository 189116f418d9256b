"""Runs the operator (`python -m vpcep.main`, same arguments) with CPython's garbage collector timed: every
full collection, and any other over 20 ms, is written to stderr as one line

    vpcep-bench collector: generation=2 pause_s=0.231 collected=0 at=12345.678

(`at`: time.monotonic() when it ended, the clock the bench reads too, so a pause can be placed in a phase).
A bench-side probe, not part of the product: two clock reads per collection.
"""

from __future__ import annotations

import gc
import runpy
import sys
import time
from typing import Any

REPORTED_OVER_S = 0.02
_started = [0.0]


def _time_collections(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.monotonic()
        return
    ended = time.monotonic()
    pause = ended - _started[0]
    if info["generation"] == 2 or pause > REPORTED_OVER_S:
        print(
            f"vpcep-bench collector: generation={info['generation']} pause_s={pause:.3f} "
            f"collected={info['collected']} at={ended:.3f}",
            file=sys.stderr,
            flush=True,
        )


if __name__ == "__main__":
    gc.callbacks.append(_time_collections)
    sys.argv[0] = "vpcep.main"
    runpy.run_module("vpcep.main", run_name="__main__", alter_sys=True)
