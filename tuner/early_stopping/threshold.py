"""Stops a trial whose latest value leaves ``[lower, upper]`` (``threshold``)."""

from __future__ import annotations

from dataclasses import dataclass

from tuner.early_stopping.base import CONTINUE, Curve, CurveRule, StopDecision, fmt
from tuner.trials import Trial

__all__ = ["ThresholdRule"]


@dataclass(frozen=True)
class ThresholdRule(CurveRule):
    """Stops a trial whose latest value leaves ``[lower, upper]`` (``threshold``).

    Settings: ``lower`` and/or ``upper``.

    Stops when the latest value is below ``lower`` or above ``upper`` (independent of the
    direction), or is NaN or infinite.
    """

    minimize: bool
    lower: float | None = None
    upper: float | None = None

    def __post_init__(self) -> None:
        if self.lower is None and self.upper is None:
            raise ValueError("at least one of lower and upper is required")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"upper must be >= lower ({self.lower}), got {self.upper}")

    def _decide(self, trial: Trial, curve: Curve, others: list[Trial]) -> StopDecision:
        step, value = curve[-1]
        if self.lower is not None and value < self.lower:
            return StopDecision(True, f"step {step}: {fmt(value)} < lower {fmt(self.lower)}")
        if self.upper is not None and value > self.upper:
            return StopDecision(True, f"step {step}: {fmt(value)} > upper {fmt(self.upper)}")
        return CONTINUE
