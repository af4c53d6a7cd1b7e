"""Trial state changes that arrive together share a transaction (tuner.storage.coalesce)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from tests.helpers import experiment_dict
from tuner.spec import load_spec
from tuner.storage import Repository
from tuner.storage.aio import AsyncRepository
from tuner.storage.coalesce import Coalescer
from tuner.trials import TrialState


def test_calls_that_arrive_together_are_written_together_each_with_its_result() -> None:
    calls: list[list[int]] = []

    def write_many(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        return [i * 10 for i in items]

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        coalescer = Coalescer(lambda f: loop.run_in_executor(None, f), write_many, max_batch=40)
        return await asyncio.gather(*(coalescer(i) for i in range(100)))

    assert asyncio.run(main()) == [i * 10 for i in range(100)]
    assert sorted(i for batch in calls for i in batch) == list(range(100))  # each once
    assert [len(batch) for batch in calls] == [40, 40, 20]


def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_goes_on() -> None:
    attempts = 0

    def write_many(items: Sequence[str]) -> list[str]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise OSError("disk I/O error")
        return list(items)

    async def main() -> tuple[list[object], str]:
        loop = asyncio.get_running_loop()
        coalescer = Coalescer(lambda f: loop.run_in_executor(None, f), write_many)
        first = await asyncio.gather(coalescer("a"), coalescer("b"), return_exceptions=True)
        return first, await coalescer("c")

    first, later = asyncio.run(main())
    assert [type(e) for e in first] == [OSError, OSError]
    assert later == "c"


def test_a_thousand_trials_started_and_ended_together_take_few_transactions(
    repo: Repository,
) -> None:
    async def main() -> tuple[int, int, list[bool]]:
        db = AsyncRepository(repo)
        record = await db.create_experiment(
            load_spec(experiment_dict(maxTrialCount=1000, parallelTrialCount=1000))
        )
        trials = await db.create_trials(record, [({"x": 0.5, "n": 1}, {})] * 1000)
        await asyncio.gather(*(db.mark_running(record.id, t.name, f"job:{t.name}") for t in trials))
        batchers = db._coalescers()
        ended = await asyncio.gather(
            *(db.finish_trial(record.id, t.name, TrialState.SUCCEEDED) for t in trials),
            db.finish_trial(record.id, trials[0].name, TrialState.FAILED),  # already ended
        )
        states = {t.state for t in await db.history(record.id)}
        db.close()
        assert states == {TrialState.SUCCEEDED}
        return batchers.marks.batches, batchers.endings.batches, ended

    marks, endings, ended = asyncio.run(main())
    assert ended == [True] * 1000 + [False]  # each trial ended once, by the first ending
    assert 2 <= marks <= 10 and 2 <= endings <= 10, (marks, endings)


@pytest.mark.parametrize("max_batch", [1, 3])
def test_batches_never_exceed_their_bound(max_batch: int) -> None:
    sizes: list[int] = []

    def write_many(items: Sequence[int]) -> list[None]:
        sizes.append(len(items))
        return [None] * len(items)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        coalescer = Coalescer(lambda f: loop.run_in_executor(None, f), write_many, max_batch)
        await asyncio.gather(*(coalescer(i) for i in range(7)))

    asyncio.run(main())
    assert sum(sizes) == 7 and max(sizes) <= max_batch
