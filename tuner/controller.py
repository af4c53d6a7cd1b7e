"""The reconcile loop of one experiment.

Every decision is a function of what is stored: the loop re-reads the trial history, decides
whether the experiment is done, asks the algorithm for as many parameter sets as there is room
for, stores them as Created trials *before* starting them, and starts them through the runner.
A restarted controller therefore never suggests a trial twice: it starts the stored Created
trials, re-attaches to (or gives up on) the Running ones, and goes on.

Metrics arrive from the trial's output (StdOut collector), from a metrics file (File
collector) or from pushes through the API (:meth:`ExperimentController.observe`). Each batch is
stored, then the early-stopping rule decides on the trial at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tuner import early_stopping, metrics
from tuner.algorithms.base import Suggester
from tuner.algorithms.registry import create_suggester
from tuner.errors import RunnerError, TunerError
from tuner.history import HistoryCache
from tuner.runners.base import Runner, TrialHandle, TrialOutcome
from tuner.spec import CollectorKind, Experiment, ExperimentSpec
from tuner.storage import ExperimentRecord, Repository
from tuner.storage.writer import ObservationWriter
from tuner.templates import render_trial
from tuner.trials import ACTIVE_STATES, ExperimentPhase, Observation, Trial, TrialState

log = logging.getLogger(__name__)

FILE_POLL_INTERVAL = 0.2
IDLE_INTERVAL = 1.0


@dataclass(frozen=True)
class ControllerEvent:
    """A change worth telling watchers about (progress bars, SSE streams)."""

    kind: str  # "trial" (state change), "best" (new optimum), "experiment" (phase change)
    experiment: str
    trial: str | None = None
    state: str | None = None
    value: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class _Ending:
    state: TrialState
    reason: str
    message: str


TrialEnv = Callable[[ExperimentRecord, Trial], dict[str, str]]


def base_trial_env(experiment: ExperimentRecord, trial: Trial) -> dict[str, str]:
    return {
        "TUNER_EXPERIMENT": experiment.name,
        "TUNER_NAMESPACE": experiment.namespace,
        "TUNER_TRIAL": trial.name,
    }


def experiment_verdict(
    spec: ExperimentSpec, history: Sequence[Trial]
) -> tuple[ExperimentPhase, str, str] | None:
    """Whether the stored trials end the experiment: ``(phase, reason, message)`` or ``None``.

    A pure function of the spec and the history, shared by the controller and the ask/tell
    service: the goal reached, more than ``maxFailedTrialCount`` failures, or
    ``maxTrialCount`` trials finished.
    """
    objective = spec.objective
    completed = [
        t
        for t in history
        if t.state.completed and t.objective is not None and math.isfinite(t.objective)
    ]
    if objective.goal is not None and completed:
        best = completed[0]
        for t in completed[1:]:
            assert t.objective is not None and best.objective is not None
            if objective.better(t.objective, best.objective):
                best = t
        assert best.objective is not None
        if objective.goal_reached(best.objective):
            return (
                ExperimentPhase.SUCCEEDED,
                "ExperimentGoalReached",
                f"trial {best.name} reached {objective.objective_metric_name}="
                f"{best.objective:g} (goal {objective.goal:g})",
            )
    failed = sum(1 for t in history if t.state is TrialState.FAILED)
    if spec.max_failed_trial_count is not None and failed > spec.max_failed_trial_count:
        return (
            ExperimentPhase.FAILED,
            "ExperimentMaxFailedTrialsReached",
            f"{failed} trials failed (maxFailedTrialCount {spec.max_failed_trial_count})",
        )
    finished = sum(1 for t in history if t.state.finished)
    if spec.max_trial_count is not None and finished >= spec.max_trial_count:
        return (
            ExperimentPhase.SUCCEEDED,
            "ExperimentMaxTrialsReached",
            f"{finished} trials finished (maxTrialCount {spec.max_trial_count})",
        )
    return None


class ExperimentController:
    def __init__(
        self,
        repo: Repository,
        experiment: ExperimentRecord,
        runner: Runner,
        *,
        trial_env: TrialEnv = base_trial_env,
        listeners: Sequence[Callable[[ControllerEvent], None]] = (),
        writer: ObservationWriter | None = None,
    ) -> None:
        self.repo = repo
        self.record = experiment
        self.runner = runner
        self._trial_env = trial_env
        self._listeners = list(listeners)
        self._writer = writer
        self._history = HistoryCache(repo, experiment.id)
        self._suggester: Suggester | None = None
        self._rule: early_stopping.EarlyStoppingRule | None = None
        self._wake = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._handles: dict[str, TrialHandle] = {}
        self._endings: dict[str, _Ending] = {}
        self._curves: dict[str, dict[int, float]] = {}
        self._stop_message: str | None = None
        self._best: float | None = None

    # -- public --------------------------------------------------------------------------

    @property
    def spec(self) -> Experiment:
        return self.record.spec

    def request_stop(self, message: str = "stopped by user") -> None:
        """Kill the running trials (Killed) and end the experiment as Stopped."""
        self._stop_message = message
        self._wake.set()

    def notify(self) -> None:
        """Re-read the stored experiment now (after a budget edit, for instance)."""
        self._wake.set()

    def add_listener(self, listener: Callable[[ControllerEvent], None]) -> None:
        self._listeners.append(listener)

    async def run(self) -> ExperimentRecord:
        """Drive the experiment until it ends; returns its final record."""
        record = self._reload()
        if record.phase.finished:
            return record
        if record.spec.spec.trial_template is None:
            raise TunerError(
                f"experiment {record.name} has no trialTemplate: drive it with ask/tell"
            )
        self._suggester = create_suggester(record.spec.spec)
        self._rule = early_stopping.create_rule(record.spec.spec)
        self.repo.set_phase(record.id, ExperimentPhase.RUNNING)
        self._emit(ControllerEvent("experiment", record.name, state=ExperimentPhase.RUNNING.value))
        try:
            await self._recover()
            while not await self._reconcile_once():
                await self._wait_for_change()
        finally:
            await self._shutdown_trials()
        return self._reload()

    async def observe(self, trial_name: str, observations: Sequence[Observation]) -> bool:
        """Store observations of a running trial; returns whether the trial should stop."""
        if self._writer is not None:
            await self._writer.write(self.record, trial_name, observations)
        else:
            self.repo.add_observations(self.record, trial_name, observations)
        objective = self.spec.spec.objective.objective_metric_name
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

    def _reload(self) -> ExperimentRecord:
        self.record = self.repo.experiment_by_id(self.record.id)
        return self.record

    async def _reconcile_once(self) -> bool:
        """One pass; returns True when the experiment has ended."""
        record = self._reload()
        if record.phase.finished:
            # Ended elsewhere (a stop request served by another replica): stop our trials.
            for trial in self.repo.trials(record.id, states=ACTIVE_STATES):
                reason = record.reason or "ExperimentStopped"
                await self._kill(
                    trial.name, _Ending(TrialState.KILLED, reason, record.message or "")
                )
            await self._await_tasks()
            return True
        if self._stop_message is not None:
            await self._end(ExperimentPhase.STOPPED, "ExperimentStopped", self._stop_message)
            return True
        history = self._history.refresh()
        self._report_best(history)
        verdict = self._verdict(record, history)
        if verdict is not None:
            await self._end(*verdict)
            return True
        launched = await self._launch(record, history)
        if launched == 0 and not self._tasks and not any(t.state in ACTIVE_STATES for t in history):
            await self._end(
                ExperimentPhase.SUCCEEDED,
                "ExperimentSuggestionEndReached",
                "the algorithm has no more parameter sets to suggest (search space exhausted)",
            )
            return True
        return False

    async def _wait_for_change(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), IDLE_INTERVAL)
        self._wake.clear()

    def _verdict(
        self, record: ExperimentRecord, history: Sequence[Trial]
    ) -> tuple[ExperimentPhase, str, str] | None:
        return experiment_verdict(record.spec.spec, history)

    async def _launch(self, record: ExperimentRecord, history: Sequence[Trial]) -> int | None:
        """Fill free slots with new trials; None when there was no room to ask for any."""
        spec = record.spec.spec
        active = sum(1 for t in history if t.state in ACTIVE_STATES)
        room = spec.parallel_trial_count - active
        if spec.max_trial_count is not None:
            room = min(room, spec.max_trial_count - len(history))
        if room <= 0:
            return None
        assert self._suggester is not None
        suggestions = await asyncio.to_thread(self._suggester.suggest, history, room)
        if not suggestions:
            return 0
        rows = [
            (
                {p.name: p.convert(s.parameters[p.name]) for p in spec.parameters},
                dict(s.attrs),
            )
            for s in suggestions[:room]
        ]
        trials = self.repo.create_trials(record, rows)
        for trial in trials:
            await self._start(record, trial)
        return len(trials)

    async def _start(self, record: ExperimentRecord, trial: Trial) -> None:
        try:
            rendered = render_trial(record.spec, trial)
            handle = await self.runner.start(
                record.spec, trial, rendered, self._trial_env(record, trial)
            )
        except (RunnerError, KeyError, ValueError) as e:
            message = e.message if isinstance(e, RunnerError) else f"cannot render trial: {e}"
            self.repo.finish_trial(record.id, trial.name, TrialState.FAILED, "StartError", message)
            self._emit(ControllerEvent("trial", record.name, trial.name, "Failed", reason=message))
            return
        self.repo.mark_running(record.id, trial.name, handle.ref)
        self._emit(ControllerEvent("trial", record.name, trial.name, TrialState.RUNNING.value))
        self._track(trial.name, handle)

    def _track(self, trial_name: str, handle: TrialHandle) -> None:
        self._handles[trial_name] = handle
        task = asyncio.create_task(self._drive(trial_name, handle), name=f"trial {trial_name}")
        self._tasks[trial_name] = task
        task.add_done_callback(lambda _: self._wake.set())

    async def _recover(self) -> None:
        """Pick up trials stored by an earlier controller of this experiment."""
        record = self.record
        for trial in self.repo.history(record.id, with_curves=True):
            if trial.curve:
                self._curves[trial.name] = dict(trial.curve)
            if trial.state is TrialState.RUNNING:
                handle = await self.runner.attach(record.spec, trial)
                if handle is not None:
                    self._track(trial.name, handle)
                    continue
                self.repo.finish_trial(
                    record.id,
                    trial.name,
                    TrialState.FAILED,
                    "TrialLost",
                    "the trial's process was lost when its controller stopped",
                )
            elif trial.state is TrialState.CREATED:
                await self._start(record, trial)

    # -- one trial -----------------------------------------------------------------------

    async def _drive(self, trial_name: str, handle: TrialHandle) -> None:
        spec = self.spec.spec
        kind = spec.metrics_collector_spec.kind
        parser = (
            metrics.parser_for(spec) if kind in (CollectorKind.STDOUT, CollectorKind.FILE) else None
        )
        tailer: metrics.FileTailer | None = None
        poller: asyncio.Task[None] | None = None
        metrics_path = handle.metrics_path
        if kind is CollectorKind.FILE and parser is not None and metrics_path is not None:
            tailer = metrics.FileTailer(metrics_path, parser)
            poller = asyncio.create_task(self._poll_file(trial_name, tailer))
        try:
            async for line in handle.lines():
                if kind is CollectorKind.STDOUT and parser is not None:
                    observations = parser.parse(line)
                    if observations:
                        await self.observe(trial_name, observations)
            outcome = await handle.wait()
        except Exception as e:  # a broken stream must still end the trial
            log.exception("trial %s: lost its process", trial_name)
            with contextlib.suppress(Exception):
                await handle.kill()
            outcome = TrialOutcome(False, "RunnerError", str(e))
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
        if tailer is not None:
            final = tailer.poll(final=True)
            if final:
                await self.observe(trial_name, final)
        self._finish_trial(trial_name, outcome)
        self._handles.pop(trial_name, None)
        self._tasks.pop(trial_name, None)

    async def _poll_file(self, trial_name: str, tailer: metrics.FileTailer) -> None:
        while True:
            observations = tailer.poll()
            if observations:
                await self.observe(trial_name, observations)
            await asyncio.sleep(FILE_POLL_INTERVAL)

    def _finish_trial(self, trial_name: str, outcome: TrialOutcome) -> None:
        record = self.record
        ending = self._endings.pop(trial_name, None)
        if ending is not None:
            state, reason, message = ending.state, ending.reason, ending.message
        elif outcome.succeeded:
            has_objective = bool(self._curves.get(trial_name))
            no_collector = self.spec.spec.metrics_collector_spec.kind is CollectorKind.NONE
            if has_objective or no_collector:
                state, reason, message = TrialState.SUCCEEDED, outcome.reason, outcome.message
            else:
                state = TrialState.METRICS_UNAVAILABLE
                reason = "MetricsUnavailable"
                message = (
                    f"the trial succeeded but never reported "
                    f"{self.spec.spec.objective.objective_metric_name}"
                )
        else:
            state, reason, message = TrialState.FAILED, outcome.reason, outcome.message
        if self.repo.finish_trial(record.id, trial_name, state, reason, message):
            self._emit(
                ControllerEvent("trial", record.name, trial_name, state.value, reason=message)
            )

    async def _maybe_stop_early(self, trial_name: str) -> bool:
        assert self._rule is not None
        history = self._history.refresh()
        by_name = {t.name: t for t in history}
        trial = by_name.get(trial_name)
        if trial is None or trial.state not in ACTIVE_STATES:
            return False
        for t in history:
            t.with_curve(self._curves.get(t.name, {}))
        others = [t for t in history if t.name != trial_name]
        decision = self._rule.should_stop(trial, others)
        if not decision.stop:
            return False
        await self._kill(
            trial_name, _Ending(TrialState.EARLY_STOPPED, "EarlyStopped", decision.reason or "")
        )
        return True

    async def _kill(self, trial_name: str, ending: _Ending) -> None:
        self._endings.setdefault(trial_name, ending)
        handle = self._handles.get(trial_name)
        if handle is not None:
            await handle.kill()
        else:
            # Not ours to run (ask/tell) or not started: record the ending directly.
            self._endings.pop(trial_name, None)
            if self.repo.finish_trial(
                self.record.id, trial_name, ending.state, ending.reason, ending.message
            ):
                self._emit(
                    ControllerEvent("trial", self.record.name, trial_name, ending.state.value)
                )

    # -- ending --------------------------------------------------------------------------

    async def _end(self, phase: ExperimentPhase, reason: str, message: str) -> None:
        record = self.record
        kill_reason = "ExperimentStopped" if phase is ExperimentPhase.STOPPED else reason
        for trial in self.repo.trials(record.id, states=ACTIVE_STATES):
            await self._kill(trial.name, _Ending(TrialState.KILLED, kill_reason, message))
        await self._await_tasks()
        self.repo.set_phase(record.id, phase, reason, message)
        self._emit(ControllerEvent("experiment", record.name, state=phase.value, reason=message))

    async def _await_tasks(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def _shutdown_trials(self) -> None:
        """On any exit (cancellation included), leave no process behind and no trial Running.

        Trials of a detached runner (Kubernetes Jobs) outlive this process: they are left
        running, still Running in the database, for the next controller to re-attach.
        """
        if not self._tasks:
            return
        if self.runner.detached:
            for task in self._tasks.values():
                task.cancel()
            await self._await_tasks()
            return
        for name in list(self._handles):
            await self._kill(
                name, _Ending(TrialState.KILLED, "ControllerStopped", "controller stopped")
            )
        await self._await_tasks()

    def _report_best(self, history: Sequence[Trial]) -> None:
        objective = self.spec.spec.objective
        values = [
            t.objective
            for t in history
            if t.state.completed and t.objective is not None and math.isfinite(t.objective)
        ]
        if not values:
            return
        best = min(values) if objective.type.value == "minimize" else max(values)
        if self._best is None or objective.better(best, self._best):
            self._best = best
            self._emit(ControllerEvent("best", self.record.name, value=best))

    def _emit(self, event: ControllerEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed")
