"""Keras-style patience on the best value so far (``patience``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tuner.early_stopping.base import CONTINUE, Curve, CurveRule, StopDecision, fmt
from tuner.trials import Trial

__all__ = ["PatienceRule"]


@dataclass(frozen=True)
class PatienceRule(CurveRule):
    """Keras-style patience on the best value so far (``patience``).

    Settings: ``patience`` required, ``min_delta=0``.

    As Keras' ``EarlyStopping``: stops once ``patience`` reports in a row came after the last
    improvement. A report improves when it beats the best so far by more than ``min_delta``;
    the first report sets the best. Reports are counted, not step numbers, so sparse curves
    behave like dense ones; a NaN report is not an improvement.
    """

    minimize: bool
    patience: int
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise ValueError("patience must be >= 1")
        if not (math.isfinite(self.min_delta) and self.min_delta >= 0):
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta}")

    def _decide(self, trial: Trial, curve: Curve, others: list[Trial]) -> StopDecision:
        best: float | None = None
        best_step = curve[0][0]
        since = 0
        for s, v in curve:
            if math.isfinite(v) and (best is None or self._loss(v) < best - self.min_delta):
                best, best_step, since = self._loss(v), s, 0
            else:
                since += 1
        if best is not None and since >= self.patience:
            return StopDecision(
                True,
                f"step {curve[-1][0]}: no improvement over best {fmt(self._loss(best))} "
                f"(step {best_step}) by more than {fmt(self.min_delta)} in {since} reports "
                f"(patience {self.patience})",
            )
        return CONTINUE
