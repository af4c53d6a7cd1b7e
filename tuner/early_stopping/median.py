"""The median stopping rule (``medianstop``): stop below the median of the others."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tuner.early_stopping.base import (
    CONTINUE,
    Curve,
    CurveRule,
    StopDecision,
    curve_of,
    fmt,
    succeeded,
)
from tuner.trials import Trial

__all__ = ["MedianStopRule", "median_of_sorted", "running_average"]


@dataclass(frozen=True)
class MedianStopRule(CurveRule):
    """The median stopping rule (``medianstop``): stop below the median of the others.

    Settings: ``min_trials_required=3``, ``start_step=4``.

    The median stopping rule of Google Vizier (Golovin et al., 2017), which Katib ships: at
    step ``s >= start_step`` the trial stops when its best value so far is strictly worse than
    the **median** of the running averages (mean of the values at steps ``<= s``) of the
    Succeeded trials, once at least ``min_trials_required`` such trials have a value at a step
    ``<= s``. Katib's implementation takes the *mean* of the averages (of the first
    ``start_step`` reports) although it calls it the median; we use the true median. As in
    Katib, only Succeeded trials are the reference (not EarlyStopped ones). Steps are the
    reported step numbers, so with steps counted from 0 the first judgment under the defaults
    comes at the fifth report.
    """

    minimize: bool
    min_trials_required: int = 3
    start_step: int = 4

    def __post_init__(self) -> None:
        if self.min_trials_required < 1 or self.start_step < 1:
            raise ValueError("min_trials_required and start_step must be >= 1")

    def _decide(self, trial: Trial, curve: Curve, others: list[Trial]) -> StopDecision:
        def averages_at(step: int) -> list[float]:
            return sorted(
                a
                for t in succeeded(others)
                if (a := running_average(curve_of(t), step)) is not None
            )

        return self.judge(curve, averages_at)

    def judge(self, curve: Curve, averages_at: Callable[[int], Sequence[float]]) -> StopDecision:
        """The decision on a (non-empty, finite-ended) ``curve``, given the sorted running
        averages of the Succeeded trials at a step (kept incrementally by
        :class:`tuner.early_stopping.incremental.StoppingState`, or computed here)."""
        step = curve[-1][0]
        if step < self.start_step:
            return CONTINUE
        averages = averages_at(step)
        if len(averages) < self.min_trials_required:
            return CONTINUE
        median = median_of_sorted(averages)
        best = self._best(curve, step)
        if self._loss(best) > self._loss(median):
            return StopDecision(
                True,
                f"step {step}: best {fmt(best)} {self._worse} median {fmt(median)} of the "
                f"running averages of {len(averages)} succeeded trials up to step {step}",
            )
        return CONTINUE


def running_average(curve: Curve, step: int) -> float | None:
    """The mean of a curve's finite values at steps ``<= step`` (``None``: there are none)."""
    values = [v for s, v in curve if s <= step and math.isfinite(v)]
    return statistics.fmean(values) if values else None


def median_of_sorted(values: Sequence[float]) -> float:
    """The median of sorted ``values`` (as :func:`statistics.median` computes it)."""
    n = len(values)
    middle = n // 2
    return values[middle] if n % 2 else (values[middle - 1] + values[middle]) / 2
