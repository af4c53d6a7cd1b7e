"""What a push becomes: the metrics the objective lists, numbered as observations.

Shared by ``tuner serve`` (:mod:`tuner.service`) and ``tuner run``'s loopback endpoint
(:mod:`tuner.cli.loopback`).
"""

from __future__ import annotations

from collections.abc import Mapping

from tuner.storage import ExperimentRecord, Repository
from tuner.storage.repository import utcnow
from tuner.trials import Observation


def objective_metrics(
    record: ExperimentRecord, values: Mapping[str, float]
) -> tuple[dict[str, float], list[str]]:
    """A push's values split into those the objective lists and the names of the others."""
    known = set(record.experiment.spec.objective.metric_names)
    kept = {k: v for k, v in values.items() if k in known}
    return kept, sorted(set(values) - known)


def pushed_observations(
    repo: Repository,
    record: ExperimentRecord,
    trial_name: str,
    step: int | None,
    values: Mapping[str, float],
) -> list[Observation] | None:
    """The observations of a push, numbered; ``None`` when the trial has finished already.

    Without ``step``, each metric takes the step after its last stored one.
    """
    if repo.get_trial(record.id, trial_name).state.finished:
        return None
    if not values:
        return []
    if step is None:
        last = repo.last_steps(record.id, trial_name)
        steps = {k: last.get(k, -1) + 1 for k in values}
    else:
        steps = dict.fromkeys(values, step)
    now = utcnow()
    return [Observation(k, steps[k], float(v), now) for k, v in values.items()]
