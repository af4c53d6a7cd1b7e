"""Early stopping at a cost that does not grow with the experiment.

A rule is a pure function of ``(trial, history)`` (:mod:`tuner.early_stopping.base`), and
calling it so on every report costs O(trials): every other trial's curve is sorted and
re-read. :class:`StoppingState` keeps, beside the rule, what the rule needs of the trials that
have finished (they never change again), caught up per report from the few trials that
finished since the last one. For ``medianstop`` that is, per step judged, the sorted running
averages of the Succeeded trials: a decision is then one lookup, and each trial that
succeeds is inserted once. The decisions are the pure rule's, value for value (tested by
comparing both on random histories); rules without an incremental form are called as before.

Nothing here is the record: a restarted controller rebuilds the state from the database's
history on its first report.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Mapping, Sequence

from tuner.early_stopping.base import CONTINUE, Curve, EarlyStoppingRule, StopDecision
from tuner.early_stopping.median import MedianStopRule
from tuner.trials import Trial, TrialState

__all__ = ["RunningAverages", "StoppingState"]

Curves = Mapping[str, Mapping[int, float]]

MAX_STEPS = 256
"""Steps whose sorted averages are kept; beyond, the oldest one is dropped (and rebuilt in
O(trials) if judged again): curves with thousands of distinct steps stay bounded in memory."""


class RunningAverages:
    """The Succeeded trials' running averages (mean of the finite values up to a step), kept
    sorted per step that has been asked for."""

    def __init__(self) -> None:
        self._trials: list[tuple[list[int], list[float]]] = []
        """Per trial with a finite value: its finite steps and the running average at each."""
        self._at: dict[int, list[float]] = {}

    def __len__(self) -> int:
        return len(self._trials)

    def add(self, curve: Curve) -> None:
        """A trial that succeeded with this (sorted) curve."""
        steps: list[int] = []
        values: list[float] = []
        averages: list[float] = []
        for step, value in curve:
            if math.isfinite(value):
                steps.append(step)
                values.append(value)
                averages.append(statistics.fmean(values))
        if not steps:
            return
        self._trials.append((steps, averages))
        for step, sorted_averages in self._at.items():
            average = _average_at(steps, averages, step)
            if average is not None:
                bisect.insort(sorted_averages, average)

    def at(self, step: int) -> list[float]:
        """The sorted running averages at ``step`` of the trials with a value at or before it."""
        found = self._at.get(step)
        if found is None:
            found = sorted(
                a
                for steps, avgs in self._trials
                if (a := _average_at(steps, avgs, step)) is not None
            )
            if len(self._at) >= MAX_STEPS:
                del self._at[next(iter(self._at))]
            self._at[step] = found
        return found


def _average_at(steps: list[int], averages: list[float], step: int) -> float | None:
    i = bisect.bisect_right(steps, step)
    return averages[i - 1] if i else None


class StoppingState:
    """A stopping rule and what it knows of the finished trials, caught up per report.

    Args:
        rule: the experiment's rule.
    """

    def __init__(self, rule: EarlyStoppingRule) -> None:
        self.rule = rule
        self._seen = 0
        self._index: dict[str, int] = {}
        self._open: set[int] = set()
        """Positions in the history of trials not finished when last looked at."""
        self._averages = RunningAverages() if isinstance(rule, MedianStopRule) else None

    def decide(self, name: str, history: Sequence[Trial], curves: Curves) -> StopDecision:
        """The rule's decision on trial ``name`` (its curve from ``curves``) against the rest
        of ``history`` (every trial of the experiment in creation order, as
        :class:`tuner.history.HistoryCache` returns it: new trials only ever appended).
        A trial that is not in the history or no longer active continues."""
        self._catch_up(history, curves)
        position = self._index.get(name)
        if position is None or history[position].state.finished:
            return CONTINUE
        trial = history[position].with_curve(curves.get(name, {}))
        if isinstance(self.rule, MedianStopRule) and self._averages is not None:
            rule, averages = self.rule, self._averages
            return rule.check_curve(trial, lambda curve: rule.judge(curve, averages.at))
        others = [t.with_curve(curves.get(t.name, {})) for t in history if t.name != name]
        return self.rule.should_stop(trial, others)

    def _catch_up(self, history: Sequence[Trial], curves: Curves) -> None:
        for position in range(self._seen, len(history)):
            self._index[history[position].name] = position
            self._open.add(position)
        self._seen = len(history)
        if self._averages is None:
            return
        for position in [p for p in self._open if history[p].state.finished]:
            self._open.discard(position)
            trial = history[position]
            if trial.state is TrialState.SUCCEEDED:
                self._averages.add(sorted(curves.get(trial.name, {}).items()))
