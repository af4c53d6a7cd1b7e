"""Katib's ``latest`` metric strategy is the value with the latest timestamp, not the highest step
(``getMetrics`` in Katib's trial controller); a tie goes to the later observation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.helpers import experiment_dict
from tuner.spec import load_spec
from tuner.storage import Repository
from tuner.trials import Observation

T0 = datetime(2024, 3, 4, 17, 55, 8, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_latest_follows_the_timestamp(repo: Repository) -> None:
    data = experiment_dict()
    data["spec"]["objective"]["metricStrategies"] = [
        {"name": "loss", "value": "latest"},
        {"name": "accuracy", "value": "latest"},
    ]
    record = repo.create_experiment(load_spec(data))
    (trial,) = repo.create_trials(record, [({"x": 0.1, "n": 1}, {})])
    # Step 1 was stamped before step 0 (a file with timestamps out of order): step 0 is latest.
    batch = [Observation("loss", 0, 0.5, at(10)), Observation("loss", 1, 0.2, at(5))]
    repo.add_observations(record, trial.name, batch)
    assert repo.get_trial(record.id, trial.name).objective == 0.5
    # A later batch with an older time changes nothing; a newer one wins.
    repo.add_observations(record, trial.name, [Observation("loss", 2, 0.1, at(7))])
    assert repo.get_trial(record.id, trial.name).objective == 0.5
    repo.add_observations(record, trial.name, [Observation("loss", 3, 0.4, at(11))])
    assert repo.get_trial(record.id, trial.name).objective == 0.4
    # A tie goes to the later observation.
    repo.add_observations(record, trial.name, [Observation("loss", 4, 0.3, at(11))])
    stored = repo.get_trial(record.id, trial.name)
    assert stored.objective == 0.3 and stored.steps == 5
    # Without times out of order, latest is the last one, as before.
    obs = [Observation("accuracy", s, v, at(s)) for s, v in enumerate([0.7, 0.9, 0.8])]
    repo.add_observations(record, trial.name, obs)
    assert repo.get_trial(record.id, trial.name).metrics["accuracy"] == 0.8
