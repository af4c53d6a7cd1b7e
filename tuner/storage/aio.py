"""The repository as coroutine code sees it: every call off the event loop, in order."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, NamedTuple, ParamSpec, TypeVar

from tuner.spec import Experiment
from tuner.storage.coalesce import Coalescer
from tuner.storage.repository import ExperimentRecord, Repository, RunningMark, TrialFinish
from tuner.trials import ExperimentPhase, Observation, Trial, TrialState

P = ParamSpec("P")
T = TypeVar("T")


class _Coalescers(NamedTuple):
    loop: asyncio.AbstractEventLoop
    marks: Coalescer[RunningMark, bool]
    endings: Coalescer[TrialFinish, bool]


class AsyncRepository:
    """The one door from coroutine code to the database.

    The rule, enforced by structure:

    * **Coroutine code** (``async def``: the controller, the service, ask/tell, the lease keeper,
      event streams, ``async def`` API routes) reaches the database only through this class.
      Each method runs the synchronous :class:`Repository` call in **one dedicated worker
      thread**, so a query never blocks the event loop and writes from one process reach
      SQLite in the order they were awaited (no two of them contend for its write lock).
    * **Synchronous code** (the CLI, plain ``def`` FastAPI routes and dependencies, which
      FastAPI runs in its threadpool, benchmarks) uses :class:`Repository` directly.
    * Several calls that belong together go to the worker thread as one hop with
      :meth:`run` (a function of the synchronous repository): one thread switch instead of
      several, and nothing else interleaves between them.

    The hot path stays batched: observations (every pushed report, every parsed log line) are
    written by :class:`tuner.storage.writer.ObservationWriter`, which gathers whatever is
    queued into one transaction and submits it here as a single call.

    Args:
        repo: the synchronous repository whose calls this one runs.
    """

    def __init__(self, repo: Repository) -> None:
        self.sync = repo
        """The synchronous repository: for code that already runs on the database thread."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tuner-db")
        self._batchers: _Coalescers | None = None

    def _coalescers(self) -> _Coalescers:
        """This event loop's batchers of trial state changes (made on first use)."""
        loop = asyncio.get_running_loop()
        if self._batchers is None or self._batchers.loop is not loop:
            run = functools.partial(loop.run_in_executor, self._executor)
            self._batchers = _Coalescers(
                loop,
                Coalescer(run, self.sync.mark_running_many),
                Coalescer(run, self.sync.finish_trials),
            )
        return self._batchers

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(repo, *args, **kwargs)`` on the database thread (several calls in one hop)."""
        return await self._call(fn, self.sync, *args, **kwargs)

    async def _call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Let the queued calls finish, then stop the database thread (the engine stays open)."""
        self._executor.shutdown(wait=True)

    # -- experiments -----------------------------------------------------------------------

    async def create_experiment(self, experiment: Experiment) -> ExperimentRecord:
        return await self._call(self.sync.create_experiment, experiment)

    async def get_experiment(self, namespace: str, name: str) -> ExperimentRecord:
        return await self._call(self.sync.get_experiment, namespace, name)

    async def experiment_by_id(self, experiment_id: int) -> ExperimentRecord:
        return await self._call(self.sync.experiment_by_id, experiment_id)

    async def list_experiments(
        self,
        namespace: str | None = None,
        phase: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[ExperimentRecord]:
        return await self._call(self.sync.list_experiments, namespace, phase, limit, offset)

    async def set_phase(
        self,
        experiment_id: int,
        phase: ExperimentPhase,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        await self._call(self.sync.set_phase, experiment_id, phase, reason, message)

    async def update_spec(self, experiment_id: int, experiment: Experiment) -> None:
        await self._call(self.sync.update_spec, experiment_id, experiment)

    async def delete_experiment(self, experiment_id: int) -> None:
        await self._call(self.sync.delete_experiment, experiment_id)

    async def acquire_lease(self, experiment_id: int, owner: str, ttl: float) -> bool:
        return await self._call(self.sync.acquire_lease, experiment_id, owner, ttl)

    async def renew_leases(self, owner: str, experiment_ids: Iterable[int], ttl: float) -> set[int]:
        return await self._call(self.sync.renew_leases, owner, list(experiment_ids), ttl)

    async def release_lease(self, experiment_id: int, owner: str) -> None:
        await self._call(self.sync.release_lease, experiment_id, owner)

    # -- trials ----------------------------------------------------------------------------

    async def create_trials(
        self,
        experiment: ExperimentRecord,
        suggestions: Sequence[tuple[dict[str, Any], dict[str, Any]]],
    ) -> list[Trial]:
        return await self._call(self.sync.create_trials, experiment, suggestions)

    async def history(
        self,
        experiment_id: int,
        *,
        with_curves: bool = False,
        after_number: int = -1,
        limit: int | None = None,
    ) -> list[Trial]:
        return await self._call(
            self.sync.history,
            experiment_id,
            with_curves=with_curves,
            after_number=after_number,
            limit=limit,
        )

    async def get_trial(self, experiment_id: int, name: str) -> Trial:
        return await self._call(self.sync.get_trial, experiment_id, name)

    async def trials(
        self, experiment_id: int, states: Iterable[TrialState] | None = None
    ) -> list[Trial]:
        return await self._call(self.sync.trials, experiment_id, states)

    async def mark_running(
        self,
        experiment_id: int,
        name: str,
        runner_ref: str | None,
        process_start: int | None = None,
    ) -> None:
        """Trials started together are marked Running in one transaction."""
        await self._coalescers().marks(RunningMark(experiment_id, name, runner_ref, process_start))

    async def save_log_position(
        self, experiment_id: int, name: str, offset: int, steps: Mapping[str, int]
    ) -> None:
        await self._call(self.sync.save_log_position, experiment_id, name, offset, steps)

    async def finish_trial(
        self,
        experiment_id: int,
        name: str,
        state: TrialState,
        reason: str | None = None,
        message: str | None = None,
    ) -> bool:
        """Trials that end together are stored in one transaction."""
        ending = TrialFinish(experiment_id, name, state, reason, message)
        return await self._coalescers().endings(ending)

    async def last_steps(self, experiment_id: int, trial_name: str) -> dict[str, int]:
        return await self._call(self.sync.last_steps, experiment_id, trial_name)

    async def last_report_times(
        self, experiment_id: int, trial_names: Sequence[str]
    ) -> dict[str, datetime]:
        return await self._call(self.sync.last_report_times, experiment_id, trial_names)

    async def add_observations(
        self, experiment: ExperimentRecord, trial_name: str, observations: Sequence[Observation]
    ) -> int:
        return await self._call(self.sync.add_observations, experiment, trial_name, observations)

    async def add_observation_batches(
        self, batches: Sequence[tuple[ExperimentRecord, str, Sequence[Observation]]]
    ) -> list[int]:
        return await self._call(self.sync.add_observation_batches, batches)


def as_async(repo: Repository | AsyncRepository) -> AsyncRepository:
    """``repo`` itself, or a facade of its own around a synchronous repository."""
    return repo if isinstance(repo, AsyncRepository) else AsyncRepository(repo)
