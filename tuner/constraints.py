"""Constraints on metrics (``spec.constraints``): which trials are feasible.

A constraint bounds one metric from above (``max``) or below (``min``). A trial is feasible when
every constraint metric has a value that satisfies its bound; a missing or NaN value violates it.
Infeasible trials rank after feasible ones everywhere (leaderboard, best trial, Pareto front).

The violation follows Optuna's convention for ``constraints_func``: a number that is ``<= 0``
when the constraint holds and grows with the distance past the bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tuner.trials import Trial

__all__ = ["Constraint", "feasible", "feasible_first", "violations"]


@dataclass(frozen=True)
class Constraint:
    """``metric <= max`` or ``metric >= min`` (exactly one of them set)."""

    metric: str
    max: float | None = None
    min: float | None = None

    def violation(self, value: float | None) -> float:
        """``<= 0`` when ``value`` satisfies the bound; ``inf`` when there is no usable value."""
        if value is None or math.isnan(value):
            return math.inf
        if self.max is not None:
            return value - self.max
        assert self.min is not None
        return self.min - value

    def __str__(self) -> str:
        return (
            f"{self.metric} <= {self.max:g}"
            if self.max is not None
            else (f"{self.metric} >= {self.min:g}")
        )


def violations(trial: Trial, constraints: Sequence[Constraint]) -> tuple[float, ...]:
    """Each constraint's violation for ``trial`` (its metric values under their strategies)."""
    return tuple(c.violation(trial.metrics.get(c.metric)) for c in constraints)


def feasible(trial: Trial, constraints: Sequence[Constraint]) -> bool:
    """Whether every constraint holds for ``trial`` (always, without constraints)."""
    return all(v <= 0 for v in violations(trial, constraints))


def feasible_first(trials: Iterable[Trial], constraints: Sequence[Constraint]) -> list[Trial]:
    """``trials`` with the feasible ones first, each group in its given order."""
    listed = list(trials)
    if not constraints:
        return listed
    ok = [t for t in listed if feasible(t, constraints)]
    ok_names = {t.name for t in ok}
    return ok + [t for t in listed if t.name not in ok_names]
