"""Early stopping wired to real trial processes: bad trials are killed and marked EarlyStopped.

A trial may write its output faster than the controller reads it (a loaded machine: the lines
wait in the pipe), so by the time the rule decides, the process may have printed every step.
What is stored must still end at the deciding step: the ``burst`` case makes that the rule
(the trial prints all its steps at once) instead of a matter of timing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import command, experiment_dict, run
from tuner.spec import load_spec
from tuner.storage import Repository, make_engine
from tuner.trials import ExperimentPhase, TrialState
from tuner.views import experiment_summary

STEPS = 12


@pytest.mark.parametrize(
    ("rule", "settings", "sleep"),
    [
        ("medianstop", {"min_trials_required": "2", "start_step": "2"}, 0.05),
        ("asha", {"min_resource": "2", "reduction_factor": "2"}, 0.05),
        ("medianstop", {"min_trials_required": "2", "start_step": "2"}, 0.0),
    ],
    ids=["medianstop", "asha", "medianstop-burst"],
)
def test_bad_trials_stop_early_and_save_steps(
    tmp_path: Path, rule: str, settings: dict[str, str], sleep: float
) -> None:
    repo = Repository(make_engine(f"sqlite:///{tmp_path / 'tuner.db'}"))
    data = experiment_dict(
        maxTrialCount=10,
        parallelTrialCount=2,
        algorithm={"algorithmName": "grid"},
        parameters=[
            # Good values first, so that the bad half meets completed good trials.
            {
                "name": "x",
                "parameterType": "discrete",
                "feasibleSpace": {
                    "list": ["0.5", "0.6", "0.4", "0.45", "3", "-3", "4", "-4", "5", "-5"]
                },
            },
        ],
        earlyStopping={
            "algorithmName": rule,
            "algorithmSettings": [{"name": k, "value": v} for k, v in settings.items()],
        },
    )
    data["spec"]["trialTemplate"]["trialParameters"] = [{"name": "x", "reference": "x"}]
    cmd = command(data)
    cmd[:] = [*cmd[:3], f"--steps={STEPS}", f"--sleep={sleep}"]
    record = repo.create_experiment(load_spec(data))
    final = run(repo, record, tmp_path)
    assert final.phase is ExperimentPhase.SUCCEEDED

    trials = repo.trials(record.id)
    stopped = [t for t in trials if t.state is TrialState.EARLY_STOPPED]
    assert stopped, [(t.name, t.state, t.steps) for t in trials]
    assert any(abs(t.parameters["x"]) >= 3 for t in stopped)
    if rule == "medianstop":  # ASHA also cuts the weaker of two good trials, by design
        assert all(abs(t.parameters["x"]) >= 3 for t in stopped)
    for t in stopped:
        assert t.message and "step" in t.message
        assert t.steps < STEPS
    best = repo.best_trial(record)
    assert best is not None and best.state is TrialState.SUCCEEDED
    assert best.parameters["x"] == 0.5

    summary = experiment_summary(repo, record)
    assert summary["totalSteps"] == sum(t.steps for t in trials)
    assert summary["totalSteps"] < summary["stepsWithoutStopping"] == STEPS * len(trials)
