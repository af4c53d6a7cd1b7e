"""The Pareto front of a stored experiment, as the status, REST, CLI and dashboard show it."""

from __future__ import annotations

import math
from typing import Any

from tuner.constraints import feasible
from tuner.pareto import hypervolume_history, pareto_front
from tuner.storage import ExperimentRecord, Repository
from tuner.trials import RANKED_STATES, Trial

__all__ = ["front_trials", "pareto_plot_data"]


def _ranked(repo: Repository, record: ExperimentRecord) -> list[Trial]:
    trials = repo.leaderboard(record, states=RANKED_STATES, limit=None)
    return sorted(trials, key=lambda t: t.number)


def _objectives(record: ExperimentRecord) -> Any:
    study = record.experiment.spec.study
    return study.objectives or (study.objective,)


def front_trials(repo: Repository, record: ExperimentRecord) -> list[Trial]:
    """The non-dominated finished trials (feasible ones only), in creation order.

    With one objective, the front is the trials with the best objective value.
    """
    study = record.experiment.spec.study
    return pareto_front(_ranked(repo, record), _objectives(record), study.constraints)


def pareto_plot_data(repo: Repository, record: ExperimentRecord) -> dict[str, Any]:
    """What the dashboard's Pareto plot draws: every candidate point, the front, and the
    hypervolume after each trial."""
    study = record.experiment.spec.study
    objectives = _objectives(record)
    trials = _ranked(repo, record)
    front = {t.name for t in pareto_front(trials, objectives, study.constraints)}
    history, reference = hypervolume_history(trials, objectives, study.constraints)
    points = []
    for t in trials:
        values = [t.metrics.get(o.metric) for o in objectives]
        if any(v is None or not math.isfinite(v) for v in values):
            continue
        points.append(
            {
                "trial": t.name,
                "number": t.number,
                "values": values,
                "front": t.name in front,
                "feasible": feasible(t, study.constraints),
            }
        )
    return {
        "objectives": [{"metric": o.metric, "type": o.direction.value} for o in objectives],
        "points": points,
        "hypervolume": [{"number": n, "value": v} for n, v in history],
        "referencePoint": reference,
    }
