"""Ask/tell: experiments without a ``trialTemplate``, driven by their clients.

A client asks for trials (:meth:`AskTell.suggest` creates Running trials from the experiment's
suggester), runs them itself, reports values while they run and tells how each ended
(:meth:`AskTell.complete`). The experiment ends by the same rules as one a controller drives:
both call the pure decisions of :mod:`tuner.lifecycle`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from tuner import early_stopping, lifecycle, warmstart
from tuner.algorithms.base import Suggester
from tuner.errors import Conflict, FieldError, InvalidRequest, SpecError
from tuner.events import Event, EventHub
from tuner.lifecycle import Verdict
from tuner.storage import ExperimentRecord, Repository
from tuner.storage.aio import AsyncRepository
from tuner.storage.repository import utcnow
from tuner.trials import ACTIVE_STATES, ExperimentPhase, Observation, Trial, TrialState

log = logging.getLogger(__name__)

ASK_TELL_REF = "ask-tell"
"""The ``runner_ref`` of an ask/tell trial: no runner knows it."""

ASK_EXPIRED = "AskExpired"
"""The reason of an asked trial that was neither reported nor told within the ask timeout."""

DEFAULT_ASK_TIMEOUT = 86400.0
"""Seconds an asked trial may go without a report or a tell before it expires (a day)."""


def is_ask_tell(record: ExperimentRecord) -> bool:
    """Whether the experiment is driven by its clients (it has no ``trialTemplate``)."""
    return record.experiment.spec.trial_template is None


def ended(record: ExperimentRecord) -> str:
    """Why a finished experiment takes no more trials."""
    return f"experiment {record.name} is {record.phase.value} ({record.reason}): {record.message}"


class AskTell:
    """The ask/tell side of the service: suggesters, stopping rules and best values in memory,
    one per experiment, rebuilt from the stored history after a restart.

    An asked trial lives as long as its client shows signs of life: a trial that is neither
    reported nor told for ``ask_timeout`` seconds (a lost notebook) ends Killed with reason
    ``AskExpired`` and frees its slot. Killed, not Failed: the client went away, the
    parameters did not fail, so it does not count against ``maxFailedTrialCount``.

    Args:
        db: the database.
        hub: where changes are published.
        ask_timeout: seconds since an asked trial was asked or last reported before it expires.
    """

    def __init__(
        self, db: AsyncRepository, hub: EventHub, ask_timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> None:
        self.db = db
        self.hub = hub
        self.ask_timeout = ask_timeout
        self._suggesters: dict[int, Suggester] = {}
        self._rules: dict[int, early_stopping.EarlyStoppingRule | None] = {}
        self._best: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def lock(self, experiment_id: int) -> asyncio.Lock:
        """The lock that serializes changes of one experiment made by this process."""
        return self._locks.setdefault(experiment_id, asyncio.Lock())

    def forget(self, experiment_id: int) -> None:
        """Drop what is kept in memory for a deleted experiment."""
        self._suggesters.pop(experiment_id, None)
        self._rules.pop(experiment_id, None)
        self._best.pop(experiment_id, None)
        self._locks.pop(experiment_id, None)

    async def suggest(self, record: ExperimentRecord, count: int) -> tuple[list[Trial], str | None]:
        """Create up to ``count`` Running trials; returns them and why not more."""
        if not is_ask_tell(record):
            raise InvalidRequest(
                f"experiment {record.name} has a trialTemplate: its controller creates and runs "
                "the trials; suggestions are for experiments without trialTemplate (ask/tell)"
            )
        async with self.lock(record.id):
            record = await self.db.experiment_by_id(record.id)
            if await self._expire(record):
                record = await self.db.experiment_by_id(record.id)
            if record.phase.finished:
                return [], ended(record)
            spec = record.experiment.spec
            history = await self.db.history(record.id)
            verdict = lifecycle.experiment_verdict(spec, history)
            if verdict is not None:
                await self.end(record, verdict)
                return [], ended(await self.db.experiment_by_id(record.id))
            active = lifecycle.active_count(history)
            room = min(count, lifecycle.room_for_trials(spec, active, len(history)))
            if room <= 0:
                return (
                    [],
                    f"no room for new trials: {lifecycle.why_no_room(spec, active, len(history))}",
                )
            suggester = self._suggesters.get(record.id)
            if suggester is None:
                suggester = await warmstart.open_suggester(self.db, record.experiment)
                self._suggesters[record.id] = suggester
            suggest = warmstart.suggest  # enqueued points first
            suggestions = await asyncio.to_thread(suggest, suggester, spec, history, room)
            if not suggestions:
                exhausted = lifecycle.suggestions_exhausted(0, active)
                if exhausted is not None:
                    await self.end(record, exhausted)
                    return [], ended(await self.db.experiment_by_id(record.id))
                return [], "the algorithm has nothing to suggest until running trials complete"
            rows = lifecycle.trial_rows(spec, suggestions, room)
            trials = await self.db.run(_create_running, record, rows)
            for trial in trials:
                self.hub.publish_trial(record, trial.name, TrialState.RUNNING.value)
            if len(trials) == count:
                return trials, None
            why = lifecycle.why_no_room(spec, active + len(trials), len(history) + len(trials))
            return trials, f"created {len(trials)} of {count}: {why}"

    async def open_trials(self, record: ExperimentRecord) -> list[Trial]:
        """The trials asked for and not told yet (stale ones expire first), oldest first."""
        if not is_ask_tell(record):
            raise InvalidRequest(
                f"experiment {record.name} has a trialTemplate: its controller runs the trials; "
                "open trials are those of experiments without trialTemplate (ask/tell)"
            )
        await self.expire(record)
        return await self.db.trials(record.id, states=ACTIVE_STATES)

    async def expire(self, record: ExperimentRecord) -> list[str]:
        """End the experiment's stale asked trials (Killed, ``AskExpired``); returns their names."""
        async with self.lock(record.id):
            return await self._expire(await self.db.experiment_by_id(record.id))

    async def keep_expiring(self) -> None:
        """Expire stale asked trials of every Running ask/tell experiment, until cancelled."""
        interval = min(60.0, max(0.2, self.ask_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                offset = 0
                while batch := await self.db.list_experiments(
                    phase=ExperimentPhase.RUNNING.value, limit=500, offset=offset
                ):
                    offset += len(batch)
                    for record in batch:
                        if is_ask_tell(record):
                            await self.expire(record)
            except Exception:  # a lost database must not end the sweeps: try again later
                log.exception("expiring stale ask/tell trials failed")

    async def _expire(self, record: ExperimentRecord) -> list[str]:
        """:meth:`expire`, with the experiment's lock held."""
        if record.phase.finished:
            return []
        active = await self.db.trials(record.id, states=ACTIVE_STATES)
        if not active:
            return []
        reported = await self.db.last_report_times(record.id, [t.name for t in active])
        now = utcnow()
        expired = []
        for trial in active:
            signs = [t for t in (trial.started_at, trial.created_at, reported.get(trial.name)) if t]
            if signs and (now - max(signs)).total_seconds() <= self.ask_timeout:
                continue
            message = (
                f"neither reported nor told within {self.ask_timeout:g}s (the ask timeout); "
                "its slot is free again"
            )
            if await self.db.finish_trial(
                record.id, trial.name, TrialState.KILLED, ASK_EXPIRED, message
            ):
                self.hub.publish_trial(record, trial.name, TrialState.KILLED.value, message)
                expired.append(trial.name)
        if expired:
            log.info("%s/%s: asked trials expired: %s", record.namespace, record.name, expired)
            await self.settle(record)
        return expired

    async def complete(
        self,
        record: ExperimentRecord,
        trial_name: str,
        succeeded: bool,
        values: Mapping[str, float],
        message: str | None = None,
    ) -> Trial:
        """Store final values (one step after the last) and finish the trial."""
        if not is_ask_tell(record):
            raise InvalidRequest(
                f"experiment {record.name} has a trialTemplate: its trials finish when their "
                "process exits"
            )
        objective = record.experiment.spec.objective
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
        async with self.lock(record.id):
            record = await self.db.experiment_by_id(record.id)
            trial = await self.db.run(_store_final_values, record, trial_name, values)
            ending = lifecycle.trial_ending(
                record.experiment.spec,
                succeeded,
                objective.objective_metric_name in trial.metrics,
                "TrialSucceeded" if succeeded else "TrialFailed",
                message if succeeded else message or "the client reported the trial as failed",
            )
            if await self.db.finish_trial(
                record.id, trial_name, ending.state, ending.reason, ending.message
            ):
                self.hub.publish_trial(record, trial_name, ending.state.value, ending.message)
            await self.settle(record)
            return await self.db.get_trial(record.id, trial_name)

    async def early_stop(self, record: ExperimentRecord, trial_name: str) -> bool:
        """After a push: whether the experiment's stopping rule ends the trial now."""
        if record.id not in self._rules:
            self._rules[record.id] = early_stopping.create_rule(record.experiment.spec)
        rule = self._rules[record.id]
        if rule is None:
            return False
        async with self.lock(record.id):
            history = await self.db.history(record.id, with_curves=True)
            trial = next((t for t in history if t.name == trial_name), None)
            if trial is None or trial.state not in ACTIVE_STATES:
                return trial is not None
            decision = rule.should_stop(trial, [t for t in history if t.name != trial_name])
            if not decision.stop:
                return False
            if await self.db.finish_trial(
                record.id, trial_name, TrialState.EARLY_STOPPED, "EarlyStopped", decision.reason
            ):
                self.hub.publish_trial(record, trial_name, TrialState.EARLY_STOPPED.value)
            await self.settle(record)
            return True

    async def settle(self, record: ExperimentRecord) -> None:
        """Report a new best and end the experiment when the rules say so."""
        history = await self.db.history(record.id)
        spec = record.experiment.spec
        best = lifecycle.new_best(spec.objective, history, self._best.get(record.id))
        if best is not None:
            self._best[record.id] = best
            self.hub.publish(
                record.id,
                Event(kind="best", namespace=record.namespace, experiment=record.name, value=best),
            )
        verdict = lifecycle.experiment_verdict(spec, history)
        if verdict is not None:
            await self.end(record, verdict)

    async def end(self, record: ExperimentRecord, verdict: Verdict) -> None:
        """End an experiment no controller of this process drives: kill its active trials."""
        ending = lifecycle.kill_ending(verdict)
        for trial in await self.db.trials(record.id, states=ACTIVE_STATES):
            if await self.db.finish_trial(
                record.id, trial.name, ending.state, ending.reason, ending.message
            ):
                self.hub.publish_trial(record, trial.name, ending.state.value, ending.message)
        await self.db.set_phase(record.id, verdict.phase, verdict.reason, verdict.message)
        self.hub.publish_phase(await self.db.experiment_by_id(record.id))


def _create_running(
    repo: Repository,
    record: ExperimentRecord,
    rows: Sequence[tuple[dict[str, Any], dict[str, Any]]],
) -> list[Trial]:
    """Store suggested trials and mark them Running at once (one hop to the database)."""
    created = repo.create_trials(record, rows)
    for trial in created:
        repo.mark_running(record.id, trial.name, ASK_TELL_REF)
    return [repo.get_trial(record.id, t.name) for t in created]


def _store_final_values(
    repo: Repository, record: ExperimentRecord, trial_name: str, values: Mapping[str, float]
) -> Trial:
    """Check the trial is active and store its final values one step after its last."""
    trial = repo.get_trial(record.id, trial_name)
    if trial.state.finished and trial.reason == ASK_EXPIRED:
        raise Conflict(f"trial {trial_name} expired ({ASK_EXPIRED}: {trial.message}); ask again")
    if trial.state.finished:
        raise Conflict(f"trial {trial_name} has already finished ({trial.state.value})")
    if values:
        last = repo.last_steps(record.id, trial_name)
        step = max(last.values(), default=-1) + 1
        now = utcnow()
        repo.add_observations(
            record, trial_name, [Observation(k, step, float(v), now) for k, v in values.items()]
        )
        trial = repo.get_trial(record.id, trial_name)
    return trial
