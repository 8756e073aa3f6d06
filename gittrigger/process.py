"""
Process-wide tuning that belongs to whoever owns the process: the server and ``gittrigger run``.

Called once at start by :mod:`gittrigger.cli` (``run``, ``serve``); the benchmarks call it too,
since they measure the engine as the server runs it. A library (``workflows``) must not change
process-wide state, so this lives at the top layer.
"""

from __future__ import annotations

import gc
from typing import Final

# A run of 20,000 nodes allocates long-lived frozen dataclasses by the hundred thousand; with
# CPython's default young-generation threshold (700) the collector walks them again and again,
# which made 20,000 items cost ~2.3x 10,000. Collections stay as often in bytes allocated for
# short-lived garbage, just not per 700 objects.
GC_THRESHOLDS: Final = (50_000, 20, 100)


def tune_gc() -> None:
    """Set the collector's thresholds for a long-running engine process."""
    gc.set_threshold(*GC_THRESHOLDS)
