"""With spec.constraints, the leaderboard (and so the best trial and the status) puts every
feasible trial before any infeasible one, at any page, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.helpers import experiment_dict
from tuner.spec import load_spec
from tuner.storage import Repository
from tuner.trials import Observation, TrialState
from tuner.views import experiment_summary

N = 150
FEASIBLE_FROM = 100  # trials 0..99 have the best losses and break the constraint


@pytest.fixture
def record(repo: Repository):  # type: ignore[no-untyped-def]
    data = experiment_dict("ranked", constraints=[{"metricName": "accuracy", "min": 0.5}])
    data["spec"]["objective"]["metricStrategies"] = [{"name": "accuracy", "value": "latest"}]
    record = repo.create_experiment(load_spec(data))
    trials = repo.create_trials(record, [({"x": 0.0, "n": 1}, {}) for _ in range(N)])
    for i, trial in enumerate(trials):
        accuracy = 0.9 if i >= FEASIBLE_FROM else 0.1
        obs = [Observation("loss", 0, i / N), Observation("accuracy", 0, accuracy)]
        repo.add_observations(record, trial.name, obs)
        repo.finish_trial(record.id, trial.name, TrialState.SUCCEEDED)
    return record


def test_feasible_trials_rank_first_at_every_page(repo: Repository, record) -> None:  # type: ignore[no-untyped-def]
    names = [f"ranked-{i:04d}" for i in range(N)]
    expected = names[FEASIBLE_FROM:] + names[:FEASIBLE_FROM]  # each group by loss
    assert [t.name for t in repo.leaderboard(record, limit=None)] == expected
    for offset, limit in [(0, 1), (0, 20), (45, 10), (48, 5), (60, 100), (149, 5), (200, 3)]:
        page = repo.leaderboard(record, limit=limit, offset=offset)
        assert [t.name for t in page] == expected[offset : offset + limit], (offset, limit)
    best = repo.best_trial(record)
    assert best is not None and best.name == names[FEASIBLE_FROM]
    optimal = experiment_summary(repo, record)["currentOptimalTrial"]
    assert optimal["bestTrialName"] == names[FEASIBLE_FROM]
