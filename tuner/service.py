"""The service behind ``tuner serve``: one Repository, one controller task per Running experiment.

Everything runs in the server's event loop. The service

* drives every experiment that has a ``trialTemplate`` with an
  :class:`~tuner.controller.ExperimentController` task, and resumes the Created and Running
  ones it finds in the database when it starts;
* drives experiments without a ``trialTemplate`` by ask/tell: :meth:`Service.suggest` creates
  Running trials from the experiment's suggester (one per experiment, kept in memory, rebuilt
  from the stored history after a restart), :meth:`Service.complete` finishes them, and the
  experiment ends by the same rules as the controller
  (:func:`tuner.controller.experiment_verdict`);
* routes pushed observations to the experiment's controller (so that early stopping decides at
  once), or to the database;
* fans controller events out to Server-Sent Event streams.

Several replicas
    Replicas may share one database. Each experiment with a ``trialTemplate`` is driven by
    exactly one replica at a time, the holder of its lease (``experiments.owner`` and
    ``lease_expires_at``, taken with one conditional UPDATE). A replica renews its leases every
    ``lease_interval`` seconds; when one dies, its leases expire after ``lease_ttl`` seconds and
    another replica takes the experiments over on its next scan: it re-attaches to their running
    trials (a local process of a dead replica is lost, and its trial ends Failed with reason
    TrialLost) and goes on. Stored trials are never suggested again, so nothing is duplicated.
    Replicas must share the trial-token secret. A push that reaches a replica other than the
    owner is stored, but the early-stopping decision is made by the owner on its next look.

Trial tokens
    Each trial gets ``TUNER_TRIAL_TOKEN = HMAC-SHA256(secret, "namespace/experiment/trial")``
    (hex). Nothing is stored per trial: the token is recomputed to check a push, so tokens
    survive restarts as long as the secret does. The secret is ``Settings.secret`` when given
    (``tuner serve`` reads ``TUNER_SECRET``), else 32 random bytes kept in
    ``<workdir>/server-secret`` (created with mode 0600 on first start). Several servers sharing
    one database must share the secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import math
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tuner import early_stopping
from tuner.algorithms.base import Suggester
from tuner.controller import ControllerEvent, ExperimentController, base_trial_env
from tuner.controller import experiment_verdict as verdict_of
from tuner.errors import Conflict, FieldError, InvalidRequest, NotFound, RunnerError, SpecError
from tuner.runners.base import Runner
from tuner.spec import CollectorKind, Experiment, ExperimentSpec, load_spec
from tuner.storage import ExperimentRecord, Repository, make_engine
from tuner.storage.repository import utcnow
from tuner.storage.writer import ObservationWriter
from tuner.trials import ACTIVE_STATES, ExperimentPhase, Observation, Trial, TrialState

log = logging.getLogger(__name__)

SECRET_FILE = "server-secret"
ASK_TELL_REF = "ask-tell"
FINISHED_PHASES = frozenset(p.value for p in ExperimentPhase if p.finished)
DELETED = "Deleted"
"""The ``state`` of the last ``experiment`` event of a deleted experiment."""


@dataclass
class Settings:
    """How to build the service. Nothing is read from the environment here.

    Attributes:
        db_url: SQLAlchemy URL (default: ``TUNER_DATABASE_URL`` or ``./tuner.db``).
        api_token: when set, every endpoint but ``/healthz`` needs ``Bearer <api_token>``.
        secret: the key trial tokens derive from; default: ``<workdir>/server-secret``.
        workdir: trial directories and logs (local runner), and the default secret.
        api_url: the URL trials reach the API at (``TUNER_API_URL``).
        trial_cwd: where trial commands run (default: the current directory).
        trial_env: the environment trials inherit (default: this process's).
        runner: a runner to use instead of the local runner (tests, Kubernetes).
        events_poll_interval: seconds between database polls of an event stream.
        max_body_size: request bodies above this many bytes get 413.
        stop_timeout: seconds to wait for a controller to kill its trials on stop.
        replica_id: this replica's name in experiment leases (default: host, pid, random).
        lease_ttl: seconds a lease lasts without renewal: the failover time after a crash.
        lease_interval: seconds between lease renewals and scans for orphaned experiments.
        companions: coroutines run beside the service from its start to its close, each given
            the started service (``tuner serve --runner kubernetes`` runs the operator so).
    """

    db_url: str | None = None
    api_token: str | None = field(default=None, repr=False)
    secret: bytes | None = field(default=None, repr=False)
    workdir: Path = Path(".tuner")
    api_url: str = "http://127.0.0.1:8000"
    trial_cwd: Path | None = None
    trial_env: Mapping[str, str] | None = field(default=None, repr=False)
    runner: Runner | None = None
    events_poll_interval: float = 1.0
    max_body_size: int = 4 << 20
    stop_timeout: float = 60.0
    replica_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    )
    lease_ttl: float = 10.0
    lease_interval: float = 2.0
    companions: list[Callable[[Service], Coroutine[Any, Any, None]]] = field(default_factory=list)


@dataclass(frozen=True)
class ServiceEvent:
    """A change of one experiment, as event streams carry it."""

    kind: str  # "trial", "best" or "experiment"
    namespace: str
    experiment: str
    trial: str | None = None
    state: str | None = None
    value: float | None = None
    reason: str | None = None


def load_or_create_secret(path: Path) -> bytes:
    """The secret stored at ``path``; a new random one (mode 0600) when there is none."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except ValueError as e:
        raise InvalidRequest(f"{path} does not hold a hex secret; remove it") from e
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another server created it first
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as f:
        f.write(secret.hex() + "\n")
    return secret


def derive_trial_token(secret: bytes, namespace: str, experiment: str, trial: str) -> str:
    message = f"{namespace}/{experiment}/{trial}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def tokens_equal(given: str, expected: str) -> bool:
    """Constant-time comparison (bytes, so that non-ASCII input cannot raise)."""
    return hmac.compare_digest(given.encode(), expected.encode())


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._repo: Repository | None = None
        self._secret: bytes = b""
        self._runner: Runner | None = None
        self._controllers: dict[int, ExperimentController] = {}
        self._tasks: dict[int, asyncio.Task[ExperimentRecord]] = {}
        self._suggesters: dict[int, Suggester] = {}
        self._rules: dict[int, early_stopping.EarlyStoppingRule | None] = {}
        self._best: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._subscribers: dict[int, set[asyncio.Queue[ServiceEvent | None]]] = {}
        self._closing = False
        self._lease_task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[ServiceEvent], None]] = []
        self._companions: list[asyncio.Task[None]] = []
        self._writer: ObservationWriter | None = None

    # -- life cycle ----------------------------------------------------------------------

    @property
    def repo(self) -> Repository:
        if self._repo is None:
            raise RuntimeError("the service has not been started")
        return self._repo

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            raise RuntimeError("the service has not been started")
        return self._runner

    async def start(self) -> None:
        """Open the database and resume every Created or Running experiment."""
        from tuner.runners.local import LocalRunner

        settings = self.settings
        workdir = settings.workdir.resolve()
        self._repo = Repository(make_engine(settings.db_url))
        self._secret = settings.secret or load_or_create_secret(workdir / SECRET_FILE)
        self._runner = settings.runner or LocalRunner(
            workdir, cwd=settings.trial_cwd, base_env=settings.trial_env
        )
        self._writer = ObservationWriter(self.repo)
        self._writer.start()
        self._claim_orphans()
        self._lease_task = asyncio.create_task(self._keep_leases(), name="leases")
        for companion in settings.companions:
            self._companions.append(asyncio.create_task(companion(self)))

    async def close(self) -> None:
        """Stop every controller (their trials are killed) and end the event streams."""
        self._closing = True
        for companion in self._companions:
            companion.cancel()
        await asyncio.gather(*self._companions, return_exceptions=True)
        if self._lease_task is not None:
            self._lease_task.cancel()
            await asyncio.gather(self._lease_task, return_exceptions=True)
        for queues in self._subscribers.values():
            for queue in queues:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._writer is not None:
            await self._writer.close()
        if self._repo is not None:
            self._repo.engine.dispose()

    # -- experiments ---------------------------------------------------------------------

    def add_listener(self, listener: Callable[[ServiceEvent], None]) -> None:
        """Call ``listener`` with every event this process publishes (of any experiment)."""
        self._listeners.append(listener)

    async def submit(self, experiment: Experiment) -> ExperimentRecord:
        """Store and start an experiment; a runner with ``check(experiment)`` vets it first."""
        if experiment.spec.trial_template is not None:
            self.runner.check(experiment)  # SpecError (422) for what this runner cannot run
        record = self.repo.create_experiment(experiment)
        self._begin(record)
        return self.repo.experiment_by_id(record.id)

    def get(self, namespace: str, name: str) -> ExperimentRecord:
        return self.repo.get_experiment(namespace, name)

    def drives(self, record: ExperimentRecord) -> bool:
        """Whether this process makes every change of the experiment (so events are pushed)."""
        task = self._tasks.get(record.id)
        return (task is not None and not task.done()) or _ask_tell(record)

    async def edit_budget(
        self, record: ExperimentRecord, changes: Mapping[str, Any]
    ) -> ExperimentRecord:
        """Change maxTrialCount, parallelTrialCount or maxFailedTrialCount (None removes one).

        Raising ``maxTrialCount`` of a finished experiment resumes it.
        """
        allowed = {"maxTrialCount", "parallelTrialCount", "maxFailedTrialCount"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise SpecError(
                [FieldError(f"spec.{k}", "only the budget can be edited") for k in unknown]
            )
        async with self._lock(record.id):
            record = self.repo.experiment_by_id(record.id)
            data = record.spec.dump()
            for key, value in changes.items():
                if value is None:
                    data["spec"].pop(key, None)
                else:
                    data["spec"][key] = value
            edited = load_spec(data)
            self.repo.update_spec(record.id, edited)
            old, new = record.spec.spec.max_trial_count, edited.spec.max_trial_count
            raised = "maxTrialCount" in changes and old is not None and (new is None or new > old)
            if record.phase.finished and raised:
                self.repo.set_phase(
                    record.id,
                    ExperimentPhase.RUNNING,
                    "ExperimentRestarted",
                    f"maxTrialCount raised from {old} to {new if new is not None else 'unlimited'}",
                )
                record = self.repo.experiment_by_id(record.id)
                self._publish_phase(record)
                self._begin(record)
            elif record.id in self._controllers:
                self._controllers[record.id].notify()
            elif _ask_tell(record) and not record.phase.finished:
                await self._settle(self.repo.experiment_by_id(record.id))
        return self.repo.experiment_by_id(record.id)

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
            return self.repo.experiment_by_id(record.id)
        async with self._lock(record.id):
            record = self.repo.experiment_by_id(record.id)
            if record.phase.finished:
                return record
            await self._end_here(record, ExperimentPhase.STOPPED, "ExperimentStopped", message)
        return self.repo.experiment_by_id(record.id)

    async def delete(self, record: ExperimentRecord) -> None:
        """Stop the experiment, then remove it with its trials and observations."""
        await self.stop(record, "the experiment was deleted")
        self.repo.delete_experiment(record.id)
        if not _ask_tell(record):
            try:
                await self.runner.cleanup(record.spec)  # e.g. the experiment's finished Jobs
            except RunnerError as e:  # the record is gone already: report, do not fail
                log.warning("experiment %s deleted, but: %s", record.name, e.message)
        self._suggesters.pop(record.id, None)
        self._rules.pop(record.id, None)
        self._best.pop(record.id, None)
        self._locks.pop(record.id, None)
        self._publish(
            record.id, ServiceEvent("experiment", record.namespace, record.name, state=DELETED)
        )

    # -- trials --------------------------------------------------------------------------

    def trial_token(self, namespace: str, experiment: str, trial: str) -> str:
        return derive_trial_token(self._secret, namespace, experiment, trial)

    def log_path(self, record: ExperimentRecord, trial: Trial) -> Path:
        path = None if _ask_tell(record) else self.runner.log_path(record.spec, trial.name)
        if path is None:
            raise NotFound(f"trial {trial.name} has no log here (it does not run on this server)")
        if not path.is_file():
            raise NotFound(f"trial {trial.name} has no log (yet)")
        return path

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
        ``should_stop`` without storing anything.
        """
        known = set(record.spec.spec.objective.metric_names)
        ignored = sorted(set(values) - known)
        trial = self.repo.get_trial(record.id, trial_name)
        if trial.state.finished:
            return True, ignored
        kept = {k: v for k, v in values.items() if k in known}
        if not kept:
            return False, ignored
        if step is None:
            last = self.repo.last_steps(record.id, trial_name)
            steps = {k: last.get(k, -1) + 1 for k in kept}
        else:
            steps = dict.fromkeys(kept, step)
        now = utcnow()
        observations = [Observation(k, steps[k], float(v), now) for k, v in kept.items()]
        controller = self._controllers.get(record.id)
        if controller is not None:
            return await controller.observe(trial_name, observations), ignored
        assert self._writer is not None
        await self._writer.write(record, trial_name, observations)
        if _ask_tell(record):
            return await self._ask_tell_early_stop(record, trial_name), ignored
        return False, ignored

    async def suggest(self, record: ExperimentRecord, count: int) -> tuple[list[Trial], str | None]:
        """Ask/tell: create up to ``count`` Running trials; returns them and why not more."""
        if not _ask_tell(record):
            raise InvalidRequest(
                f"experiment {record.name} has a trialTemplate: its controller creates and runs "
                "the trials; suggestions are for experiments without trialTemplate (ask/tell)"
            )
        async with self._lock(record.id):
            record = self.repo.experiment_by_id(record.id)
            if record.phase.finished:
                return [], _ended(record)
            spec = record.spec.spec
            history = self.repo.history(record.id)
            verdict = verdict_of(spec, history)
            if verdict is not None:
                await self._end_here(record, *verdict)
                return [], _ended(self.repo.experiment_by_id(record.id))
            active = sum(1 for t in history if t.state in ACTIVE_STATES)
            room = min(count, spec.parallel_trial_count - active)
            if spec.max_trial_count is not None:
                room = min(room, spec.max_trial_count - len(history))
            if room <= 0:
                return [], f"no room for new trials: {_full(spec, active, len(history))}"
            suggester = self._suggesters.get(record.id)
            if suggester is None:
                from tuner.algorithms.registry import create_suggester

                suggester = await asyncio.to_thread(create_suggester, spec)
                self._suggesters[record.id] = suggester
            suggestions = await asyncio.to_thread(suggester.suggest, history, room)
            if not suggestions:
                if active == 0:
                    await self._end_here(
                        record,
                        ExperimentPhase.SUCCEEDED,
                        "ExperimentSuggestionEndReached",
                        "the algorithm has no more parameter sets to suggest "
                        "(search space exhausted)",
                    )
                    return [], _ended(self.repo.experiment_by_id(record.id))
                return [], "the algorithm has nothing to suggest until running trials complete"
            rows = [
                (
                    {p.name: p.convert(s.parameters[p.name]) for p in spec.parameters},
                    dict(s.attrs),
                )
                for s in suggestions[:room]
            ]
            created = self.repo.create_trials(record, rows)
            for trial in created:
                self.repo.mark_running(record.id, trial.name, ASK_TELL_REF)
                self._publish_trial(record, trial.name, TrialState.RUNNING.value)
            trials = [self.repo.get_trial(record.id, t.name) for t in created]
            if len(trials) == count:
                return trials, None
            why = _full(spec, active + len(trials), len(history) + len(trials))
            return trials, f"created {len(trials)} of {count}: {why}"

    async def complete(
        self,
        record: ExperimentRecord,
        trial_name: str,
        succeeded: bool,
        values: Mapping[str, float],
        message: str | None = None,
    ) -> Trial:
        """Ask/tell: store final values (one step after the last) and finish the trial."""
        if not _ask_tell(record):
            raise InvalidRequest(
                f"experiment {record.name} has a trialTemplate: its trials finish when their "
                "process exits"
            )
        objective = record.spec.spec.objective
        unknown = sorted(set(values) - set(objective.metric_names))
        if unknown:
            raise SpecError(
                [
                    FieldError(
                        f"metrics.{k}",
                        f"not a metric of the objective ({', '.join(objective.metric_names)})",
                    )
                    for k in unknown
                ]
            )
        async with self._lock(record.id):
            record = self.repo.experiment_by_id(record.id)
            trial = self.repo.get_trial(record.id, trial_name)
            if trial.state.finished:
                raise Conflict(f"trial {trial_name} has already finished ({trial.state.value})")
            if values:
                last = self.repo.last_steps(record.id, trial_name)
                step = max(last.values(), default=-1) + 1
                now = utcnow()
                self.repo.add_observations(
                    record,
                    trial_name,
                    [Observation(k, step, float(v), now) for k, v in values.items()],
                )
                trial = self.repo.get_trial(record.id, trial_name)
            if not succeeded:
                state, reason = TrialState.FAILED, "TrialFailed"
                message = message or "the client reported the trial as failed"
            elif objective.objective_metric_name in trial.metrics or (
                record.spec.spec.metrics_collector_spec.kind is CollectorKind.NONE
            ):
                state, reason = TrialState.SUCCEEDED, "TrialSucceeded"
            else:
                state, reason = TrialState.METRICS_UNAVAILABLE, "MetricsUnavailable"
                message = (
                    f"the trial succeeded but never reported {objective.objective_metric_name}"
                )
            if self.repo.finish_trial(record.id, trial_name, state, reason, message):
                self._publish_trial(record, trial_name, state.value, message)
            await self._settle(record)
            return self.repo.get_trial(record.id, trial_name)

    # -- events --------------------------------------------------------------------------

    async def events(self, record: ExperimentRecord) -> AsyncIterator[ServiceEvent]:
        """The experiment's changes until it finishes (or is deleted, or the server stops).

        The first event is the experiment's current phase. Experiments this process drives
        push their events; others are polled from the database every
        ``events_poll_interval`` seconds.
        """
        queue: asyncio.Queue[ServiceEvent | None] = asyncio.Queue(maxsize=1024)
        self._subscribers.setdefault(record.id, set()).add(queue)
        try:
            try:
                record = self.repo.experiment_by_id(record.id)
            except NotFound:
                return
            yield self._phase_event(record)
            if record.phase.finished:
                return
            poller = _Poller(self.repo, record)
            while not self._closing:
                try:
                    event = await asyncio.wait_for(queue.get(), self.settings.events_poll_interval)
                except TimeoutError:
                    event = None
                if event is not None:
                    yield event
                    if event.kind == "experiment" and (
                        event.state in FINISHED_PHASES or event.state == DELETED
                    ):
                        return
                    continue
                if self._closing:
                    return
                if self.drives(record):
                    try:  # a safety net: end with the experiment even if an event was lost
                        current = self.repo.experiment_by_id(record.id)
                    except NotFound:
                        yield ServiceEvent(
                            "experiment", record.namespace, record.name, state=DELETED
                        )
                        return
                    if current.phase.finished:
                        yield self._phase_event(current)
                        return
                    continue
                polled, finished = await asyncio.to_thread(poller.poll)
                for polled_event in polled:
                    yield polled_event
                if finished:
                    return
        finally:
            subscribers = self._subscribers.get(record.id)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._subscribers[record.id]

    # -- internals -----------------------------------------------------------------------

    def _lock(self, experiment_id: int) -> asyncio.Lock:
        return self._locks.setdefault(experiment_id, asyncio.Lock())

    def _claim_orphans(self) -> None:
        """Resume the Created and Running experiments that no live replica drives."""
        for phase in (ExperimentPhase.CREATED, ExperimentPhase.RUNNING):
            offset = 0
            while batch := self.repo.list_experiments(phase=phase.value, limit=500, offset=offset):
                offset += len(batch)
                for record in batch:
                    task = self._tasks.get(record.id)
                    if task is not None and not task.done():
                        continue
                    if _ask_tell(record):
                        if record.phase is ExperimentPhase.CREATED:
                            self._begin(record)
                        continue
                    if self.repo.acquire_lease(
                        record.id, self.settings.replica_id, self.settings.lease_ttl
                    ):
                        log.info("resuming experiment %s/%s", record.namespace, record.name)
                        self._begin(record, leased=True)

    async def _keep_leases(self) -> None:
        """Renew our leases, give up experiments whose lease we lost, adopt orphans."""
        settings = self.settings
        while not self._closing:
            await asyncio.sleep(settings.lease_interval)
            try:
                driven = [i for i, t in self._tasks.items() if not t.done()]
                held = self.repo.renew_leases(settings.replica_id, driven, settings.lease_ttl)
                for experiment_id in set(driven) - held:
                    log.warning(
                        "lost the lease of experiment #%s; stopping its controller", experiment_id
                    )
                    self._tasks[experiment_id].cancel()
                self._claim_orphans()
            except Exception:  # a database hiccup must not end lease keeping
                log.exception("lease renewal failed; retrying")

    def _begin(self, record: ExperimentRecord, *, leased: bool = False) -> None:
        """Mark the experiment Running and, when it has a trial template, start its controller.

        A templated experiment is started only under this replica's lease.
        """
        if not _ask_tell(record) and not leased:
            task = self._tasks.get(record.id)
            running_here = task is not None and not task.done()
            if not running_here and not self.repo.acquire_lease(
                record.id, self.settings.replica_id, self.settings.lease_ttl
            ):
                log.info("experiment %s is driven by another replica", record.name)
                return
        if record.phase is not ExperimentPhase.RUNNING:
            self.repo.set_phase(record.id, ExperimentPhase.RUNNING)
            record = self.repo.experiment_by_id(record.id)
            self._publish_phase(record)
        if _ask_tell(record):
            return
        task = self._tasks.get(record.id)
        if task is not None and not task.done():
            self._controllers[record.id].notify()
            return
        controller = ExperimentController(
            self.repo,
            record,
            self.runner,
            trial_env=self._trial_env,
            listeners=[partial(self._on_controller_event, record.id, record.namespace)],
            writer=self._writer,
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
        if self._tasks.get(record.id) is task:
            del self._tasks[record.id]
            self._controllers.pop(record.id, None)
            with contextlib.suppress(Exception):  # a lost database must not hide the cause
                self.repo.release_lease(record.id, self.settings.replica_id)
        if task.cancelled():
            return
        error = task.exception()
        if error is None or self._closing:
            return
        log.error("controller of %s/%s failed", record.namespace, record.name, exc_info=error)
        with contextlib.suppress(NotFound):
            self.repo.experiment_by_id(record.id)
            self.repo.set_phase(record.id, ExperimentPhase.FAILED, "ControllerError", str(error))
            self._publish_phase(self.repo.experiment_by_id(record.id))

    def _trial_env(self, experiment: ExperimentRecord, trial: Trial) -> dict[str, str]:
        return {
            **base_trial_env(experiment, trial),
            "TUNER_API_URL": self.settings.api_url,
            "TUNER_TRIAL_TOKEN": self.trial_token(
                experiment.namespace, experiment.name, trial.name
            ),
        }

    async def _ask_tell_early_stop(self, record: ExperimentRecord, trial_name: str) -> bool:
        if record.id not in self._rules:
            self._rules[record.id] = early_stopping.create_rule(record.spec.spec)
        rule = self._rules[record.id]
        if rule is None:
            return False
        async with self._lock(record.id):
            history = self.repo.history(record.id, with_curves=True)
            trial = next((t for t in history if t.name == trial_name), None)
            if trial is None or trial.state not in ACTIVE_STATES:
                return trial is not None
            decision = rule.should_stop(trial, [t for t in history if t.name != trial_name])
            if not decision.stop:
                return False
            if self.repo.finish_trial(
                record.id, trial_name, TrialState.EARLY_STOPPED, "EarlyStopped", decision.reason
            ):
                self._publish_trial(record, trial_name, TrialState.EARLY_STOPPED.value)
            await self._settle(record)
            return True

    async def _settle(self, record: ExperimentRecord) -> None:
        """Ask/tell: report a new best and end the experiment when the rules say so."""
        history = self.repo.history(record.id)
        objective = record.spec.spec.objective
        values = [
            t.objective
            for t in history
            if t.state.completed and t.objective is not None and math.isfinite(t.objective)
        ]
        if values:
            best = min(values) if objective.type.value == "minimize" else max(values)
            previous = self._best.get(record.id)
            if previous is None or objective.better(best, previous):
                self._best[record.id] = best
                self._publish(
                    record.id, ServiceEvent("best", record.namespace, record.name, value=best)
                )
        verdict = verdict_of(record.spec.spec, history)
        if verdict is not None:
            await self._end_here(record, *verdict)

    async def _end_here(
        self, record: ExperimentRecord, phase: ExperimentPhase, reason: str, message: str
    ) -> None:
        """End an experiment no controller of this process drives: kill its active trials."""
        kill_reason = "ExperimentStopped" if phase is ExperimentPhase.STOPPED else reason
        for trial in self.repo.trials(record.id, states=ACTIVE_STATES):
            if self.repo.finish_trial(
                record.id, trial.name, TrialState.KILLED, kill_reason, message
            ):
                self._publish_trial(record, trial.name, TrialState.KILLED.value, message)
        self.repo.set_phase(record.id, phase, reason, message)
        self._publish_phase(self.repo.experiment_by_id(record.id))

    def _on_controller_event(self, experiment_id: int, namespace: str, e: ControllerEvent) -> None:
        self._publish(
            experiment_id,
            ServiceEvent(e.kind, namespace, e.experiment, e.trial, e.state, e.value, e.reason),
        )

    def _phase_event(self, record: ExperimentRecord) -> ServiceEvent:
        return ServiceEvent(
            "experiment",
            record.namespace,
            record.name,
            state=record.phase.value,
            reason=record.message,
        )

    def _publish_phase(self, record: ExperimentRecord) -> None:
        self._publish(record.id, self._phase_event(record))

    def _publish_trial(
        self, record: ExperimentRecord, trial: str, state: str, reason: str | None = None
    ) -> None:
        self._publish(
            record.id,
            ServiceEvent("trial", record.namespace, record.name, trial, state, reason=reason),
        )

    def _publish(self, experiment_id: int, event: ServiceEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("service event listener failed")
        for queue in self._subscribers.get(experiment_id, ()):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning(
                    "an event stream of experiment %s lags; event dropped", event.experiment
                )


class _Poller:
    """Database polling for event streams of experiments another process drives.

    Each poll costs a few small queries: new trials (by number), the previously active trials,
    the best trial and the phase.
    """

    def __init__(self, repo: Repository, record: ExperimentRecord) -> None:
        self.repo = repo
        self.record = record
        self.active = {t.name: t.state for t in repo.trials(record.id, states=ACTIVE_STATES)}
        self.seen = sum(repo.counts(record.id).values())
        best = repo.best_trial(record)
        self.best = best.objective if best is not None else None
        self.phase = record.phase

    def poll(self) -> tuple[list[ServiceEvent], bool]:
        record = self.record
        ns, name = record.namespace, record.name
        try:
            current = self.repo.experiment_by_id(record.id)
        except NotFound:
            return [ServiceEvent("experiment", ns, name, state=DELETED)], True
        events: list[ServiceEvent] = []
        new = self.repo.trials(record.id, offset=self.seen)
        self.seen += len(new)
        fresh = {t.name for t in new}
        changed = list(new)
        for trial_name, state in list(self.active.items()):
            if trial_name in fresh:
                continue
            try:
                trial = self.repo.get_trial(record.id, trial_name)
            except NotFound:
                del self.active[trial_name]
                continue
            if trial.state is not state:
                changed.append(trial)
        for trial in changed:
            if trial.state in ACTIVE_STATES:
                self.active[trial.name] = trial.state
            else:
                self.active.pop(trial.name, None)
            events.append(
                ServiceEvent("trial", ns, name, trial.name, trial.state.value, reason=trial.message)
            )
        best = self.repo.best_trial(current)
        objective = current.spec.spec.objective
        if (
            best is not None
            and best.objective is not None
            and (self.best is None or objective.better(best.objective, self.best))
        ):
            self.best = best.objective
            events.append(ServiceEvent("best", ns, name, value=best.objective))
        if current.phase is not self.phase:
            self.phase = current.phase
            events.append(
                ServiceEvent(
                    "experiment", ns, name, state=current.phase.value, reason=current.message
                )
            )
        return events, current.phase.finished


def _ask_tell(record: ExperimentRecord) -> bool:
    return record.spec.spec.trial_template is None


def _full(spec: ExperimentSpec, active: int, total: int) -> str:
    if spec.max_trial_count is not None and total >= spec.max_trial_count:
        return f"maxTrialCount ({spec.max_trial_count}) trials exist"
    if active >= spec.parallel_trial_count:
        return (
            f"parallelTrialCount ({spec.parallel_trial_count}) trials are running; "
            "complete some first"
        )
    return "the algorithm suggested fewer"


def _ended(record: ExperimentRecord) -> str:
    return f"experiment {record.name} is {record.phase.value} ({record.reason}): {record.message}"
