"""Pushes of several trials stored in one transaction: numbered, checked, folded, deduplicated."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers import experiment_dict
from tuner.errors import NotFound
from tuner.intake import ExperimentCache
from tuner.spec import load_spec
from tuner.storage import Repository
from tuner.storage.aio import AsyncRepository
from tuner.trials import TrialState


def test_one_call_numbers_checks_and_folds_pushes_of_several_trials(repo: Repository) -> None:
    record = repo.create_experiment(load_spec(experiment_dict()))
    a, b, done = repo.create_trials(record, [({"x": 0.1 * i, "n": 1}, {}) for i in range(3)])
    repo.finish_trial(record.id, done.name, TrialState.SUCCEEDED)
    repo.store_pushes([(record, a.name, 4, {"loss": 3.0})])

    stored = repo.store_pushes(
        [
            (record, a.name, None, {"loss": 2.0, "accuracy": 0.5}),  # loss: step 5, accuracy: 0
            (record, b.name, 0, {"loss": 7.0}),
            (record, a.name, None, {"loss": 1.0}),  # after the push above, same call: step 6
            (record, done.name, 9, {"loss": 0.0}),  # finished: nothing stored
            (record, b.name, 0, {"loss": 99.0}),  # a repeat: the first value stays
            (record, b.name, 1, {}),  # nothing to store, the trial is running
        ]
    )

    steps = [None if s is None else [(o.metric, o.step, o.value) for o in s] for s in stored]
    assert steps == [
        [("loss", 5, 2.0), ("accuracy", 0, 0.5)],
        [("loss", 0, 7.0)],
        [("loss", 6, 1.0)],
        None,
        [("loss", 0, 99.0)],
        [],
    ]
    first = repo.get_trial(record.id, a.name)
    assert (first.objective, first.steps, first.metrics) == (1.0, 3, {"loss": 1.0, "accuracy": 0.5})
    second = repo.get_trial(record.id, b.name)
    assert (second.objective, second.steps) == (7.0, 1)
    assert [(o.step, o.value) for o in repo.observations(record.id, b.name)] == [(0, 7.0)]
    assert repo.observations(record.id, done.name) == []


def test_an_unknown_trial_fails_the_whole_call(repo: Repository) -> None:
    record = repo.create_experiment(load_spec(experiment_dict()))
    (trial,) = repo.create_trials(record, [({"x": 0.1, "n": 1}, {})])
    with pytest.raises(NotFound):
        repo.store_pushes(
            [(record, trial.name, 0, {"loss": 1.0}), (record, "nope", 0, {"loss": 1.0})]
        )
    assert repo.observations(record.id, trial.name) == []  # all or nothing


def test_experiment_cache_reads_once_per_miss_and_forgets(repo: Repository) -> None:
    record = repo.create_experiment(load_spec(experiment_dict()))

    async def scenario() -> tuple[int, int, int]:
        db = AsyncRepository(repo)
        try:
            cache = ExperimentCache(db, ttl=60)
            records = await asyncio.gather(*(cache.get("default", "exp") for _ in range(20)))
            assert {r.id for r in records} == {record.id}
            together = cache.misses
            await cache.get("default", "exp")
            cached = cache.misses
            cache.forget("default", "exp")
            await cache.get("default", "exp")
            with pytest.raises(NotFound):
                await cache.get("default", "missing")
            return together, cached, cache.misses
        finally:
            db.close()

    assert asyncio.run(scenario()) == (1, 1, 3)
