"""CPython's cyclic garbage collector during start-up: held off while the caches fill, then everything
start-up left alive is frozen out of its sight.

Why: priming grows the heap from nothing to millions of long-lived objects (the cached records of every
watched object), and CPython runs a full collection each time its long-lived objects grow by a quarter: a
dozen or more walks of a heap that holds almost no garbage, each longer than the last. Measured
(bench/README.md, "Restart and the garbage collector"): at 5,000 endpoints 1.2 s of a 6.0 s restart's CPU
went to full collections; at 10,000, held off and then frozen, restart -> reconciled fell from 33.8 to 15.2 s
and restart CPU from 22.0 to 10.0 s, peak RSS unchanged. What start-up leaves alive is mostly the caches,
which live as long as the process: frozen (gc.freeze), later full collections walk only what came after.

The cost: cyclic garbage made during start-up waits for the collector's return (`limit_s` at most, should
the caches never fill: an API server that stays away), and objects frozen then that later become cyclic
garbage are never collected (cache records are acyclic and freed by reference counting).
"""

from __future__ import annotations

import gc
import logging
import threading

logger = logging.getLogger(__name__)

START_UP_LIMIT_S = 300.0


def hold_collection(limit_s: float = START_UP_LIMIT_S) -> threading.Timer:
    """No cyclic collection until `resume_collection()`, or until `limit_s` has passed."""
    gc.disable()
    timer = threading.Timer(
        limit_s, resume_collection, kwargs={"reason": f"start-up took over {limit_s:.0f} s"}
    )
    timer.daemon = True
    timer.start()
    return timer


def resume_collection(reason: str = "caches primed") -> None:
    """Freeze what is alive now and collect again from here on (idempotent)."""
    if gc.isenabled():
        return
    gc.freeze()
    gc.enable()
    logger.debug("garbage collection resumed (%s): %d objects frozen", reason, gc.get_freeze_count())
