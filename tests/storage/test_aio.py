"""The async facade: repository calls run on one database thread, in the order awaited."""

from __future__ import annotations

import asyncio
import threading

from tests.helpers import experiment_dict
from tuner.spec import load_spec
from tuner.storage import Repository
from tuner.storage.aio import AsyncRepository
from tuner.trials import TrialState


def test_calls_run_off_the_loop_on_one_thread_in_order(repo: Repository) -> None:
    async def scenario() -> tuple[set[str], list[str]]:
        db = AsyncRepository(repo)
        loop_thread = threading.current_thread().name
        record = await db.create_experiment(load_spec(experiment_dict()))
        threads = await asyncio.gather(
            *(db.run(lambda _repo: threading.current_thread().name) for _ in range(5))
        )
        created = await db.create_trials(record, [({"x": 0.1, "n": 1}, {})] * 3)
        await asyncio.gather(
            *(db.finish_trial(record.id, t.name, TrialState.FAILED, "R", "m") for t in created)
        )
        states = [t.state.value for t in await db.history(record.id)]
        db.close()
        assert loop_thread not in threads
        return set(threads), states

    threads, states = asyncio.run(scenario())
    assert len(threads) == 1
    assert states == ["Failed"] * 3
