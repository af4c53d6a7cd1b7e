"""The observation writer batches concurrent writes and isolates a bad one."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers import experiment_dict
from tuner.errors import NotFound
from tuner.spec import load_spec
from tuner.storage import Repository
from tuner.storage.writer import ObservationWriter
from tuner.trials import Observation


def test_concurrent_writes_share_transactions(repo: Repository) -> None:
    record = repo.create_experiment(load_spec(experiment_dict()))
    trials = repo.create_trials(record, [({"x": 0.1 * i, "n": 1}, {}) for i in range(10)])

    async def scenario() -> tuple[list[int], int, list[int | BaseException]]:
        writer = ObservationWriter(repo)
        writer.start()
        writes = [
            writer.write(record, t.name, [Observation("loss", step, float(step))])
            for t in trials
            for step in range(20)
        ]
        results = await asyncio.gather(*writes)
        batches = writer.batches
        # A bad request in a batch fails alone; the others are stored.
        mixed = await asyncio.gather(
            writer.write(record, trials[0].name, [Observation("loss", 20, 0.0)]),
            writer.write(record, "no-such-trial", [Observation("loss", 0, 1.0)]),
            writer.write(record, trials[1].name, [Observation("loss", 20, 0.0)]),
            return_exceptions=True,
        )
        await writer.close()
        return results, batches, mixed

    results, batches, mixed = asyncio.run(scenario())
    assert results == [1] * 200
    assert batches < 20  # 200 concurrent writes, a few transactions
    assert mixed[0] == 1 and mixed[2] == 1 and isinstance(mixed[1], NotFound)
    for t in trials:
        assert repo.get_trial(record.id, t.name).steps == (21 if t.number < 2 else 20)


def test_unstarted_writer_writes_directly(repo: Repository) -> None:
    record = repo.create_experiment(load_spec(experiment_dict()))
    (trial,) = repo.create_trials(record, [({"x": 0.1, "n": 1}, {})])
    writer = ObservationWriter(repo)
    assert asyncio.run(writer.write(record, trial.name, [Observation("loss", 0, 1.0)])) == 1
    with pytest.raises(NotFound):
        asyncio.run(writer.write(record, "nope", [Observation("loss", 0, 1.0)]))
