"""How a long-running command sets Python's garbage collector (``tuner serve``, ``tuner run``)."""

from __future__ import annotations

import gc

GC_THRESHOLDS = (10_000, 20, 100)
"""The collector's thresholds in a long-running command (Python's defaults: 700, 10, 10)."""


def spare_the_heap() -> None:
    """Collect the oldest generation far less often, and never scan what start-up made.

    A service or a long experiment holds a large heap of long-lived objects: modules, the ORM,
    the trial history, and with the Kubernetes runner every cached Job and Pod. Each full
    collection walks all of it and finds next to nothing. With 1,000 trials running, the
    defaults made one every few seconds, each stopping the whole process for 0.3 to 1 s
    (measured with ``gc.callbacks``), and trial endings waited seconds to be stored. What the
    caches and the history hold are trees of dicts, lists and strings, freed by reference
    counting as soon as they are replaced: only reference cycles wait for a collection, and
    those are few.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
