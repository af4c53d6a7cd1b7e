"""When each trial last reported: the heartbeat of ask/tell trials (see tuner.asktell)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.helpers import experiment_dict
from tuner.spec import load_spec
from tuner.storage import Repository
from tuner.trials import Observation


def test_last_report_times_per_named_trial(repo: Repository) -> None:
    record = repo.create_experiment(load_spec(experiment_dict("beats")))
    a, b, c = repo.create_trials(record, [({"x": float(i), "n": 1}, {}) for i in range(3)])
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    repo.add_observations(
        record,
        a.name,
        [Observation("loss", 0, 1.0, t0), Observation("loss", 1, 0.5, t0 + timedelta(minutes=5))],
    )
    repo.add_observations(record, b.name, [Observation("accuracy", 0, 0.5, t0)])

    times = repo.last_report_times(record.id, [a.name, b.name, c.name])
    assert times == {a.name: t0 + timedelta(minutes=5), b.name: t0}  # c never reported
    assert repo.last_report_times(record.id, [b.name]) == {b.name: t0}
    assert repo.last_report_times(record.id, []) == {}
