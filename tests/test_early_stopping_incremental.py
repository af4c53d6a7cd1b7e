"""The controller's incremental stopping state decides exactly as the pure rule does.

Random experiments are played report by report: trials are created, report curves (unordered
and repeated steps, NaN and infinite values, steps that differ between trials), and finish in
every state. At each report, :class:`StoppingState` (which keeps the finished trials' running
averages) and the rule called on the whole history must agree, decision and reason."""

from __future__ import annotations

import math
import random

import pytest

from tuner.early_stopping import (
    AshaRule,
    EarlyStoppingRule,
    MedianStopRule,
    PercentileRule,
    StoppingState,
)
from tuner.early_stopping.incremental import MAX_STEPS, RunningAverages
from tuner.trials import Trial, TrialState

FINAL = [
    TrialState.SUCCEEDED,
    TrialState.SUCCEEDED,
    TrialState.SUCCEEDED,
    TrialState.FAILED,
    TrialState.EARLY_STOPPED,
    TrialState.KILLED,
]


def value(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.02:
        return math.nan
    if roll < 0.03:
        return math.inf
    return round(rng.gauss(1.0, 0.5), 3)


def play(rule: EarlyStoppingRule, seed: int, trials: int = 60) -> int:
    """Plays one experiment; returns how many decisions were compared (stops among them)."""
    rng = random.Random(seed)
    history: list[Trial] = []
    curves: dict[str, dict[int, float]] = {}
    state = StoppingState(rule)
    compared = stops = 0
    running: list[Trial] = []
    while len(history) < trials or running:
        if len(history) < trials and (len(running) < 4 or rng.random() < 0.2):
            trial = Trial(name=f"t{len(history)}", number=len(history), parameters={})
            trial.state = TrialState.RUNNING
            history.append(trial)
            running.append(trial)
            curves[trial.name] = {}
            continue
        trial = rng.choice(running)
        if rng.random() < 0.15:
            trial.state = rng.choice(FINAL)
            running.remove(trial)
            continue
        step = rng.randrange(0, 12) if rng.random() < 0.3 else len(curves[trial.name]) + 1
        curves[trial.name][step] = value(rng)
        snapshot = list(history)  # what HistoryCache.refresh returns: a new list each time
        got = state.decide(trial.name, snapshot, curves)
        others = [t.with_curve(curves[t.name]) for t in snapshot if t.name != trial.name]
        want = rule.should_stop(trial.with_curve(curves[trial.name]), others)
        assert got == want, (seed, trial.name, step)
        compared += 1
        stops += want.stop
    assert stops, "no decision stopped a trial: the comparison proved little"
    return compared


@pytest.mark.parametrize("minimize", [True, False])
@pytest.mark.parametrize(
    "settings", [{}, {"min_trials_required": 1, "start_step": 1}, {"start_step": 2}]
)
def test_median_state_decides_as_the_rule_on_random_experiments(
    minimize: bool, settings: dict[str, int]
) -> None:
    rule = MedianStopRule(minimize=minimize, **settings)
    assert sum(play(rule, seed) for seed in range(6)) > 400


@pytest.mark.parametrize(
    "rule", [AshaRule(minimize=True), PercentileRule(minimize=False, percentile=40)]
)
def test_rules_without_an_incremental_form_are_called_on_the_history(
    rule: EarlyStoppingRule,
) -> None:
    assert sum(play(rule, seed) for seed in range(5)) > 300


def test_a_finished_or_unknown_trial_continues() -> None:
    state = StoppingState(MedianStopRule(minimize=True, min_trials_required=1, start_step=1))
    done = Trial(name="done", number=0, parameters={}, state=TrialState.SUCCEEDED)
    curves = {"done": {1: 5.0, 2: 5.0}}
    assert not state.decide("done", [done], curves).stop
    assert not state.decide("nobody", [done], curves).stop


def test_running_averages_stay_sorted_and_bounded_in_steps() -> None:
    averages = RunningAverages()
    averages.add([(1, 4.0), (3, math.nan), (5, 2.0)])
    assert averages.at(0) == [] and averages.at(4) == [4.0] and averages.at(5) == [3.0]
    averages.add([(2, 1.0)])
    averages.add([(1, math.inf)])  # no finite value: not a reference
    assert len(averages) == 2
    assert averages.at(4) == [1.0, 4.0] and averages.at(1) == [4.0]
    for step in range(MAX_STEPS + 10):
        averages.at(step)
    assert len(averages._at) == MAX_STEPS
    assert averages.at(5) == [1.0, 3.0]  # dropped, then rebuilt the same
