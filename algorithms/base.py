"""The suggestion plug point.

A :class:`Suggester` turns the stored trial history into new parameter sets. It must behave as
a pure function of ``history`` (plus its settings): a caller may throw the object away and build
a new one from the same spec at any time (a restart), and the next suggestions must neither
repeat points already in ``history`` nor depend on what the old object remembered. Keeping a
cache (for instance an Optuna study fed incrementally) is fine for speed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tuner.trials import ParamValue, Trial


@dataclass(frozen=True)
class Suggestion:
    """One parameter set to run, with opaque attributes the algorithm wants stored on the trial."""

    parameters: dict[str, ParamValue]
    attrs: dict[str, Any] = field(default_factory=dict)


class Suggester(Protocol):
    def suggest(self, history: Sequence[Trial], count: int) -> list[Suggestion]:
        """Return at most ``count`` new parameter sets.

        ``history`` holds every trial of the experiment so far (any state), in creation order.
        Returning fewer than ``count`` (even none) means "nothing more right now"; when that
        happens while no trial is active, the controller ends the experiment as exhausted.
        """
        ...
