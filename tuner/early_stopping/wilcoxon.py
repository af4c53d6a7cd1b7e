"""Paired Wilcoxon signed-rank test against the best succeeded trial (``wilcoxon``)."""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from tuner.early_stopping.base import CONTINUE, Curve, CurveRule, StopDecision, fmt, succeeded
from tuner.trials import Trial

__all__ = ["WilcoxonRule"]


@dataclass(frozen=True)
class WilcoxonRule(CurveRule):
    """Paired Wilcoxon signed-rank test against the best succeeded trial (``wilcoxon``).

    Settings: ``p_threshold=0.1``, ``n_startup_steps=2``.

    For objectives reported per fold or instance (the step is the instance id), as Optuna's
    ``WilcoxonPruner``: the reference is the best Succeeded trial by objective value (lowest
    number on ties). On the steps both report (finite values), a one-sided Wilcoxon
    signed-rank test (``zero_method="zsplit"``) asks whether the trial is worse; it stops when
    ``p < p_threshold`` and its mean over those steps is also worse than the reference's,
    given at least ``n_startup_steps`` common steps.
    """

    minimize: bool
    p_threshold: float = 0.1
    n_startup_steps: int = 2

    def __post_init__(self) -> None:
        if not 0.0 < self.p_threshold <= 1.0:
            raise ValueError(f"p_threshold must lie in (0, 1], got {self.p_threshold}")
        if self.n_startup_steps < 1:
            raise ValueError("n_startup_steps must be >= 1")

    def _decide(self, trial: Trial, curve: Curve, others: list[Trial]) -> StopDecision:
        candidates = [
            t for t in succeeded(others) if t.objective is not None and math.isfinite(t.objective)
        ]
        if not candidates:
            return CONTINUE
        best = min(candidates, key=lambda t: (self._loss(t.objective or 0.0), t.number))
        theirs = dict(best.curve)
        pairs = [
            (self._loss(v), self._loss(theirs[s]))
            for s, v in curve
            if s in theirs and math.isfinite(v) and math.isfinite(theirs[s])
        ]
        if not pairs or len(pairs) < self.n_startup_steps:
            return CONTINUE
        diffs = [a - b for a, b in pairs]
        mean_mine = statistics.fmean(a for a, _ in pairs)
        mean_best = statistics.fmean(b for _, b in pairs)
        if mean_mine <= mean_best:
            return CONTINUE
        p = _wilcoxon_greater(diffs)
        if p < self.p_threshold:
            return StopDecision(
                True,
                f"step {curve[-1][0]}: worse than best trial {best.name} on {len(pairs)} common "
                f"steps (mean {fmt(self._loss(mean_mine))} vs {fmt(self._loss(mean_best))}, "
                f"Wilcoxon p={p:.3g} < {fmt(self.p_threshold)})",
            )
        return CONTINUE


def _wilcoxon_greater(diffs: Sequence[float]) -> float:
    """One-sided p-value that the differences are positive; NaN-safe (NaN counts as 1)."""
    from scipy.stats import wilcoxon  # imported here: scipy is slow to import

    with warnings.catch_warnings():
        # scipy warns when it switches to the normal approximation (ties, zeros); expected here.
        warnings.simplefilter("ignore")
        try:
            p = float(wilcoxon(diffs, alternative="greater", zero_method="zsplit").pvalue)
        except ValueError:  # e.g. scipy rejecting a degenerate sample
            return 1.0
    return 1.0 if math.isnan(p) else p
