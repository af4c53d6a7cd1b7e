"""The shapes people see: leaderboard rows and experiment summaries, shared by CLI and API."""

from __future__ import annotations

import math
from typing import Any

from tuner.storage import ExperimentRecord, Repository
from tuner.trials import Trial, TrialState


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def leaderboard_row(trial: Trial) -> dict[str, Any]:
    """One trial as ``tuner leaderboard --json`` and the REST leaderboard show it."""
    return {
        "trial": trial.name,
        "status": trial.state.value,
        "parameters": dict(trial.parameters),
        "objective": _number(trial.objective),
        "metrics": {k: _number(v) for k, v in sorted(trial.metrics.items())},
        "steps": trial.steps,
        "reason": trial.message if trial.state is not TrialState.SUCCEEDED else None,
    }


def experiment_summary(repo: Repository, record: ExperimentRecord) -> dict[str, Any]:
    """A Katib-shaped status: phase, reason, trial counts and the current optimal trial."""
    counts = repo.counts(record.id)
    best = repo.leaderboard(
        record, states=(TrialState.SUCCEEDED, TrialState.EARLY_STOPPED), limit=1
    )
    optimal = None
    if best and best[0].objective is not None:
        trial = best[0]
        optimal = {
            "bestTrialName": trial.name,
            "parameterAssignments": [{"name": k, "value": v} for k, v in trial.parameters.items()],
            "observation": {
                "metrics": [
                    {"name": k, "value": _number(v)} for k, v in sorted(trial.metrics.items())
                ]
            },
        }
    return {
        "phase": record.phase.value,
        "reason": record.reason,
        "message": record.message,
        "trials": sum(counts.values()),
        "trialCounts": {state.value: n for state, n in counts.items()},
        "currentOptimalTrial": optimal,
        "totalSteps": repo.total_steps(record.id),
        "stepsWithoutStopping": _steps_without_stopping(repo, record),
        "startTime": record.started_at.isoformat() if record.started_at else None,
        "completionTime": record.completed_at.isoformat() if record.completed_at else None,
    }


def _steps_without_stopping(repo: Repository, record: ExperimentRecord) -> int:
    """An estimate of the steps a run without early stopping would have used.

    Each early-stopped trial is counted at the longest run of any trial that was not stopped.
    """
    trials = repo.trials(record.id)
    full = max((t.steps for t in trials if t.state is not TrialState.EARLY_STOPPED), default=0)
    return sum(
        max(full, t.steps) if t.state is TrialState.EARLY_STOPPED else t.steps for t in trials
    )
