"""Optuna's percentile pruning, statelessly (``percentile``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tuner.early_stopping.base import CONTINUE, Curve, CurveRule, StopDecision, fmt, succeeded
from tuner.trials import Trial

__all__ = ["PercentileRule"]


def _percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation (numpy's default method)."""
    xs = sorted(values)
    h = (len(xs) - 1) * q / 100.0
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


@dataclass(frozen=True)
class PercentileRule(CurveRule):
    """Optuna's percentile pruning, statelessly (``percentile``).

    Settings: ``percentile`` required, ``n_startup_trials=5``, ``n_warmup_steps=0``,
    ``interval_steps=1``.

    As Optuna's ``PercentilePruner``: judged at a step ``s >= n_warmup_steps`` that is the
    trial's first report at or past a pruning step (``n_warmup_steps + k * interval_steps``),
    once ``n_startup_trials`` trials have Succeeded. The trial stops when its best value so far
    is worse than the ``percentile``-th percentile (linear interpolation; for maximization the
    ``100 - percentile``-th, so ``percentile=25`` keeps the best quarter either way) of the
    Succeeded trials' values at step ``s`` (trials without a finite value at ``s`` are left
    out). ``percentile=50`` is Optuna's ``MedianPruner``.
    """

    minimize: bool
    percentile: float
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.percentile <= 100.0:
            raise ValueError(f"percentile must lie in [0, 100], got {self.percentile}")
        if self.n_startup_trials < 0 or self.n_warmup_steps < 0 or self.interval_steps < 1:
            raise ValueError(
                "need n_startup_trials >= 0, n_warmup_steps >= 0 and interval_steps >= 1"
            )

    def _decide(self, trial: Trial, curve: Curve, others: list[Trial]) -> StopDecision:
        step = curve[-1][0]
        if step < self.n_warmup_steps:
            return CONTINUE
        pruning_step = (
            self.n_warmup_steps
            + (step - self.n_warmup_steps) // self.interval_steps * self.interval_steps
        )
        if any(pruning_step <= s < step for s, _ in curve[:-1]):
            return CONTINUE  # judged already at an earlier report of this interval
        reference = succeeded(others)
        if not reference or len(reference) < self.n_startup_trials:
            return CONTINUE
        losses = []
        for t in reference:
            v = dict(t.curve).get(step)
            if v is not None and math.isfinite(v):
                losses.append(self._loss(v))
        if not losses:
            return CONTINUE
        threshold = _percentile(losses, self.percentile)
        best = self._best(curve, step)
        if self._loss(best) > threshold:
            q = self.percentile if self.minimize else 100 - self.percentile
            return StopDecision(
                True,
                f"step {step}: best {fmt(best)} {self._worse} {fmt(q)}th percentile "
                f"{fmt(self._loss(threshold))} of {len(losses)} succeeded trials at step {step}",
            )
        return CONTINUE
