"""Repository tests, on SQLite and (when configured) on PostgreSQL."""

from __future__ import annotations

import math

import pytest

from tests.helpers import experiment_dict
from tuner.errors import Conflict, NotFound
from tuner.spec import load_spec
from tuner.storage import Repository
from tuner.trials import ExperimentPhase, Observation, TrialState


def _experiment(repo: Repository, name: str = "exp", **overrides: object):  # type: ignore[no-untyped-def]
    return repo.create_experiment(load_spec(experiment_dict(name, **overrides)))


def test_create_get_list_delete(repo: Repository) -> None:
    record = _experiment(repo)
    assert record.phase is ExperimentPhase.CREATED
    assert repo.get_experiment("default", "exp").experiment == record.experiment
    with pytest.raises(Conflict):
        _experiment(repo)
    _experiment(repo, "other")
    assert {r.name for r in repo.list_experiments()} == {"exp", "other"}
    assert [r.name for r in repo.list_experiments(limit=1, offset=0)] != [
        r.name for r in repo.list_experiments(limit=1, offset=1)
    ]
    repo.set_phase(record.id, ExperimentPhase.RUNNING)
    assert [r.name for r in repo.list_experiments(phase="Running")] == ["exp"]
    repo.create_trials(record, [({"x": 0.1, "n": 1}, {})])
    repo.delete_experiment(record.id)
    with pytest.raises(NotFound):
        repo.get_experiment("default", "exp")


def test_trials_are_numbered_and_finish_once(repo: Repository) -> None:
    record = _experiment(repo)
    first = repo.create_trials(record, [({"x": 0.1, "n": 1}, {}), ({"x": 0.2, "n": 2}, {})])
    second = repo.create_trials(record, [({"x": 0.3, "n": 3}, {"k": 1})])
    assert [t.number for t in first + second] == [0, 1, 2]
    assert second[0].name == "exp-0002" and second[0].attrs == {"k": 1}
    repo.mark_running(record.id, "exp-0000", "pid:1")
    assert repo.finish_trial(record.id, "exp-0000", TrialState.SUCCEEDED, "Completed")
    assert not repo.finish_trial(record.id, "exp-0000", TrialState.FAILED, "late")
    trial = repo.get_trial(record.id, "exp-0000")
    assert trial.state is TrialState.SUCCEEDED and trial.runner_ref == "pid:1"
    counts = repo.counts(record.id)
    assert counts[TrialState.SUCCEEDED] == 1 and counts[TrialState.CREATED] == 2


def test_observations_are_idempotent_and_follow_strategies(repo: Repository) -> None:
    data = experiment_dict()
    data["spec"]["objective"]["metricStrategies"] = [{"name": "accuracy", "value": "latest"}]
    record = repo.create_experiment(load_spec(data))
    (trial,) = repo.create_trials(record, [({"x": 0.1, "n": 1}, {})])
    batch = [
        Observation("loss", 0, 0.5),
        Observation("loss", 1, 0.2),
        Observation("loss", 2, 0.3),
        Observation("accuracy", 0, 0.7),
        Observation("accuracy", 1, 0.6),
    ]
    assert repo.add_observations(record, trial.name, batch) == 5
    # A retried push of the same steps stores nothing and changes nothing.
    assert repo.add_observations(record, trial.name, batch[:2]) == 0
    stored = repo.get_trial(record.id, trial.name)
    assert stored.objective == 0.2  # min strategy for the minimized objective
    assert stored.metrics == {"loss": 0.2, "accuracy": 0.6}  # latest for accuracy
    assert stored.steps == 3
    curve = [(o.step, o.value) for o in repo.observations(record.id, trial.name, "loss")]
    assert curve == [(0, 0.5), (1, 0.2), (2, 0.3)]
    # NaN is stored (as NULL) and read back as NaN, never chosen as the best value.
    repo.add_observations(record, trial.name, [Observation("loss", 3, math.nan)])
    assert math.isnan(repo.observations(record.id, trial.name, "loss")[-1].value)
    assert repo.get_trial(record.id, trial.name).objective == 0.2
    with pytest.raises(NotFound):
        repo.add_observations(record, "nope", batch)


def test_leaderboard_orders_by_objective_and_by_any_metric(repo: Repository) -> None:
    record = _experiment(repo)
    trials = repo.create_trials(record, [({"x": float(i), "n": 1}, {}) for i in range(5)])
    losses = [0.4, 0.1, None, 0.3, 0.2]
    accuracies = [0.5, 0.9, 0.1, 0.95, 0.7]
    for trial, loss, acc in zip(trials, losses, accuracies, strict=True):
        obs = [Observation("accuracy", 0, acc)]
        if loss is not None:
            obs.append(Observation("loss", 0, loss))
        repo.add_observations(record, trial.name, obs)
        repo.finish_trial(record.id, trial.name, TrialState.SUCCEEDED)
    by_loss = [t.name for t in repo.leaderboard(record, limit=None)]
    assert by_loss == ["exp-0001", "exp-0004", "exp-0003", "exp-0000", "exp-0002"]
    by_acc = [t.name for t in repo.leaderboard(record, metric="accuracy", limit=3)]
    # accuracy is an additional metric of a minimize objective: its default strategy is min.
    assert by_acc == ["exp-0002", "exp-0000", "exp-0004"]
    page = repo.leaderboard(record, limit=2, offset=1)
    assert [t.name for t in page] == ["exp-0004", "exp-0003"]
    best = repo.best_trial(record)
    assert best is not None and best.name == "exp-0001"


def test_history_with_curves(repo: Repository) -> None:
    record = _experiment(repo)
    (a, b) = repo.create_trials(record, [({"x": 0.1, "n": 1}, {}), ({"x": 0.2, "n": 1}, {})])
    repo.add_observations(record, a.name, [Observation("loss", s, 1.0 / (s + 1)) for s in range(3)])
    history = repo.history(record.id, with_curves=True)
    assert [t.name for t in history] == [a.name, b.name]
    assert history[0].curve == ((0, 1.0), (1, 0.5), (2, 1.0 / 3))
    assert history[1].curve == ()


def test_leases_give_an_experiment_to_one_owner_at_a_time(repo: Repository) -> None:
    record = _experiment(repo)
    assert repo.acquire_lease(record.id, "a", ttl=30)
    assert repo.acquire_lease(record.id, "a", ttl=30)  # renewing our own
    assert not repo.acquire_lease(record.id, "b", ttl=30)
    assert repo.renew_leases("a", [record.id], ttl=30) == {record.id}
    assert repo.renew_leases("b", [record.id], ttl=30) == set()
    # An expired lease can be taken over; the old owner then no longer holds it.
    assert repo.acquire_lease(record.id, "a", ttl=-1)
    assert repo.acquire_lease(record.id, "b", ttl=30)
    assert repo.renew_leases("a", [record.id], ttl=30) == set()
    repo.release_lease(record.id, "a")  # not the owner: no effect
    assert not repo.acquire_lease(record.id, "a", ttl=30)
    repo.release_lease(record.id, "b")
    assert repo.acquire_lease(record.id, "a", ttl=30)


def test_spec_parsed_once_and_never_stale(repo: Repository) -> None:
    record = _experiment(repo)
    first = repo.experiment_by_id(record.id).experiment
    assert repo.experiment_by_id(record.id).experiment is first  # parsed once per revision
    edited = load_spec(experiment_dict(maxTrialCount=9))
    repo.update_spec(record.id, edited)
    assert repo.experiment_by_id(record.id).experiment.spec.max_trial_count == 9
    assert repo.get_experiment("default", "exp").experiment == edited


def test_a_nul_in_a_message_is_stored_the_same_on_both_databases(repo: Repository) -> None:
    # A trial's output can carry a NUL into its message (a JSON metrics file's key, say);
    # PostgreSQL's text cannot hold one, so both databases store U+FFFD instead.
    record = repo.create_experiment(load_spec(experiment_dict("nul")))
    (trial,) = repo.create_trials(record, [({"x": 0.1, "n": 1}, {})])
    assert repo.finish_trial(record.id, trial.name, TrialState.FAILED, "Error", "a\x00b")
    assert repo.get_trial(record.id, trial.name).message == "a\ufffdb"
    repo.set_phase(record.id, ExperimentPhase.FAILED, "Failed", "c\x00d")
    assert repo.experiment_by_id(record.id).message == "c\ufffdd"
