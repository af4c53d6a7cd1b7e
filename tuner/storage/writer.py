"""One writer for observations: reports that arrive together share a transaction.

Every pushed report and every parsed log line of a server goes through
:meth:`ObservationWriter.write`. A single task takes whatever is queued, writes it in one
transaction on the database thread (:class:`~tuner.storage.aio.AsyncRepository`), and only
then answers each caller, so an acknowledged report is stored. With one writer, concurrent
reporters never contend for SQLite's write lock, and under load the cost of a transaction is
shared by many reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from tuner.storage.aio import AsyncRepository, as_async
from tuner.storage.repository import ExperimentRecord, Repository
from tuner.trials import Observation

log = logging.getLogger(__name__)


@dataclass
class _Request:
    experiment: ExperimentRecord
    trial: str
    observations: Sequence[Observation]
    done: asyncio.Future[int]


class ObservationWriter:
    def __init__(self, repo: Repository | AsyncRepository, max_batch: int = 256) -> None:
        self.db = as_async(repo)
        self._own_db = self.db is not repo
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # transactions written (for tests and metrics)

    @property
    def depth(self) -> int:
        """Requests waiting to be written."""
        return self._queue.qsize()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="observation writer")

    async def close(self) -> None:
        """Write what is queued, then stop."""
        if self._task is None:
            return
        try:
            await self._drain()
        finally:
            if self._own_db:
                self.db.close()

    async def _drain(self) -> None:
        assert self._task is not None
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def write(
        self, experiment: ExperimentRecord, trial: str, observations: Sequence[Observation]
    ) -> int:
        """Store observations of one trial; returns how many were new (see Repository)."""
        if self._task is None:  # not started (tests, one-off use): write directly
            return await self.db.add_observations(experiment, trial, observations)
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Request(experiment, trial, observations, done))
        return await done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[_Request]) -> None:
        try:
            counts = await self.db.add_observation_batches(
                [(r.experiment, r.trial, r.observations) for r in batch]
            )
        except Exception as error:
            if len(batch) > 1:
                # One bad request (a deleted trial, say) must not fail the others: write singly.
                for request in batch:
                    await self._write([request])
            elif not batch[0].done.done():
                batch[0].done.set_exception(error)
            return
        self.batches += 1
        for request, count in zip(batch, counts, strict=True):
            if not request.done.done():
                request.done.set_result(count)
