"""The shapes people see: leaderboard rows and experiment summaries, shared by CLI and API."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from tuner.algorithms import auto
from tuner.errors import InvalidRequest
from tuner.pareto_view import front_trials
from tuner.spec import Objective
from tuner.storage import ExperimentRecord, Repository
from tuner.trials import RANKED_STATES, Trial, TrialState

ALL_STATES = "all"
"""The state filter value that asks the leaderboard for trials in every state."""


def leaderboard_states(values: Iterable[str] | None) -> tuple[TrialState, ...] | None:
    """The states a leaderboard shows, from ``--state`` / ``status=`` values.

    Each value is a state or a comma-separated list of them (any case). Nothing given means
    :data:`~tuner.trials.RANKED_STATES` (finished with metrics); ``all`` means every state
    (``None``, as :meth:`Repository.leaderboard` takes it).

    Raises:
        InvalidRequest: an unknown state, with the list of known ones.
    """
    by_name = {state.value.lower(): state for state in TrialState}
    names = [part.strip() for v in values or () for part in v.split(",") if part.strip()]
    if not names:
        return RANKED_STATES
    if any(n.lower() == ALL_STATES for n in names):
        return None
    unknown = [n for n in names if n.lower() not in by_name]
    if unknown:
        known = ", ".join([*(s.value for s in TrialState), ALL_STATES])
        raise InvalidRequest(f"unknown trial state {unknown[0]!r}: the states are {known}")
    return tuple(dict.fromkeys(by_name[n.lower()] for n in names))


def check_metric(objective: Objective, metric: str | None) -> None:
    """Raise :class:`InvalidRequest` naming the known metrics when ``metric`` is not one."""
    if metric is not None and metric not in objective.metric_names:
        raise InvalidRequest(
            f"unknown metric {metric!r}: the experiment's metrics are "
            f"{', '.join(objective.metric_names)}"
        )


NON_FINITE = ("NaN", "Infinity", "-Infinity")
"""How JSON, CSV and the dashboard show metric values that are not finite numbers (JSON has
no literal for them; these are JavaScript's and Python's ``float()`` spellings)."""


def metric_value(value: float | None) -> float | str | None:
    """A metric value as people see it: the number, ``"NaN"``, ``"Infinity"`` or
    ``"-Infinity"``; ``None`` (null) only when there is no value at all."""
    if value is None or math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def objective_value(trial: Trial) -> float | str | None:
    """The trial's objective as shown: NaN when the objective metric was reported but only as
    NaN (the databases store NaN as NULL, so the value alone cannot tell)."""
    if trial.objective is None and trial.steps > 0:
        return "NaN"
    return metric_value(trial.objective)


def leaderboard_row(trial: Trial) -> dict[str, Any]:
    """One trial as ``tuner leaderboard --json`` and the REST leaderboard show it."""
    return {
        "trial": trial.name,
        "status": trial.state.value,
        "parameters": dict(trial.parameters),
        "objective": objective_value(trial),
        "metrics": {k: metric_value(v) for k, v in sorted(trial.metrics.items())},
        "steps": trial.steps,
        "reason": trial.message if trial.state is not TrialState.SUCCEEDED else None,
    }


def optimal_trial(trial: Trial) -> dict[str, Any]:
    """One trial in Katib's ``currentOptimalTrial`` shape."""
    return {
        "bestTrialName": trial.name,
        "parameterAssignments": [{"name": k, "value": v} for k, v in trial.parameters.items()],
        "observation": {
            "metrics": [
                {"name": k, "value": metric_value(v)} for k, v in sorted(trial.metrics.items())
            ]
        },
    }


def experiment_summary(repo: Repository, record: ExperimentRecord) -> dict[str, Any]:
    """A Katib-shaped status: phase, reason, trial counts and the current optimal trial."""
    counts = repo.counts(record.id)
    optimal: dict[str, Any] | list[dict[str, Any]] | None = None
    if record.experiment.spec.study.multi_objective:
        # Several objectives: the Pareto front, a list of entries of Katib's shape.
        optimal = [optimal_trial(t) for t in front_trials(repo, record)]
    else:
        best = repo.leaderboard(record, states=RANKED_STATES, limit=1)
        if best and best[0].objective is not None and math.isfinite(best[0].objective):
            optimal = optimal_trial(best[0])
    return {
        "phase": record.phase.value,
        "reason": record.reason,
        "message": record.message,
        "conditions": experiment_conditions(record),
        "trials": sum(counts.values()),
        "trialCounts": {state.value: n for state, n in counts.items()},
        "currentOptimalTrial": optimal,
        **_step_totals(repo, record, counts),
        "startTime": record.started_at.isoformat() if record.started_at else None,
        "completionTime": record.completed_at.isoformat() if record.completed_at else None,
        **_algorithm(record),
    }


def _algorithm(record: ExperimentRecord) -> dict[str, Any]:
    """``{"algorithm": ...}``: what ``auto`` chose and why (nothing for other algorithms)."""
    chosen = auto.status(record.experiment.spec.study)
    return {"algorithm": chosen} if chosen else {}


def _step_totals(
    repo: Repository, record: ExperimentRecord, counts: dict[TrialState, int]
) -> dict[str, int]:
    """Steps run, and an estimate of the steps a run without early stopping would have used.

    Each early-stopped trial is counted at the longest run of any trial that was not stopped.
    """
    stats = repo.step_stats(record.id)
    total = sum(t for t, _ in stats.values())
    stopped_sum, stopped_max = stats.get(TrialState.EARLY_STOPPED, (0, 0))
    full = max(
        (m for state, (_, m) in stats.items() if state is not TrialState.EARLY_STOPPED), default=0
    )
    n_stopped = counts.get(TrialState.EARLY_STOPPED, 0)
    without = total - stopped_sum + n_stopped * max(full, stopped_max)
    return {"totalSteps": total, "stepsWithoutStopping": without}


def _time(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _condition(
    type_: str, status: bool, reason: str | None, message: str | None, time: datetime | None
) -> dict[str, Any]:
    return {
        "type": type_,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": _time(time),
    }


def experiment_conditions(record: ExperimentRecord) -> list[dict[str, Any]]:
    """Katib-style conditions derived from the stored phase and timestamps.

    ``Created`` is always there; ``Running`` once the experiment started (``"False"`` after it
    ended); the final phase (Succeeded, Failed or Stopped) carries the stored reason and message.
    """
    final = record.phase.value if record.phase.finished else None
    return _life_conditions(
        "Experiment",
        record.created_at,
        record.started_at,
        record.completed_at,
        final,
        record.reason,
        record.message,
    )


def trial_conditions(trial: Trial) -> list[dict[str, Any]]:
    """Katib-style trial conditions: Created, Running, then the final state with its reason."""
    final = trial.state.value if trial.state.finished else None
    return _life_conditions(
        "Trial",
        trial.created_at,
        trial.started_at,
        trial.finished_at,
        final,
        trial.reason,
        trial.message,
    )


def _life_conditions(
    kind: str,
    created: datetime | None,
    started: datetime | None,
    finished: datetime | None,
    final: str | None,
    reason: str | None,
    message: str | None,
) -> list[dict[str, Any]]:
    """Created; Running (True while running, False once ended); then the final state, if any."""
    conditions = [_condition("Created", True, f"{kind}Created", f"{kind} is created", created)]
    if started is not None:
        running = final is None
        conditions.append(
            _condition(
                "Running",
                running,
                f"{kind}Running" if running else f"{kind}NotRunning",
                f"{kind} is running" if running else f"{kind} is not running",
                started if running else finished,
            )
        )
    if final is not None:
        conditions.append(_condition(final, True, reason, message, finished))
    return conditions
