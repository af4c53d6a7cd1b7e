"""The pure decisions of an experiment's life, without a database or an event loop."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.helpers import experiment_dict
from tuner import lifecycle
from tuner.algorithms.base import Suggestion
from tuner.errors import SpecError
from tuner.spec import ExperimentSpec, load_spec
from tuner.trials import ExperimentPhase, Trial, TrialState


def _spec(**overrides: Any) -> ExperimentSpec:
    return load_spec(experiment_dict(**overrides)).spec


def _trial(number: int, state: TrialState, objective: float | None = None) -> Trial:
    return Trial(f"exp-{number:04d}", number, {"x": 0.0, "n": 1}, state, objective)


def test_verdict_goal_then_failures_then_max_trials() -> None:
    data = experiment_dict(maxTrialCount=3, maxFailedTrialCount=1)
    data["spec"]["objective"]["goal"] = 0.1
    spec = load_spec(data).spec
    running = [_trial(0, TrialState.RUNNING)]
    assert lifecycle.experiment_verdict(spec, running) is None
    reached = [_trial(0, TrialState.SUCCEEDED, 0.5), _trial(1, TrialState.SUCCEEDED, 0.05)]
    verdict = lifecycle.experiment_verdict(spec, reached)
    assert verdict is not None
    assert verdict == (ExperimentPhase.SUCCEEDED, "ExperimentGoalReached", verdict.message)
    assert "exp-0001" in verdict.message
    failed = [_trial(0, TrialState.FAILED)]
    assert lifecycle.experiment_verdict(spec, failed).reason == "ExperimentFailed"  # type: ignore[union-attr]
    done = [_trial(i, TrialState.SUCCEEDED, 1.0) for i in range(3)]
    assert lifecycle.experiment_verdict(spec, done).reason == "ExperimentMaxTrialsReached"  # type: ignore[union-attr]


def _failed(number: int, state: TrialState, message: str) -> Trial:
    trial = _trial(number, state)
    trial.message = message
    return trial


@pytest.mark.parametrize(
    ("limit", "failures", "ends"),
    [(2, 1, False), (2, 2, True), (1, 1, True), (0, 0, False), (0, 1, True)],
)
def test_failed_trials_end_the_experiment_on_reaching_max_failed(
    limit: int, failures: int, ends: bool
) -> None:
    """Katib's rule: Failed + MetricsUnavailable, at least one, ``>= maxFailedTrialCount``."""
    spec = _spec(maxTrialCount=10, maxFailedTrialCount=limit)
    history = [_trial(0, TrialState.SUCCEEDED, 1.0)]
    states = [TrialState.FAILED, TrialState.METRICS_UNAVAILABLE]
    history += [_failed(i + 1, states[i % 2], f"why {i + 1}") for i in range(failures)]
    verdict = lifecycle.experiment_verdict(spec, history)
    if not ends:
        assert verdict is None
        return
    assert verdict is not None
    assert verdict.phase is ExperimentPhase.FAILED
    assert verdict.reason == "ExperimentFailed"
    assert f"{failures} trials failed" in verdict.message
    assert f"maxFailedTrialCount {limit}" in verdict.message
    assert verdict.message.endswith(f"exp-{failures:04d}: why {failures}")


def test_metrics_unavailable_counts_against_max_failed() -> None:
    spec = _spec(maxTrialCount=10, maxFailedTrialCount=2)
    history = [_failed(i, TrialState.METRICS_UNAVAILABLE, "never reported") for i in range(2)]
    verdict = lifecycle.experiment_verdict(spec, history)
    assert verdict is not None and verdict.phase is ExperimentPhase.FAILED
    assert "(2 MetricsUnavailable)" in verdict.message


def test_room_and_why_not() -> None:
    spec = _spec(maxTrialCount=4, parallelTrialCount=2)
    assert lifecycle.room_for_trials(spec, active=0, total=0) == 2
    assert lifecycle.room_for_trials(spec, active=1, total=3) == 1
    assert lifecycle.room_for_trials(spec, active=0, total=4) == 0
    assert "maxTrialCount (4)" in lifecycle.why_no_room(spec, 0, 4)
    assert "parallelTrialCount (2)" in lifecycle.why_no_room(spec, 2, 2)


def test_trial_rows_convert_and_cap() -> None:
    spec = _spec()
    suggestions = [Suggestion({"x": "0.5", "n": 2.0}, {"a": 1}), Suggestion({"x": 1, "n": 3})]
    rows = lifecycle.trial_rows(spec, suggestions, room=1)
    assert rows == [({"x": 0.5, "n": 2}, {"a": 1})]
    assert isinstance(rows[0][0]["n"], int)


def test_trial_ending() -> None:
    spec = _spec()
    failed = lifecycle.trial_ending(spec, False, True, "Exit", "code 3")
    assert (failed.state, failed.reason, failed.message) == (
        TrialState.FAILED,
        "TrialFailed. Job reason: Exit",
        "code 3",
    )
    lost = lifecycle.trial_ending(spec, False, True, lifecycle.TRIAL_LOST, "vanished")
    assert lost.reason == "TrialLost" and not lifecycle.counts_as_failure(
        Trial("exp-0000", 0, {}, lost.state, reason=lost.reason)
    )
    ok = lifecycle.trial_ending(spec, True, True, "Completed", "")
    assert (ok.state, ok.reason) == (TrialState.SUCCEEDED, "TrialSucceeded")  # Katib's words
    silent = lifecycle.trial_ending(spec, True, False, "Completed", "")
    assert silent.state is TrialState.METRICS_UNAVAILABLE and "loss" in (silent.message or "")
    assert "looked like" not in (silent.message or "")
    misnamed = lifecycle.trial_ending(spec, True, False, "Completed", "", ["Loss=0.5", "acc=1"])
    assert misnamed.message == (
        "the trial succeeded but never reported `loss`; lines looked like `Loss=0.5`, `acc=1` "
        "(names not in the spec's objective)"
    )


def test_best_ignores_unfinished_and_non_finite() -> None:
    objective = _spec().objective  # minimize loss
    history = [
        _trial(0, TrialState.SUCCEEDED, 0.3),
        _trial(1, TrialState.RUNNING, 0.01),
        _trial(2, TrialState.SUCCEEDED, math.nan),
        _trial(3, TrialState.EARLY_STOPPED, 0.2),
    ]
    assert lifecycle.new_best(objective, history, None) == 0.2
    assert lifecycle.new_best(objective, history, 0.2) is None
    assert lifecycle.new_best(objective, history, 0.25) == 0.2


def test_endings_of_the_experiment() -> None:
    assert lifecycle.suggestions_exhausted(0, 1) is None
    exhausted = lifecycle.suggestions_exhausted(0, 0)
    assert exhausted is not None and exhausted.reason == "ExperimentSuggestionEndReached"
    kill = lifecycle.kill_ending(lifecycle.stopped("bye"))
    assert (kill.state, kill.reason, kill.message) == (
        TrialState.KILLED,
        "ExperimentStopped",
        "bye",
    )


def test_budget_edit_and_resume() -> None:
    experiment = load_spec(experiment_dict(maxTrialCount=4))
    edited = lifecycle.edit_budget(experiment, {"maxTrialCount": 6, "maxFailedTrialCount": None})
    assert edited.spec.max_trial_count == 6 and edited.spec.max_failed_trial_count is None
    assert lifecycle.resumed_by(experiment.spec, edited.spec, {"maxTrialCount": 6}) == (
        "ExperimentRestarting",
        "maxTrialCount raised from 4 to 6",
    )
    lowered = lifecycle.edit_budget(experiment, {"maxTrialCount": 3})
    assert lifecycle.resumed_by(experiment.spec, lowered.spec, {"maxTrialCount": 3}) is None
    with pytest.raises(SpecError):
        lifecycle.edit_budget(experiment, {"objective": {}})


def test_lost_trials_do_not_use_up_the_failure_budget() -> None:
    spec = _spec(maxTrialCount=5, maxFailedTrialCount=1)
    lost = [_trial(i, TrialState.FAILED) for i in range(3)]
    for t in lost:
        t.reason = lifecycle.TRIAL_LOST
    assert lifecycle.experiment_verdict(spec, lost) is None
    failed = [*lost, _trial(3, TrialState.FAILED), _trial(4, TrialState.FAILED)]
    verdict = lifecycle.experiment_verdict(spec, failed)
    assert verdict is not None and verdict.reason == "ExperimentFailed"
    assert verdict.message.startswith("2 trials failed")
