"""The pure decisions of an experiment's life: functions of the spec and the stored trials.

No I/O and no asyncio here: the controller (:mod:`tuner.controller`, experiments with a
``trialTemplate``) and the ask/tell driver (:mod:`tuner.asktell`, experiments without one) read
the database, call these functions, and act on what they return. So both end experiments,
size batches, turn suggestions into trial rows and judge finished trials by the same rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tuner.algorithms.base import Suggestion
from tuner.errors import FieldError, SpecError, WrongState
from tuner.spec import (
    CollectorKind,
    Experiment,
    ExperimentSpec,
    Objective,
    ResumePolicy,
    load_spec,
)
from tuner.trials import ACTIVE_STATES, ExperimentPhase, ParamValue, Trial, TrialState

SUGGESTION_END = "ExperimentSuggestionEndReached"
GOAL_REACHED = "ExperimentGoalReached"
MAX_TRIALS_REACHED = "ExperimentMaxTrialsReached"
FAILED = "ExperimentFailed"
"""Katib's reason when failed trials reach ``maxFailedTrialCount`` (its only Failed reason)."""
RESTARTING = "ExperimentRestarting"
"""Katib's reason of an experiment continued after its budget was raised."""
TRIAL_LOST = "TrialLost"
"""The reason of a trial whose process vanished: Failed, but not the user's code's failure."""
SUGGESTION_END_MESSAGE = (
    "the algorithm has no more parameter sets to suggest (search space exhausted)"
)


class Verdict(NamedTuple):
    """How an experiment ends: its final phase, the reason and a human message."""

    phase: ExperimentPhase
    reason: str
    message: str


@dataclass(frozen=True)
class TrialEnding:
    """How one trial ends: its final state, the reason and a human message."""

    state: TrialState
    reason: str
    message: str | None


# -- the experiment -----------------------------------------------------------------------


def experiment_verdict(spec: ExperimentSpec, history: Sequence[Trial]) -> Verdict | None:
    """Whether the stored trials end the experiment, or ``None``.

    The goal reached, failed trials reaching ``maxFailedTrialCount``, or ``maxTrialCount``
    trials finished (checked in that order). As in Katib (``UpdateExperimentStatusCondition``
    in ``pkg/controller.v1beta1/experiment/util/status_util.go``), failed trials are Failed and
    MetricsUnavailable ones, and the experiment fails once there is at least one and their
    number is ``>= maxFailedTrialCount``.
    """
    return tally_verdict(spec, history, Tally.of(history))


def tally_verdict(spec: ExperimentSpec, changed: Sequence[Trial], tally: Tally) -> Verdict | None:
    """:func:`experiment_verdict` from counts kept up to date (:class:`Tally`) and the trials
    that changed since the last decision: the goal, once reached, ends the experiment at once,
    so only a trial that changed since can newly reach it."""
    objective = spec.objective
    candidate = best_trial(objective, changed) if objective.goal is not None else None
    if (
        candidate is not None
        and candidate.objective is not None
        and objective.goal_reached(candidate.objective)
    ):
        return Verdict(
            ExperimentPhase.SUCCEEDED,
            GOAL_REACHED,
            f"trial {candidate.name} reached {objective.objective_metric_name}="
            f"{candidate.objective:g} (goal {objective.goal:g})",
        )
    failed = tally.failed
    limit = spec.max_failed_trial_count
    if limit is not None and failed and len(failed) >= limit:
        return Verdict(ExperimentPhase.FAILED, FAILED, _failed_message(failed, limit))
    finished = tally.finished
    if spec.max_trial_count is not None and finished >= spec.max_trial_count:
        return Verdict(
            ExperimentPhase.SUCCEEDED,
            MAX_TRIALS_REACHED,
            f"{finished} trials finished (maxTrialCount {spec.max_trial_count})",
        )
    return None


@dataclass
class Tally:
    """What the decisions count over a history: active and finished trials, and the failed
    ones (:func:`counts_as_failure`). Kept up to date trial by trial (:meth:`replace`) by
    :class:`tuner.history.HistoryCache`, so a decision does not scan the whole history."""

    total: int = 0
    active: int = 0
    finished: int = 0
    failed: list[Trial] = field(default_factory=list)

    @classmethod
    def of(cls, history: Sequence[Trial]) -> Tally:
        tally = cls()
        for trial in history:
            tally.replace(None, trial)
        return tally

    def replace(self, old: Trial | None, new: Trial) -> None:
        """Count ``new`` in place of ``old`` (``None``: a trial not counted yet). A finished
        trial never changes again, so only an active ``old`` is taken back."""
        if old is None:
            self.total += 1
        elif old.state.finished:
            return
        else:
            self.active -= 1
        if new.state in ACTIVE_STATES:
            self.active += 1
        if new.state.finished:
            self.finished += 1
            if counts_as_failure(new):
                self.failed.append(new)


FAILED_STATES = (TrialState.FAILED, TrialState.METRICS_UNAVAILABLE)
"""The states that count against ``maxFailedTrialCount`` (Katib counts both)."""


def _failed_message(failed: Sequence[Trial], limit: int) -> str:
    """How many trials failed, of which kind, and the last one's message (the likely cause)."""
    unavailable = sum(1 for t in failed if t.state is TrialState.METRICS_UNAVAILABLE)
    kinds = f" ({unavailable} MetricsUnavailable)" if unavailable else ""
    message = f"{len(failed)} trials failed{kinds}, reaching maxFailedTrialCount {limit}"
    last = max(failed, key=lambda t: t.number)
    if last.message:
        message += f"; last, {last.name}: {last.message}"
    return message


def counts_as_failure(trial: Trial) -> bool:
    """Whether a trial uses up ``maxFailedTrialCount``: Failed or MetricsUnavailable, but not
    lost (its process vanished with its controller; that is no failure of the user's code)."""
    return trial.state in FAILED_STATES and trial.reason != TRIAL_LOST


def suggestions_exhausted(suggested: int, active: int) -> Verdict | None:
    """The ending when the algorithm suggested nothing and no trial is active any more."""
    if suggested == 0 and active == 0:
        return Verdict(ExperimentPhase.SUCCEEDED, SUGGESTION_END, SUGGESTION_END_MESSAGE)
    return None


def kill_ending(verdict: Verdict) -> TrialEnding:
    """How the still-active trials of an ending experiment end: Killed, with its reason."""
    reason = "ExperimentStopped" if verdict.phase is ExperimentPhase.STOPPED else verdict.reason
    return TrialEnding(TrialState.KILLED, reason, verdict.message)


def stopped(message: str) -> Verdict:
    """The ending of an experiment stopped by a user."""
    return Verdict(ExperimentPhase.STOPPED, "ExperimentStopped", message)


BUDGET_FIELDS = frozenset({"maxTrialCount", "parallelTrialCount", "maxFailedTrialCount"})


def edit_budget(experiment: Experiment, changes: Mapping[str, Any]) -> Experiment:
    """The experiment with its budget changed (a ``None`` value removes a limit).

    Raises:
        SpecError: a change of anything but the budget, or an invalid result.
    """
    unknown = sorted(set(changes) - BUDGET_FIELDS)
    if unknown:
        raise SpecError([FieldError(f"spec.{k}", "only the budget can be edited") for k in unknown])
    data = experiment.dump()
    for key, value in changes.items():
        if value is None:
            data["spec"].pop(key, None)
        else:
            data["spec"][key] = value
    return load_spec(data)


RESTARTABLE_POLICIES = frozenset({ResumePolicy.LONG_RUNNING, ResumePolicy.FROM_VOLUME})


def restartable(phase: ExperimentPhase, reason: str | None, spec: ExperimentSpec) -> bool:
    """Whether a finished experiment may be continued, as in Katib
    (``IsCompletedExperimentRestartable``): it succeeded by reaching ``maxTrialCount`` and its
    ``resumePolicy`` is LongRunning or FromVolume. (A Stopped experiment, which Katib does not
    have, can always be resumed.)"""
    return (
        phase is ExperimentPhase.SUCCEEDED
        and reason == MAX_TRIALS_REACHED
        and spec.resume_policy in RESTARTABLE_POLICIES
    )


def check_edit(
    name: str,
    phase: ExperimentPhase,
    reason: str | None,
    old: ExperimentSpec,
    new: ExperimentSpec,
    trials: int,
) -> None:
    """Katib's rules for editing the budget of an experiment that has ``trials`` trials.

    Raises:
        SpecError: the experiment succeeded or failed and cannot be continued
            (:func:`restartable`: Katib refuses any change of its spec, at
            ``spec.resumePolicy``), or the new ``maxTrialCount`` is not above the number of
            trials.
    """
    if phase in (ExperimentPhase.SUCCEEDED, ExperimentPhase.FAILED) and not restartable(
        phase, reason, old
    ):
        message = (
            f"experiment {name} has {phase.value} ({reason}) and cannot be changed: only an "
            "experiment that succeeded by reaching maxTrialCount, with resumePolicy "
            f"LongRunning or FromVolume, can be continued (this one's is "
            f"{old.resume_policy.value})"
        )
        raise SpecError([FieldError("spec.resumePolicy", message)])
    if new.max_trial_count is not None and new.max_trial_count <= trials:
        raise SpecError(
            [
                FieldError(
                    "spec.maxTrialCount",
                    f"must be greater than the number of trials ({trials})",
                )
            ]
        )


def resumed_by(
    old: ExperimentSpec, new: ExperimentSpec, changes: Mapping[str, Any]
) -> tuple[str, str] | None:
    """``(reason, message)`` when a budget edit resumes a finished experiment: a raised
    ``maxTrialCount``; ``None`` otherwise."""
    before, after = old.max_trial_count, new.max_trial_count
    if "maxTrialCount" not in changes or before is None or (after is not None and after <= before):
        return None
    limit = after if after is not None else "unlimited"
    return RESTARTING, f"maxTrialCount raised from {before} to {limit}"


def resume(name: str, phase: ExperimentPhase) -> tuple[str, str]:
    """``(reason, message)`` of resuming a Stopped experiment with its budget as it is.

    Raises:
        WrongState: the experiment is not Stopped (a Succeeded or Failed one continues when its
            budget is raised instead): the request is well formed, the stored state refuses it.
    """
    if phase is ExperimentPhase.STOPPED:
        return RESTARTING, "resumed by the user"
    if phase.finished:
        raise WrongState(
            f"experiment {name} has {phase.value}: raise its maxTrialCount to continue it "
            "(possible when it succeeded by reaching maxTrialCount and its resumePolicy is "
            "LongRunning or FromVolume)"
        )
    raise WrongState(f"experiment {name} is {phase.value}, not Stopped: nothing to resume")


# -- room and suggestions -----------------------------------------------------------------


def active_count(history: Sequence[Trial]) -> int:
    return sum(1 for t in history if t.state in ACTIVE_STATES)


def room_for_trials(spec: ExperimentSpec, active: int, total: int) -> int:
    """How many trials may be created now (<= 0: none), given active and all stored trials."""
    room = spec.parallel_trial_count - active
    if spec.max_trial_count is not None:
        room = min(room, spec.max_trial_count - total)
    return room


def why_no_room(spec: ExperimentSpec, active: int, total: int) -> str:
    """Why no more trials can be created now (after :func:`room_for_trials`)."""
    if spec.max_trial_count is not None and total >= spec.max_trial_count:
        return f"maxTrialCount ({spec.max_trial_count}) trials exist"
    if active >= spec.parallel_trial_count:
        return (
            f"parallelTrialCount ({spec.parallel_trial_count}) trials are running; "
            "complete some first"
        )
    return "the algorithm suggested fewer"


def trial_rows(
    spec: ExperimentSpec, suggestions: Sequence[Suggestion], room: int
) -> list[tuple[dict[str, ParamValue], dict[str, Any]]]:
    """The rows to store for at most ``room`` suggestions: typed parameters and attributes."""
    return [
        ({p.name: p.convert(s.parameters[p.name]) for p in spec.parameters}, dict(s.attrs))
        for s in suggestions[:room]
    ]


# -- one trial ----------------------------------------------------------------------------


TRIAL_SUCCEEDED = "TrialSucceeded"
TRIAL_FAILED = "TrialFailed"


def trial_failed_reason(reason: str) -> str:
    """Katib's reason of a failed trial, with the runner's (``Error``, ``OOMKilled``, ...)
    after it as Katib appends the Job's: ``TrialFailed. Job reason: OOMKilled``. tuner's own
    :data:`TRIAL_LOST` stays as it is (:func:`counts_as_failure` reads it)."""
    if reason == TRIAL_LOST:
        return reason
    if not reason or reason.startswith(TRIAL_FAILED):
        return reason or TRIAL_FAILED
    return f"{TRIAL_FAILED}. Job reason: {reason}"


def trial_ending(
    spec: ExperimentSpec,
    succeeded: bool,
    reported_objective: bool,
    reason: str,
    message: str | None,
    seen: Sequence[str] = (),
    problem: str | None = None,
) -> TrialEnding:
    """How a trial whose process (or client) finished ends.

    A failure is Failed. A success is Succeeded when the objective metric was reported (or no
    metrics are collected), else MetricsUnavailable. ``seen`` are a few ``name=value`` samples
    of metric-looking output whose names are not in the spec (see
    :attr:`tuner.collectors.LineParser.unknown`): the MetricsUnavailable message quotes them, since
    a misspelt ``objectiveMetricName`` is the usual cause. ``problem`` says why the collector
    failed (a metrics file never written, a line that is not JSON): as in Katib, the trial's
    metrics are then unavailable, whatever was collected before.
    """
    if not succeeded:
        return TrialEnding(TrialState.FAILED, trial_failed_reason(reason), message)
    if problem:
        return TrialEnding(
            TrialState.METRICS_UNAVAILABLE,
            "MetricsUnavailable",
            f"the trial succeeded but {problem}",
        )
    if reported_objective or spec.metrics_collector_spec.kind is CollectorKind.NONE:
        return TrialEnding(TrialState.SUCCEEDED, TRIAL_SUCCEEDED, message)
    name = spec.objective.objective_metric_name
    text = f"the trial succeeded but never reported `{name}`"
    if seen:
        samples = ", ".join(f"`{s}`" for s in seen)
        text += f"; lines looked like {samples} (names not in the spec's objective)"
    return TrialEnding(TrialState.METRICS_UNAVAILABLE, "MetricsUnavailable", text)


# -- the best -----------------------------------------------------------------------------


def best_trial(objective: Objective, history: Sequence[Trial]) -> Trial | None:
    """The completed trial with the best finite objective (the first of equals)."""
    best: Trial | None = None
    best_value = math.nan
    for t in history:
        value = t.objective
        if not t.state.completed or value is None or not math.isfinite(value):
            continue
        if best is None or objective.better(value, best_value):
            best, best_value = t, value
    return best


def new_best(
    objective: Objective, history: Sequence[Trial], previous: float | None
) -> float | None:
    """The best objective value when it improves on ``previous``; ``None`` otherwise."""
    best = best_trial(objective, history)
    if best is None or best.objective is None:
        return None
    if previous is None or objective.better(best.objective, previous):
        return best.objective
    return None
