"""An event stream of an experiment driven elsewhere polls the database at a cost that does
not grow with the trials running: the previously active ones are read in one query."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from tests.helpers import experiment_dict
from tuner.events import _Poller
from tuner.spec import load_spec
from tuner.storage import Repository
from tuner.trials import TrialState


def statements(repo: Repository, action: Any) -> int:
    """How many SQL statements ``action()`` sends."""
    count = 0

    def counter(*_: object) -> None:
        nonlocal count
        count += 1

    engine = repo.engine
    event.listen(engine, "before_cursor_execute", counter)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", counter)
    return count


def test_a_poll_costs_the_same_with_5_or_200_trials_running(repo: Repository) -> None:
    costs = []
    for n in (5, 200):
        record = repo.create_experiment(load_spec(experiment_dict(f"poll-{n}")))
        trials = repo.create_trials(record, [({"lr": 0.01, "optimizer": "sgd"}, {})] * n)
        for trial in trials:
            repo.mark_running(record.id, trial.name, "test")
        poller = _Poller(repo, record)
        repo.finish_trial(record.id, trials[1].name, TrialState.SUCCEEDED)
        repo.finish_trial(record.id, trials[-1].name, TrialState.FAILED, "Error", "exit code 1")
        events: list[Any] = []
        costs.append(statements(repo, lambda p=poller, e=events: e.extend(p.poll(repo)[0])))
        ended = {(e.trial, e.state) for e in events if e.kind == "trial"}
        assert ended == {(trials[1].name, "Succeeded"), (trials[-1].name, "Failed")}
        assert set(poller.active) == {t.name for t in trials} - {trials[1].name, trials[-1].name}
    assert costs[0] == costs[1], costs
