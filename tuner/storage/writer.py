"""One writer for observations: reports that arrive together share a transaction.

Every pushed report (:meth:`ObservationWriter.push`: numbered and checked against the trial's
state inside the transaction) and every parsed log line (:meth:`ObservationWriter.write`) of
a server goes through it. A single task takes whatever is queued, writes it in one
transaction on the database thread (:class:`~tuner.storage.aio.AsyncRepository`), and only
then answers each caller, so an acknowledged report is stored. With one writer, concurrent
reporters never contend for SQLite's write lock, and under load the cost of a transaction is
shared by many reports. The queue is not bounded here: ``tuner serve`` bounds the pushes in
flight before they reach it (:mod:`tuner.api.admission`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tuner.storage.aio import AsyncRepository, as_async
from tuner.storage.repository import ExperimentRecord, Repository
from tuner.trials import Observation

log = logging.getLogger(__name__)


@dataclass
class _Request:
    """Observations numbered already (``push`` is None), or the values of a push."""

    experiment: ExperimentRecord
    trial: str
    observations: Sequence[Observation]
    push: tuple[int | None, Mapping[str, float]] | None
    done: asyncio.Future[Any]


class ObservationWriter:
    """The single writer of observations (see the module).

    Args:
        repo: the database.
        max_batch: the most requests written in one transaction.
    """

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
        count: int = await self._submit(_Request(experiment, trial, observations, None, _future()))
        return count

    async def push(
        self,
        experiment: ExperimentRecord,
        trial: str,
        step: int | None,
        values: Mapping[str, float],
    ) -> list[Observation] | None:
        """Store a push of a trial (see :meth:`Repository.store_pushes`): its observations,
        numbered, or ``None`` when the trial has finished. Answers once they are committed."""
        if self._task is None:
            return (
                await self.db.run(Repository.store_pushes, [(experiment, trial, step, values)])
            )[0]
        request = _Request(experiment, trial, (), (step, values), _future())
        stored: list[Observation] | None = await self._submit(request)
        return stored

    async def _submit(self, request: _Request) -> Any:
        self._queue.put_nowait(request)  # unbounded: callers are admitted before (api.admission)
        return await request.done

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
            results = await self.db.run(_write_batch, batch)
        except Exception as error:
            if len(batch) > 1:
                # One bad request (a deleted trial, say) must not fail the others: write singly.
                for request in batch:
                    await self._write([request])
            elif not batch[0].done.done():
                batch[0].done.set_exception(error)
            return
        self.batches += 1
        for request, result in zip(batch, results, strict=True):
            if not request.done.done():
                request.done.set_result(result)


def _future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


def _write_batch(repo: Repository, batch: Sequence[_Request]) -> list[Any]:
    """On the database thread: the batch's observations, then its pushes (one hop)."""
    results: dict[int, Any] = {}
    written = [(i, r) for i, r in enumerate(batch) if r.push is None]
    pushed = [(i, r) for i, r in enumerate(batch) if r.push is not None]
    if written:
        counts = repo.add_observation_batches(
            [(r.experiment, r.trial, r.observations) for _, r in written]
        )
        results.update(zip((i for i, _ in written), counts, strict=True))
    if pushed:
        stored = repo.store_pushes(
            [(r.experiment, r.trial, *r.push) for _, r in pushed if r.push is not None]
        )
        results.update(zip((i for i, _ in pushed), stored, strict=True))
    return [results[i] for i in range(len(batch))]
