"""Experiment status as Katib's ``UpdateExperimentStatusCondition`` and
``IsCompletedExperimentRestartable`` decide it (``pkg/controller.v1beta1/experiment/util/
status_util.go``): the order of the endings, what counts as completed and as failed, the
reasons' names, and which finished experiments may be continued."""

from __future__ import annotations

import pytest

from tests.helpers import experiment_dict
from tuner import lifecycle
from tuner.spec import load_spec
from tuner.trials import ExperimentPhase, Trial, TrialState


def trial(number: int, state: TrialState, objective: float | None = None) -> Trial:
    return Trial(f"exp-{number:04d}", number, {"x": 0.0, "n": 1}, state, objective)


def test_every_finished_state_counts_toward_max_trial_count() -> None:
    """Katib's completed count: Succeeded, Failed, Killed, EarlyStopped, MetricsUnavailable."""
    spec = load_spec(
        experiment_dict(maxTrialCount=5, parallelTrialCount=1, maxFailedTrialCount=3)
    ).spec
    history = [
        trial(0, TrialState.SUCCEEDED, 1.0),
        trial(1, TrialState.FAILED),
        trial(2, TrialState.KILLED),
        trial(3, TrialState.EARLY_STOPPED, 2.0),
        trial(4, TrialState.METRICS_UNAVAILABLE),
    ]
    verdict = lifecycle.experiment_verdict(spec, history)
    assert verdict is not None and verdict.reason == "ExperimentMaxTrialsReached"
    assert lifecycle.experiment_verdict(spec, history[:4]) is None


def test_failures_are_checked_before_the_trial_budget() -> None:
    spec = load_spec(
        experiment_dict(maxTrialCount=2, parallelTrialCount=1, maxFailedTrialCount=1)
    ).spec
    history = [trial(0, TrialState.SUCCEEDED, 1.0), trial(1, TrialState.METRICS_UNAVAILABLE)]
    verdict = lifecycle.experiment_verdict(spec, history)
    assert verdict is not None
    assert (verdict.phase, verdict.reason) == (ExperimentPhase.FAILED, "ExperimentFailed")


@pytest.mark.parametrize(
    ("phase", "reason", "policy", "restartable"),
    [
        (ExperimentPhase.SUCCEEDED, "ExperimentMaxTrialsReached", "LongRunning", True),
        (ExperimentPhase.SUCCEEDED, "ExperimentMaxTrialsReached", "FromVolume", True),
        (ExperimentPhase.SUCCEEDED, "ExperimentMaxTrialsReached", "Never", False),
        (ExperimentPhase.SUCCEEDED, "ExperimentGoalReached", "LongRunning", False),
        (ExperimentPhase.SUCCEEDED, "ExperimentSuggestionEndReached", "LongRunning", False),
        (ExperimentPhase.FAILED, "ExperimentFailed", "LongRunning", False),
    ],
)
def test_which_finished_experiments_katib_restarts(
    phase: ExperimentPhase, reason: str, policy: str, restartable: bool
) -> None:
    spec = load_spec(experiment_dict(resumePolicy=policy)).spec
    assert lifecycle.restartable(phase, reason, spec) is restartable
