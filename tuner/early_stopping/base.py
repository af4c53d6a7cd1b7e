"""The contract every stopping rule shares, and the curve helpers they use.

A rule is named by ``spec.earlyStopping.algorithmName`` and configured by its
``algorithmSettings`` (string values, as Katib writes them). The controller calls
:meth:`EarlyStoppingRule.should_stop` with the running trial (its objective curve so far, as
``(step, value)`` pairs) and the experiment's other trials; the answer is a
:class:`StopDecision` whose reason gives the numbers it was based on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tuner.trials import Trial, TrialState

__all__ = [
    "CONTINUE",
    "Curve",
    "CurveRule",
    "EarlyStoppingRule",
    "StopDecision",
    "curve_of",
    "fmt",
    "other_trials",
    "succeeded",
]

Curve = list[tuple[int, float]]


@dataclass(frozen=True)
class StopDecision:
    """A rule's answer: ``stop`` and, when stopping, a human-readable reason with numbers."""

    stop: bool
    reason: str | None = None


CONTINUE = StopDecision(False)


class EarlyStoppingRule(Protocol):
    """Decides whether a running trial should stop; a pure function of its inputs.

    Decisions are pure functions of ``(trial, history)``: rules keep no state between calls, so a
    restarted controller re-derives the same decisions from the database. The direction comes from
    the study's objective (``spec.objective.type``). "Best so far" means the best finite value of
    the trial's curve up to its latest step. A curve is read sorted by step; a duplicated step
    keeps its last value.

    Shared behaviour of every rule:

    * An empty curve never stops.
    * A latest value that is NaN or infinite always stops, whatever the warm-up settings: a
      diverged metric does not recover, and no comparison with it is meaningful. No rule is
      exempt. Earlier non-finite points are ignored by the comparisons (treated as missing),
      except at a successive-halving rung, where a non-finite recorded value ranks last.
    * ``history`` may contain trials in any state; each rule says which ones it compares with.
      An entry with the running trial's own name is ignored.
    """

    def should_stop(self, trial: Trial, history: Sequence[Trial]) -> StopDecision: ...


def fmt(x: float) -> str:
    return f"{x:.6g}"


def curve_of(trial: Trial) -> Curve:
    """The trial's curve sorted by step; a duplicated step keeps its last value."""
    return sorted(dict(trial.curve).items())


def other_trials(trial: Trial, history: Sequence[Trial]) -> list[Trial]:
    return [t for t in history if t.name != trial.name]


def succeeded(trials: Sequence[Trial]) -> list[Trial]:
    return [t for t in trials if t.state is TrialState.SUCCEEDED]


class CurveRule:
    """Base of the rules: the shared empty-curve and non-finite handling, direction helpers.

    Subclasses are frozen dataclasses with a ``minimize`` field and implement :meth:`_decide`;
    their constructors validate their settings (``ValueError``), so a rule built in code is as
    valid as one built from a spec.
    """

    minimize: bool

    def should_stop(self, trial: Trial, history: Sequence[Trial]) -> StopDecision:
        return self.check_curve(
            trial, lambda curve: self._decide(trial, curve, other_trials(trial, history))
        )

    def check_curve(self, trial: Trial, decide: Callable[[Curve], StopDecision]) -> StopDecision:
        """The shared part of every decision (an empty curve continues, a non-finite latest
        value stops); the rest is ``decide``'s, on the sorted curve."""
        curve = curve_of(trial)
        if not curve:
            return CONTINUE
        step, value = curve[-1]
        if math.isnan(value):
            return StopDecision(True, f"step {step}: objective value is NaN")
        if math.isinf(value):
            return StopDecision(True, f"step {step}: objective value is {fmt(value)}")
        return decide(curve)

    def _decide(self, trial: Trial, curve: Curve, others: list[Trial]) -> StopDecision:
        raise NotImplementedError

    # Values are compared as losses: lower is better whatever the direction.
    def _loss(self, value: float) -> float:
        return value if self.minimize else -value

    @property
    def _worse(self) -> str:
        """The comparison sign of "worse than" in the user's direction, for reasons."""
        return ">" if self.minimize else "<"

    def _best(self, curve: Curve, up_to: int) -> float:
        """Best finite value at steps ``<= up_to`` (the latest point is finite when called)."""
        finite = [v for s, v in curve if s <= up_to and math.isfinite(v)]
        return min(finite, key=self._loss)
