"""Asynchronous successive halving over steps (``asha``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tuner.early_stopping.base import CONTINUE, Curve, CurveRule, StopDecision, curve_of, fmt
from tuner.trials import Trial

__all__ = ["AshaRule"]


def _value_from(curve: Curve, step: int) -> float | None:
    """The value of the first report at or past ``step``, if any."""
    return next((v for s, v in curve if s >= step), None)


@dataclass(frozen=True)
class AshaRule(CurveRule):
    """Asynchronous successive halving over steps (``asha``).

    Settings: ``min_resource=1``, ``reduction_factor=3``, ``min_early_stopping_rate=0``.

    Asynchronous successive halving (Li et al., 2018). The resource is the step number of the
    objective metric. Rung ``k`` lies at step ``min_resource * reduction_factor ** (k +
    min_early_stopping_rate)``; a trial has reached it once it reported a step at or past it,
    and its value there is the value of its first report at or past it. The trial is judged at
    the highest rung it has reached, against the values every trial of the experiment (any
    state, the trial itself included) recorded at that rung: it continues only if its value is
    among the best ``max(1, n // reduction_factor)`` of those ``n`` values (ties continue; NaN
    and infinite values rank last). With fewer than ``reduction_factor`` values at the rung only
    the best continues, as in Optuna. Default reduction factor 3 as in the Hyperband/ASHA papers
    (Optuna's default is 4). Unlike Optuna, which judges a trial once when it reaches a rung and
    remembers the outcome, the rung is re-judged on every call until the next rung is reached
    (stateless and robust to batched observations): a trial that passed may still be stopped
    before the next rung if enough better trials reach that rung meanwhile.

    ``max_resource`` (used by Hyperband's brackets) leaves rungs at or past it unjudged.
    """

    minimize: bool
    min_resource: int = 1
    reduction_factor: int = 3
    min_early_stopping_rate: int = 0
    max_resource: int | None = None

    def __post_init__(self) -> None:
        if self.min_resource < 1 or self.reduction_factor < 2 or self.min_early_stopping_rate < 0:
            raise ValueError(
                "need min_resource >= 1, reduction_factor >= 2 and min_early_stopping_rate >= 0"
            )
        if self.max_resource is not None and self.max_resource < 1:
            raise ValueError("max_resource must be >= 1")

    def rung_step(self, rung: int) -> int:
        """The step at which rung ``rung`` (0, 1, ...) lies."""
        return int(
            self.min_resource * self.reduction_factor ** (rung + self.min_early_stopping_rate)
        )

    def rung_reached(self, last_step: int) -> int | None:
        """The highest judged rung a trial whose latest step is ``last_step`` has reached."""
        rung = None
        k = 0
        while self.rung_step(k) <= last_step and (
            self.max_resource is None or self.rung_step(k) < self.max_resource
        ):
            rung = k
            k += 1
        return rung

    def _decide(self, trial: Trial, curve: Curve, others: list[Trial]) -> StopDecision:
        rung = self.rung_reached(curve[-1][0])
        if rung is None:
            return CONTINUE
        at = self.rung_step(rung)
        mine = _value_from(curve, at)
        assert mine is not None  # the trial reached the rung
        competitors = [mine]
        for t in others:
            v = _value_from(curve_of(t), at)
            if v is not None:
                competitors.append(v)
        losses = sorted(self._rank_loss(v) for v in competitors)
        keep = max(1, len(losses) // self.reduction_factor)
        cutoff = losses[keep - 1]
        if self._rank_loss(mine) > cutoff:
            return StopDecision(
                True,
                f"step {curve[-1][0]}: value {fmt(mine)} at rung {rung} (step {at}) is not "
                f"among the best {keep} of {len(losses)} trials there "
                f"(cutoff {fmt(self._loss(cutoff))})",
            )
        return CONTINUE

    def _rank_loss(self, value: float) -> float:
        return self._loss(value) if math.isfinite(value) else math.inf
