"""The reconcile loop of one experiment.

Every decision is a function of what is stored: the loop re-reads the trial history, decides
whether the experiment is done, asks the algorithm for as many parameter sets as there is room
for, stores them as Created trials *before* starting them, and starts them through the runner.
A restarted controller therefore never suggests a trial twice: it starts the stored Created
trials, re-attaches to (or gives up on) the Running ones, and goes on.

Metrics arrive from the trial's output (StdOut collector), from a metrics file (File
collector) or from pushes through the API (:meth:`ExperimentController.observe`). Each batch is
stored, then the early-stopping rule decides on the trial at once. Once a trial's ending is
decided, nothing more of it is stored (as for a push to a finished trial).

The decisions themselves (when the experiment ends, how many trials fit, how a finished trial
ends, the best value) are the pure functions of :mod:`tuner.lifecycle`, shared with ask/tell.
The database is reached through :class:`~tuner.storage.aio.AsyncRepository` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import Unpack

from tuner import collectors, early_stopping, lifecycle, warmstart
from tuner.algorithms.base import Suggester
from tuner.collectors.polling import Polling
from tuner.errors import RunnerError, TunerError
from tuner.events import Event, EventFields, EventKind, Listener
from tuner.history import HistoryCache
from tuner.lifecycle import TrialEnding, Verdict
from tuner.logs import log_context, set_log_context
from tuner.runners.base import Runner, TrialHandle, TrialOutcome
from tuner.spec import CollectorKind, Experiment
from tuner.storage import ExperimentRecord, Repository
from tuner.storage.aio import AsyncRepository, as_async
from tuner.storage.writer import ObservationWriter
from tuner.templates import render_trial
from tuner.trial_env import base_trial_env
from tuner.trials import ACTIVE_STATES, ExperimentPhase, Observation, Trial, TrialState

log = logging.getLogger(__name__)

LOG_POSITION_INTERVAL = 1.0
"""Seconds between saves of how far a trial's log was read (re-reading is deduplicated)."""
IDLE_INTERVAL = 1.0
PUSH_STOP_GRACE = 2.0
"""Seconds a pushing trial told to stop (in the answer to its report) has to end by itself."""

TrialEnv = Callable[[ExperimentRecord, Trial], dict[str, str]]


async def _no_lines() -> AsyncIterator[str]:
    """What is read of the log of a trial whose metrics do not come from it (no stream)."""
    return
    yield


class ExperimentController:
    """Drives one experiment with a ``trialTemplate`` until it ends.

    Args:
        repo: the database (a synchronous repository gets a facade of its own).
        experiment: the stored experiment.
        runner: starts, re-attaches and kills the trials.
        trial_env: the ``TUNER_*`` environment of a trial.
        listeners: called with every :class:`~tuner.events.Event` of this experiment.
        writer: the observation writer to share (default: write each batch directly).
        suggest_timer: called with the seconds each batch of suggestions took (metrics).
    """

    def __init__(
        self,
        repo: Repository | AsyncRepository,
        experiment: ExperimentRecord,
        runner: Runner,
        *,
        trial_env: TrialEnv = base_trial_env,
        listeners: Sequence[Listener] = (),
        writer: ObservationWriter | None = None,
        suggest_timer: Callable[[float], None] | None = None,
    ) -> None:
        self.db = as_async(repo)
        self._own_db = self.db is not repo
        self.record = experiment
        self.runner = runner
        self._trial_env = trial_env
        self._listeners = list(listeners)
        self._writer = writer
        self._suggest_timer = suggest_timer
        self._history = HistoryCache(self.db.sync, experiment.id)
        self._suggester: Suggester | None = None
        self._rule: early_stopping.StoppingState | None = None
        self._wake = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stoppers: set[asyncio.Task[None]] = set()
        self._pushes = experiment.experiment.spec.metrics_collector_spec.kind is CollectorKind.PUSH
        self._handles: dict[str, TrialHandle] = {}
        self._endings: dict[str, TrialEnding] = {}
        self._curves: dict[str, dict[int, float]] = {}
        self._positions: dict[str, tuple[int, dict[str, int]]] = {}
        self._stop_message: str | None = None
        self._best: float | None = None

    # -- public --------------------------------------------------------------------------

    @property
    def experiment(self) -> Experiment:
        return self.record.experiment

    def request_stop(self, message: str = "stopped by user") -> None:
        """Kill the running trials (Killed) and end the experiment as Stopped."""
        self._stop_message = message
        self._wake.set()

    def notify(self) -> None:
        """Re-read the stored experiment now (after a budget edit, for instance)."""
        self._wake.set()

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def run(self) -> ExperimentRecord:
        """Drive the experiment until it ends; returns its final record."""
        with log_context(experiment=f"{self.record.namespace}/{self.record.name}"):
            return await self._run()

    async def _run(self) -> ExperimentRecord:
        try:
            record = await self._reload()
            if record.phase.finished:
                return record
            spec = record.experiment.spec
            if spec.trial_template is None:
                raise TunerError(
                    f"experiment {record.name} has no trialTemplate: drive it with ask/tell"
                )
            self._suggester = await warmstart.open_suggester(self.db, record.experiment)
            rule = early_stopping.create_rule(spec)
            self._rule = early_stopping.StoppingState(rule) if rule is not None else None
            await self.db.set_phase(record.id, ExperimentPhase.RUNNING)
            self._emit("experiment", state=ExperimentPhase.RUNNING.value)
            try:
                await self._recover()
                while not await self._reconcile_once():
                    await self._wait_for_change()
            finally:
                await self._shutdown_trials()
            return await self._reload()
        finally:
            if self._own_db:
                self.db.close()

    async def observe(self, trial_name: str, observations: Sequence[Observation]) -> bool:
        """Store observations of a running trial; returns whether the trial should stop. Nothing
        is stored once the trial's ending is decided: a process that wrote ahead of the decision
        (its output waits in a pipe) does not add steps it was stopped before."""
        if trial_name in self._endings:
            return True
        if self._writer is not None:
            await self._writer.write(self.record, trial_name, observations)
        else:
            await self.db.add_observations(self.record, trial_name, observations)
        return await self.observed(trial_name, observations)

    def ending_decided(self, trial_name: str) -> bool:
        """Whether the trial's end is decided (what it reports now is not stored)."""
        return trial_name in self._endings

    async def observed(self, trial_name: str, observations: Sequence[Observation]) -> bool:
        """After observations of a trial were stored elsewhere (a push): whether it should stop
        (the stopping rule decides at once)."""
        objective = self.experiment.spec.objective.objective_metric_name
        curve = self._curves.setdefault(trial_name, {})
        new_points = False
        for o in observations:
            if o.metric == objective:
                curve[o.step] = o.value
                new_points = True
        if trial_name in self._endings:
            return True
        if not new_points or self._rule is None:
            return False
        return await self._maybe_stop_early(trial_name)

    # -- the loop ------------------------------------------------------------------------

    async def _reload(self) -> ExperimentRecord:
        self.record = await self.db.experiment_by_id(self.record.id)
        return self.record

    async def _refresh_history(self) -> list[Trial]:
        return await self.db.run(lambda _repo: self._history.refresh())

    async def _reconcile_once(self) -> bool:
        """One pass; returns True when the experiment has ended."""
        record = await self._reload()
        if record.phase.finished:
            # Ended elsewhere (a stop request served by another replica): stop our trials.
            ending = TrialEnding(
                TrialState.KILLED, record.reason or "ExperimentStopped", record.message or ""
            )
            for trial in await self.db.trials(record.id, states=ACTIVE_STATES):
                await self._kill(trial.name, ending)
            await self._await_tasks()
            return True
        if self._stop_message is not None:
            await self._end(lifecycle.stopped(self._stop_message))
            return True
        history = await self._refresh_history()
        self._report_best(changed := self._history.take_changed())  # the best of all, or as was
        tally = self._history.tally  # counts kept per changed trial: no scan of the history
        verdict = lifecycle.tally_verdict(record.experiment.spec, changed, tally)
        if verdict is not None:
            await self._end(verdict)
            return True
        launched = await self._launch(record, history)
        active = tally.active + len(self._tasks)
        if launched == 0 and (verdict := lifecycle.suggestions_exhausted(0, active)) is not None:
            await self._end(verdict)
            return True
        return False

    async def _wait_for_change(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), IDLE_INTERVAL)
        self._wake.clear()

    async def _launch(self, record: ExperimentRecord, history: Sequence[Trial]) -> int | None:
        """Fill free slots with new trials; None when there was no room to ask for any."""
        spec, tally = record.experiment.spec, self._history.tally
        room = lifecycle.room_for_trials(spec, tally.active, tally.total)
        if room <= 0:
            return None
        assert self._suggester is not None
        started = time.perf_counter()
        suggest = partial(warmstart.suggest, self._suggester, spec)  # enqueued points first
        suggestions = await asyncio.to_thread(suggest, history, room)
        if self._suggest_timer is not None:
            self._suggest_timer(time.perf_counter() - started)
        if not suggestions:
            return 0
        trials = await self.db.create_trials(record, lifecycle.trial_rows(spec, suggestions, room))
        async with asyncio.TaskGroup() as starts:  # side by side: 1,000 Jobs wait on no queue
            for trial in trials:
                starts.create_task(self._start(record, trial))
        return len(trials)

    async def _start(self, record: ExperimentRecord, trial: Trial) -> None:
        try:
            rendered = render_trial(record.experiment, trial)
            handle = await self.runner.start(
                record.experiment, trial, rendered, self._trial_env(record, trial)
            )
        except (RunnerError, KeyError, ValueError) as e:
            message = e.message if isinstance(e, RunnerError) else f"cannot render trial: {e}"
            await self.db.finish_trial(
                record.id, trial.name, TrialState.FAILED, "StartError", message
            )
            self._emit("trial", trial=trial.name, state="Failed", reason=message)
            return
        await self.db.mark_running(record.id, trial.name, handle.ref, handle.process_start)
        self._emit("trial", trial=trial.name, state=TrialState.RUNNING.value)
        self._track(trial.name, handle)

    def _track(
        self, trial_name: str, handle: TrialHandle, next_steps: dict[str, int] | None = None
    ) -> None:
        self._handles[trial_name] = handle
        task = asyncio.create_task(
            self._drive(trial_name, handle, next_steps or {}), name=f"trial {trial_name}"
        )
        self._tasks[trial_name] = task
        task.add_done_callback(lambda _: self._wake.set())

    async def _recover(self) -> None:
        """Pick up trials stored by an earlier controller (reading the history in pages).

        A Running trial is re-adopted (read on from the stored log position and step counters),
        alive or ended meanwhile; one the runner cannot find is ``TrialLost`` (not counted
        against ``maxFailedTrialCount``) and what it left running is killed. A Created trial
        whose process started before its Running state was saved is re-adopted, never rerun."""
        record, after = self.record, -1
        while page := await self.db.history(
            record.id, with_curves=True, after_number=after, limit=1000
        ):
            after = page[-1].number
            for trial in page:
                await self._recover_trial(record, trial)

    async def _recover_trial(self, record: ExperimentRecord, trial: Trial) -> None:
        if trial.curve:
            self._curves[trial.name] = dict(trial.curve)
        if trial.state is TrialState.CREATED:
            handle = await self.runner.attach(record.experiment, trial)
            if handle is None:
                await self._start(record, trial)
                return
            log.info("trial %s: started before a restart; re-adopted", trial.name)
            await self.db.mark_running(record.id, trial.name, handle.ref, handle.process_start)
            self._emit("trial", trial=trial.name, state=TrialState.RUNNING.value)
            self._track(trial.name, handle)
        elif trial.state is TrialState.RUNNING:
            handle = await self.runner.attach(record.experiment, trial)
            if handle is not None:
                self._track(trial.name, handle, trial.log_steps)
                return
            await self.runner.reap(record.experiment, trial)
            message = "the trial's process was lost when its controller stopped"
            await self.db.finish_trial(
                record.id, trial.name, TrialState.FAILED, lifecycle.TRIAL_LOST, message
            )
            self._emit("trial", trial=trial.name, state="Failed", reason=message)

    # -- one trial -----------------------------------------------------------------------

    async def _drive(
        self, trial_name: str, handle: TrialHandle, next_steps: dict[str, int]
    ) -> None:
        set_log_context(trial=trial_name)  # this task's own log events
        spec = self.experiment.spec
        kind = spec.metrics_collector_spec.kind
        parser = collectors.parser_for(spec) if kind is CollectorKind.STDOUT else None
        if parser is not None:
            parser.resume(next_steps)
        saved_at = time.monotonic()
        polled = collectors.polled_collector(spec, handle.metrics_path, handle.metrics_host)
        if isinstance(polled, collectors.PrometheusScraper):  # re-adopted: count steps on
            polled.resume(await self.db.last_steps(self.record.id, trial_name))
        observe = partial(self.observe, trial_name)
        polling = None if polled is None else Polling(trial_name, polled, observe)
        try:
            # Only StdOut metrics are read from the log: other kinds hold no stream open.
            async for line in handle.lines() if parser is not None else _no_lines():
                if parser is not None:
                    observations = parser.parse(line)
                    if observations:
                        await self.observe(trial_name, observations)
                        offset = handle.offset
                        if offset is None:
                            continue
                        self._positions[trial_name] = (offset, parser.next_steps)
                        if time.monotonic() - saved_at > LOG_POSITION_INTERVAL:
                            saved_at = time.monotonic()
                            await self.db.save_log_position(
                                self.record.id, trial_name, offset, parser.next_steps
                            )
            outcome = await handle.wait()
        except Exception as e:  # a broken stream must still end the trial
            log.exception("trial %s: lost its process", trial_name)
            with contextlib.suppress(Exception):
                await handle.kill()
            outcome = TrialOutcome(False, "RunnerError", str(e))
        finally:
            if polling is not None:
                await polling.stop()
        seen: list[str] = parser.unknown if parser is not None else []
        problem: str | None = None
        if polling is not None:
            seen, problem = await polling.finish()
        else:
            try:
                problem = await handle.collector_problem()  # a sidecar's (Kubernetes)
            except Exception as e:
                log.warning("trial %s: cannot read its collector's problem: %r", trial_name, e)
        await self._finish_trial(trial_name, outcome, seen, problem)
        self._positions.pop(trial_name, None)
        self._handles.pop(trial_name, None)
        self._tasks.pop(trial_name, None)

    async def _finish_trial(
        self,
        trial_name: str,
        outcome: TrialOutcome,
        seen: Sequence[str] = (),
        problem: str | None = None,
    ) -> None:
        """Store how the trial ended; ``seen``: metric-looking names it printed outside the spec;
        ``problem``: why its collector could not collect its metrics."""
        record = self.record
        ending = self._endings.pop(trial_name, None)
        if ending is None:
            ending = lifecycle.trial_ending(
                self.experiment.spec,
                outcome.succeeded,
                bool(self._curves.get(trial_name)),
                outcome.reason,
                outcome.message,
                seen,
                problem,
            )
        if await self.db.finish_trial(
            record.id, trial_name, ending.state, ending.reason, ending.message
        ):
            self._emit("trial", trial=trial_name, state=ending.state.value, reason=ending.message)

    async def _maybe_stop_early(self, trial_name: str) -> bool:
        assert self._rule is not None
        history = await self._refresh_history()
        decision = self._rule.decide(trial_name, history, self._curves)  # O(1) in the trials
        if not decision.stop:
            return False
        ending = TrialEnding(TrialState.EARLY_STOPPED, "EarlyStopped", decision.reason or "")
        task = self._tasks.get(trial_name)
        if self._pushes and task is not None:
            # The trial hears "stop" in the answer to this report: it may end by itself (and
            # save what it needs) before it is killed.
            self._endings.setdefault(trial_name, ending)
            stopper = asyncio.create_task(self._kill_unless_ended(trial_name, task, ending))
            self._stoppers.add(stopper)
            stopper.add_done_callback(self._stoppers.discard)
        else:
            await self._kill(trial_name, ending)
        return True

    async def _kill_unless_ended(
        self, trial_name: str, task: asyncio.Task[None], ending: TrialEnding
    ) -> None:
        await asyncio.wait({task}, timeout=PUSH_STOP_GRACE)
        if not task.done():
            await self._kill(trial_name, ending)

    async def _kill(self, trial_name: str, ending: TrialEnding) -> None:
        self._endings.setdefault(trial_name, ending)
        handle = self._handles.get(trial_name)
        if handle is not None:
            await handle.kill()
        else:
            # Not ours to run (ask/tell) or not started: record the ending directly.
            self._endings.pop(trial_name, None)
            if await self.db.finish_trial(
                self.record.id, trial_name, ending.state, ending.reason, ending.message
            ):
                self._emit("trial", trial=trial_name, state=ending.state.value)

    # -- ending --------------------------------------------------------------------------

    async def _end(self, verdict: Verdict) -> None:
        record = self.record
        ending = lifecycle.kill_ending(verdict)
        for trial in await self.db.trials(record.id, states=ACTIVE_STATES):
            await self._kill(trial.name, ending)
        await self._await_tasks()
        await self.db.set_phase(record.id, verdict.phase, verdict.reason, verdict.message)
        self._emit("experiment", state=verdict.phase.value, reason=verdict.message)

    async def _await_tasks(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def _shutdown_trials(self) -> None:
        """On any exit (cancellation included), leave no process behind and no trial Running;
        but trials of a detached runner (Kubernetes Jobs) are left running, still Running in the
        database, for the next controller to re-attach."""
        if not self._tasks:
            return
        if self.runner.detached:
            for task in self._tasks.values():
                task.cancel()
            await self._await_tasks()
            await self._save_log_positions()
            return
        ending = TrialEnding(TrialState.KILLED, "ControllerStopped", "controller stopped")
        for name in list(self._handles):
            await self._kill(name, ending)
        await self._await_tasks()

    async def _save_log_positions(self) -> None:
        """Where each left-running trial's log was read to, for the next controller."""
        for name, (offset, steps) in self._positions.items():
            with contextlib.suppress(Exception):
                await self.db.save_log_position(self.record.id, name, offset, steps)

    def _report_best(self, history: Sequence[Trial]) -> None:
        best = lifecycle.new_best(self.experiment.spec.objective, history, self._best)
        if best is not None:
            self._best = best
            self._emit("best", value=best)

    def _emit(self, kind: EventKind, **fields: Unpack[EventFields]) -> None:
        event = Event(
            kind=kind, namespace=self.record.namespace, experiment=self.record.name, **fields
        )
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed")
