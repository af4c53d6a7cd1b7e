"""Hyperband as brackets of successive halving (``hyperband``)."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

from tuner.early_stopping.asha import AshaRule
from tuner.early_stopping.base import Curve, CurveRule, StopDecision
from tuner.trials import Trial

__all__ = ["HyperbandRule"]


@dataclass(frozen=True)
class HyperbandRule(CurveRule):
    """Hyperband as brackets of successive halving (``hyperband``).

    Settings: ``min_resource=1``, ``max_resource`` required, ``reduction_factor=3``.

    Hyperband (Li et al., 2017) as successive halving brackets: ``n_brackets = floor(log_rf(
    max_resource / min_resource)) + 1``; bracket ``b`` is an ASHA with
    ``min_early_stopping_rate = b`` whose rungs stop before ``max_resource`` (the last
    bracket therefore runs every trial to the end). A trial's bracket is drawn from
    ``crc32(str(trial.number))`` with weights proportional to Hyperband's number of
    configurations per bracket, ``ceil(n_brackets * rf**s / (s + 1))`` with
    ``s = n_brackets - 1 - b``; trials are compared only with trials of the same bracket.
    """

    minimize: bool
    max_resource: int
    min_resource: int = 1
    reduction_factor: int = 3
    _brackets: tuple[AshaRule, ...] = field(init=False, repr=False, compare=False)
    _budgets: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.min_resource < 1 or self.reduction_factor < 2:
            raise ValueError("need min_resource >= 1 and reduction_factor >= 2")
        if self.max_resource <= self.min_resource:
            raise ValueError(
                f"max_resource must be greater than min_resource ({self.min_resource})"
            )
        n = 1
        while self.min_resource * self.reduction_factor**n <= self.max_resource:
            n += 1
        brackets = tuple(
            AshaRule(
                minimize=self.minimize,
                min_resource=self.min_resource,
                reduction_factor=self.reduction_factor,
                min_early_stopping_rate=b,
                max_resource=self.max_resource,
            )
            for b in range(n)
        )
        budgets = tuple(
            math.ceil(n * self.reduction_factor ** (n - 1 - b) / (n - b)) for b in range(n)
        )
        object.__setattr__(self, "_brackets", brackets)
        object.__setattr__(self, "_budgets", budgets)

    @property
    def n_brackets(self) -> int:
        return len(self._brackets)

    @property
    def budgets(self) -> tuple[int, ...]:
        """Relative share of trials of each bracket (Hyperband's n_i)."""
        return self._budgets

    def bracket(self, number: int) -> int:
        """The bracket of trial ``number``; deterministic across processes."""
        n = zlib.crc32(str(number).encode()) % sum(self._budgets)
        for b, budget in enumerate(self._budgets):
            if n < budget:
                return b
            n -= budget
        raise AssertionError("unreachable")

    def _decide(self, trial: Trial, curve: Curve, others: list[Trial]) -> StopDecision:
        b = self.bracket(trial.number)
        mates = [t for t in others if self.bracket(t.number) == b]
        decision = self._brackets[b]._decide(trial, curve, mates)
        if decision.stop:
            return StopDecision(
                True, f"{decision.reason}; Hyperband bracket {b} of {self.n_brackets}"
            )
        return decision
