"""The service behind ``tuner serve``: one database, one controller task per driven experiment.

The service only orchestrates; each idea it uses has its own module:

:mod:`tuner.settings` (how it is built), :mod:`tuner.controller` and :mod:`tuner.asktell`
(experiments with and without a ``trialTemplate``, deciding by :mod:`tuner.lifecycle`),
:mod:`tuner.leases` (which replica drives which experiment), :mod:`tuner.tokens` (trials'
push tokens), :mod:`tuner.events` (changes fanned out to listeners and streams) and
:mod:`tuner.storage.aio` (the only way its coroutines reach the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from tuner import lifecycle, names
from tuner.asktell import AskTell, is_ask_tell
from tuner.controller import ExperimentController
from tuner.errors import Conflict, NotFound, RunnerError
from tuner.event_log import EventLog
from tuner.events import DELETED, Event, EventHub, Listener
from tuner.intake import ExperimentCache
from tuner.leases import Leases
from tuner.pushes import objective_metrics
from tuner.runners.base import Runner
from tuner.settings import Settings
from tuner.spec import Experiment
from tuner.storage import ExperimentRecord, Repository, make_engine
from tuner.storage.aio import AsyncRepository
from tuner.storage.writer import ObservationWriter
from tuner.submission import vet
from tuner.telemetry import Telemetry
from tuner.tokens import default_secret_path, derive_trial_token, load_or_create_secret
from tuner.trial_env import base_trial_env
from tuner.trials import ExperimentPhase, Trial

log = logging.getLogger(__name__)
T = TypeVar("T")


def _started(part: T | None) -> T:
    if part is None:
        raise RuntimeError("the service has not been started")
    return part


class Service:
    """Everything ``tuner serve`` does, in the server's event loop.

    It drives every experiment that has a ``trialTemplate`` with an
    :class:`~tuner.controller.ExperimentController` task (under this replica's lease) and
    resumes the Created and Running ones it finds in the database when it starts; serves
    ask/tell for experiments without one; routes pushed observations to the experiment's
    controller (so that early stopping decides at once), or to the database; and publishes
    every change to event listeners and streams.

    Coroutines reach the database through :attr:`db`; :attr:`repo` is for synchronous code
    (plain ``def`` routes, which FastAPI runs in its threadpool).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._db: AsyncRepository | None = None
        self._hub: EventHub | None = None
        self._asktell: AskTell | None = None
        self._leases: Leases | None = None
        self._secret: bytes = b""
        self._runner: Runner | None = None
        self._controllers: dict[int, ExperimentController] = {}
        self._tasks: dict[int, asyncio.Task[ExperimentRecord]] = {}
        self._closing = False
        self._lease_task: asyncio.Task[None] | None = None
        self._expiry_task: asyncio.Task[None] | None = None
        self.telemetry = Telemetry(  # what it reads at each scrape
            census=lambda: self._db.sync.census() if self._db is not None else None,
            api_calls=lambda: getattr(self.settings.runner, "client", None),  # Kubernetes'
            log_streams=lambda: getattr(self.settings.runner, "log_slots", None),
            write_queue_depth=lambda: self._writer.depth if self._writer is not None else 0,
        )
        self._listeners: list[Listener] = [self.telemetry]
        self._companions: list[asyncio.Task[None]] = []
        self._writer: ObservationWriter | None = None
        self._targets: ExperimentCache | None = None
        self._aftermath: set[asyncio.Task[None]] = set()

    # -- life cycle ----------------------------------------------------------------------

    @property
    def db(self) -> AsyncRepository:
        """The database, for coroutines."""
        return _started(self._db)

    @property
    def repo(self) -> Repository:
        """The database, for synchronous code only."""
        return self.db.sync

    @property
    def runner(self) -> Runner:
        return _started(self._runner)

    @property
    def hub(self) -> EventHub:
        return _started(self._hub)

    @property
    def asktell(self) -> AskTell:
        return _started(self._asktell)

    async def start(self) -> None:
        """Open the database and resume every Created or Running experiment."""
        from tuner.runners.local import LocalRunner

        settings = self.settings
        workdir = settings.workdir.resolve()
        self._db = AsyncRepository(Repository(make_engine(settings.db_url)))
        self._hub = EventHub(self._db, settings.events_poll_interval)
        self._hub.add_listener(EventLog())
        for listener in self._listeners:
            self._hub.add_listener(listener)
        self._asktell = AskTell(self._db, self._hub, settings.ask_timeout)
        self._leases = Leases(
            self._db, settings.replica_id, settings.lease_ttl, settings.lease_interval
        )
        self._secret = settings.secret or load_or_create_secret(
            settings.secret_file or default_secret_path()
        )
        self._runner = settings.runner or LocalRunner(
            workdir, cwd=settings.trial_cwd, base_env=settings.trial_env, detached=True
        )
        self._writer = ObservationWriter(self._db)
        self._writer.start()
        self._targets = ExperimentCache(self._db)
        await self._claim_orphans()
        self._lease_task = asyncio.create_task(
            self._leases.keep(self._driven, self._lost, self._claim_orphans), name="leases"
        )
        self._expiry_task = asyncio.create_task(
            self._asktell.keep_expiring(), name="ask/tell expiry"
        )
        for companion in settings.companions:
            self._companions.append(asyncio.create_task(companion(self)))

    async def close(self) -> None:
        """Stop every controller and end the event streams. Running trials are left running
        (local processes and Jobs alike), for the next start to re-adopt."""
        self._closing = True
        for companion in self._companions:
            companion.cancel()
        await asyncio.gather(*self._companions, return_exceptions=True)
        for background in (self._lease_task, self._expiry_task):
            if background is not None:
                background.cancel()
                await asyncio.gather(background, return_exceptions=True)
        if self._hub is not None:
            self._hub.close()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*list(self._aftermath), return_exceptions=True)
        if self._writer is not None:
            await self._writer.close()
        if self._db is not None:
            self._db.close()
            self._db.sync.engine.dispose()

    # -- experiments ---------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with every event this process publishes (of any experiment)."""
        self._listeners.append(listener)
        if self._hub is not None:
            self._hub.add_listener(listener)

    async def submit(self, experiment: Experiment) -> ExperimentRecord:
        """Store and start an experiment, once it passes `tuner.submission.vet`."""
        experiment = await vet(experiment, self.runner, self.db)
        hooks = self.settings.resource_hooks
        if hooks is not None:
            experiment = await hooks.before_store(experiment)
        try:
            record = await self.db.create_experiment(experiment)
        except BaseException:
            if hooks is not None:
                await asyncio.shield(hooks.store_failed(experiment))
            raise
        self.telemetry.experiment_created(record.namespace)
        await self._begin(record)
        return await self.db.experiment_by_id(record.id)

    def get(self, namespace: str, name: str) -> ExperimentRecord:
        """The stored experiment (synchronous: for code that runs in a thread)."""
        return self.repo.get_experiment(namespace, name)

    def drives(self, record: ExperimentRecord) -> bool:
        """Whether this process makes every change of the experiment (so events are pushed)."""
        task = self._tasks.get(record.id)
        return (task is not None and not task.done()) or is_ask_tell(record)

    async def edit_budget(
        self, record: ExperimentRecord, changes: Mapping[str, Any]
    ) -> ExperimentRecord:
        """Change maxTrialCount, parallelTrialCount or maxFailedTrialCount (None removes one);
        raising ``maxTrialCount`` of a finished experiment resumes it."""
        async with self.asktell.lock(record.id):
            record = await self.db.experiment_by_id(record.id)
            edited = lifecycle.edit_budget(record.experiment, changes)
            trials = len(await self.db.history(record.id))
            old = record.experiment.spec
            lifecycle.check_edit(record.name, record.phase, record.reason, old, edited.spec, trials)
            await self.db.update_spec(record.id, edited)
            self._changed(record)
            resumed = lifecycle.resumed_by(record.experiment.spec, edited.spec, changes)
            if record.phase.finished and resumed is not None:
                await self.db.set_phase(record.id, ExperimentPhase.RUNNING, *resumed)
                record = await self.db.experiment_by_id(record.id)
                self.hub.publish_phase(record)
                await self._begin(record)
            elif record.id in self._controllers:
                self._controllers[record.id].notify()
            elif is_ask_tell(record) and not record.phase.finished:
                await self.asktell.settle(await self.db.experiment_by_id(record.id))
        return await self.db.experiment_by_id(record.id)

    async def resume(self, record: ExperimentRecord) -> ExperimentRecord:
        """Continue a Stopped experiment with its budget as it is (InvalidRequest otherwise)."""
        async with self.asktell.lock(record.id):
            record = await self.db.experiment_by_id(record.id)
            reason, message = lifecycle.resume(record.name, record.phase)
            await self.db.set_phase(record.id, ExperimentPhase.RUNNING, reason, message)
            record = await self.db.experiment_by_id(record.id)
            self.hub.publish_phase(record)
            await self._begin(record)
        return await self.db.experiment_by_id(record.id)

    async def stop(
        self, record: ExperimentRecord, message: str = "stopped by the user"
    ) -> ExperimentRecord:
        """Kill the active trials (Killed) and end the experiment as Stopped.

        A finished experiment is left as it is.
        """
        controller = self._controllers.get(record.id)
        task = self._tasks.get(record.id)
        if controller is not None and task is not None and not task.done():
            controller.request_stop(message)
            done, _ = await asyncio.wait({task}, timeout=self.settings.stop_timeout)
            if not done:
                raise Conflict(
                    f"experiment {record.name} did not stop within {self.settings.stop_timeout}s"
                )
            return await self.db.experiment_by_id(record.id)
        async with self.asktell.lock(record.id):
            record = await self.db.experiment_by_id(record.id)
            if record.phase.finished:
                return record
            await self.asktell.end(record, lifecycle.stopped(message))
        return await self.db.experiment_by_id(record.id)

    async def delete(self, record: ExperimentRecord) -> None:
        """Stop the experiment, then remove it with its trials and observations."""
        await self.stop(record, "the experiment was deleted")
        await self.db.delete_experiment(record.id)
        self._changed(record)
        if not is_ask_tell(record):
            try:
                await self.runner.cleanup(record.experiment)  # e.g. the experiment's finished Jobs
            except RunnerError as e:  # the record is gone already: report, do not fail
                log.warning("experiment %s deleted, but: %s", record.name, e.message)
        self.asktell.forget(record.id)
        if self.settings.resource_hooks is not None:
            try:
                await self.settings.resource_hooks.after_delete(record)
            except Exception as e:  # the record is gone already: report, do not fail
                log.warning("experiment %s deleted, but its resource: %r", record.name, e)
        ns, name = record.namespace, record.name
        gone = Event(kind="experiment", namespace=ns, experiment=name, state=DELETED)
        self.hub.publish(record.id, gone)

    # -- trials --------------------------------------------------------------------------

    def trial_token(self, record: ExperimentRecord, trial: str) -> str:
        """The push token of a trial, bound to its experiment's uid (see :mod:`tuner.tokens`)."""
        return derive_trial_token(self._secret, record.uid, trial)

    def log_path(self, record: ExperimentRecord, trial: Trial) -> Path:
        path = None if is_ask_tell(record) else self.runner.log_path(record.experiment, trial.name)
        if path is None:
            raise NotFound(f"trial {trial.name} has no log here (it does not run on this server)")
        if not path.is_file():
            raise NotFound(f"trial {trial.name} has no log (yet)")
        return path

    async def push_target(self, namespace: str, name: str, fresh: bool = False) -> ExperimentRecord:
        """The experiment a push names, from a short-lived cache (:mod:`tuner.intake`)."""
        assert self._targets is not None
        if fresh:
            self._targets.forget(namespace, name)
        return await self._targets.get(namespace, name)

    async def push(
        self,
        namespace: str,
        name: str,
        trial_name: str,
        step: int | None,
        values: Mapping[str, float],
    ) -> tuple[bool, list[str]]:
        """:meth:`observe` for the push endpoint, the experiment read from a short-lived cache
        (:mod:`tuner.intake`), once more from the database if the trial is not found."""
        record = await self.push_target(namespace, name)
        try:
            return await self.observe(record, trial_name, step, values)
        except NotFound:
            fresh = await self.push_target(namespace, name, fresh=True)
            if fresh.id == record.id:
                raise
            return await self.observe(fresh, trial_name, step, values)

    async def observe(
        self,
        record: ExperimentRecord,
        trial_name: str,
        step: int | None,
        values: Mapping[str, float],
    ) -> tuple[bool, list[str]]:
        """Store pushed values of a trial; returns (should stop, ignored metric names).

        Metrics that the objective does not list are not stored (as with the StdOut
        collector); their names come back so that the trial can warn. A finished trial gets
        ``should_stop`` without storing anything. Answers once the writer committed them."""
        started = time.perf_counter()
        kept, ignored = objective_metrics(record, values)
        controller = self._controllers.get(record.id)
        if controller is not None and controller.ending_decided(trial_name):
            return True, ignored
        assert self._writer is not None
        observations = await self._writer.push(record, trial_name, step, kept)
        if not observations:  # None: the trial had finished (stop); []: nothing new
            return observations is None, ignored
        self.telemetry.reports(len(observations), started)
        if controller is not None:
            return await controller.observed(trial_name, observations), ignored
        if is_ask_tell(record):
            return await self.asktell.early_stop(record, trial_name), ignored
        return False, ignored

    async def suggest(self, record: ExperimentRecord, count: int) -> tuple[list[Trial], str | None]:
        """Ask/tell: create up to ``count`` Running trials; returns them and why not more."""
        with self.telemetry.suggestion_seconds.labels("ask").time():
            return await self.asktell.suggest(record, count)

    async def open_trials(self, record: ExperimentRecord) -> list[Trial]:
        """Ask/tell: the trials asked for and not told yet."""
        return await self.asktell.open_trials(record)

    async def complete(
        self,
        record: ExperimentRecord,
        trial_name: str,
        succeeded: bool,
        values: Mapping[str, float],
        message: str | None = None,
    ) -> Trial:
        """Ask/tell: store final values (one step after the last) and finish the trial."""
        return await self.asktell.complete(record, trial_name, succeeded, values, message)

    # -- events --------------------------------------------------------------------------

    def events(self, record: ExperimentRecord) -> AsyncIterator[Event]:
        """The experiment's changes until it finishes (or is deleted, or the server stops).

        The first event is the experiment's current phase. Experiments this process drives
        push their events; others are polled from the database every
        ``events_poll_interval`` seconds.
        """
        return self.hub.stream(record, self.drives)

    # -- internals -----------------------------------------------------------------------

    def _changed(self, record: ExperimentRecord) -> None:  # pushes read it again
        if self._targets is not None:
            self._targets.forget(record.namespace, record.name)

    def _driven(self) -> list[int]:
        return [i for i, t in self._tasks.items() if not t.done()]

    def _lost(self, experiment_id: int) -> None:
        self._tasks[experiment_id].cancel()

    async def _claim_orphans(self) -> None:
        """Resume the Created and Running experiments that no live replica drives."""
        assert self._leases is not None
        for phase in (ExperimentPhase.CREATED, ExperimentPhase.RUNNING):
            offset = 0
            while batch := await self.db.list_experiments(
                phase=phase.value, limit=500, offset=offset
            ):
                offset += len(batch)
                for record in batch:
                    task = self._tasks.get(record.id)
                    if task is not None and not task.done():
                        continue
                    if is_ask_tell(record):
                        if record.phase is ExperimentPhase.CREATED:
                            await self._begin(record)
                        continue
                    if await self._leases.acquire(record.id):
                        log.info("resuming experiment %s/%s", record.namespace, record.name)
                        await self._begin(record, leased=True)

    async def _begin(self, record: ExperimentRecord, *, leased: bool = False) -> None:
        """Mark the experiment Running and, when it has a trial template, start its controller.

        A templated experiment is started only under this replica's lease.
        """
        assert self._leases is not None
        if not is_ask_tell(record) and not leased:
            task = self._tasks.get(record.id)
            running_here = task is not None and not task.done()
            if not running_here and not await self._leases.acquire(record.id):
                log.info("experiment %s is driven by another replica", record.name)
                return
        if record.phase is not ExperimentPhase.RUNNING:
            await self.db.set_phase(record.id, ExperimentPhase.RUNNING)
            record = await self.db.experiment_by_id(record.id)
            self.hub.publish_phase(record)
        if is_ask_tell(record):
            return
        task = self._tasks.get(record.id)
        if task is not None and not task.done():
            self._controllers[record.id].notify()
            return
        controller = ExperimentController(
            self.db,
            record,
            self.runner,
            trial_env=self._trial_env,
            listeners=[partial(self.hub.publish, record.id)],
            writer=self._writer,
            suggest_timer=self.telemetry.suggestion_seconds.labels("controller").observe,
        )
        task = asyncio.create_task(
            controller.run(), name=f"controller {record.namespace}/{record.name}"
        )
        self._controllers[record.id] = controller
        self._tasks[record.id] = task
        task.add_done_callback(partial(self._controller_done, record))

    def _controller_done(
        self, record: ExperimentRecord, task: asyncio.Task[ExperimentRecord]
    ) -> None:
        release = self._tasks.get(record.id) is task
        if release:
            del self._tasks[record.id]
            self._controllers.pop(record.id, None)
        error = None if task.cancelled() else task.exception()
        if error is not None and not self._closing:
            log.error("controller of %s/%s failed", record.namespace, record.name, exc_info=error)
        else:
            error = None
        if release or error is not None:
            after = asyncio.get_running_loop().create_task(self._after(record, release, error))
            self._aftermath.add(after)
            after.add_done_callback(self._aftermath.discard)

    async def _after(
        self, record: ExperimentRecord, release: bool, error: BaseException | None
    ) -> None:
        """After a controller ended: give its lease up and record a failure."""
        assert self._leases is not None
        if release:
            with contextlib.suppress(Exception):  # a lost database must not hide the cause
                await self._leases.release(record.id)
        if error is None:
            return
        with contextlib.suppress(NotFound):
            await self.db.experiment_by_id(record.id)
            await self.db.set_phase(
                record.id, ExperimentPhase.FAILED, "ControllerError", str(error)
            )
            self.hub.publish_phase(await self.db.experiment_by_id(record.id))

    def _trial_env(self, experiment: ExperimentRecord, trial: Trial) -> dict[str, str]:
        return {
            **base_trial_env(experiment, trial),
            names.ENV_API_URL: self.settings.api_url,
            names.ENV_TRIAL_TOKEN: self.trial_token(experiment, trial.name),
        }
