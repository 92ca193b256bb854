"""Start-up tuning of the garbage collector (app.server.tune_garbage_collector)."""

from __future__ import annotations

import gc

from app.server import GC_THRESHOLD, tune_garbage_collector


def test_startup_objects_are_frozen_and_young_collections_are_rarer() -> None:
    before = gc.get_threshold()
    try:
        tune_garbage_collector()
        assert gc.get_threshold() == GC_THRESHOLD
        assert GC_THRESHOLD[0] > before[0]
        assert gc.get_freeze_count() > 0
        # Cyclic garbage made after start-up is still collected.
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
