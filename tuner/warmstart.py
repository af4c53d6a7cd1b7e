"""Warm starts: points tried first, and the trials of another experiment fed to the algorithm.

Enqueued points (``spec.initialPoints``, and those added later over REST, which are appended
to the stored spec) are suggested before the algorithm's own, in order, each exactly once. A
point's index in the list is recorded on the trial made from it (``attrs["enqueued"]``), in the
same write that stores the trial, so the stored history alone says which points are used: a
restarted controller neither skips nor repeats one. They are ordinary trials: the algorithm
learns from their results as from any other.

``spec.warmStartFrom: NAME`` names an experiment of the same namespace. Its completed trials
(``Succeeded`` or ``EarlyStopped`` with an objective value) are read once when the suggester is
built and put before the experiment's own history in every call of the algorithm
(:class:`WarmSuggester`): Optuna samplers receive them as finished trials, grid search skips
their points. They are never run again and are not trials of the new experiment (its counts,
budget and leaderboard do not see them). The two experiments are compatible when they have the
same parameter names and types, every fed value lies inside the new space
(:func:`compatibility_errors`), and they optimise the same objective metric in the same
direction.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tuner.algorithms.base import Suggester, Suggestion
from tuner.algorithms.registry import create_suggester
from tuner.errors import FieldError, InvalidRequest, NotFound, SpecError
from tuner.space import SearchSpace
from tuner.spec import Experiment, ExperimentSpec
from tuner.spec.warm import MAX_POINTS, REFUSED_BY, describe, point_errors
from tuner.storage import ExperimentRecord, Repository
from tuner.storage.aio import AsyncRepository
from tuner.trials import Trial

__all__ = [
    "ENQUEUED_ATTR",
    "WARM_START_ATTR",
    "WarmSuggester",
    "build_suggester",
    "check_warm_start",
    "compatibility_errors",
    "enqueued",
    "open_suggester",
    "pending_points",
    "prior_trials",
    "suggest",
]

ENQUEUED_ATTR = "enqueued"
"""The trial attribute holding the index of the enqueued point a trial was made from."""
WARM_START_ATTR = "warmStartFrom"


def pending_points(spec: ExperimentSpec, history: Sequence[Trial]) -> list[Suggestion]:
    """The enqueued points no trial of ``history`` was made from, in order."""
    points = spec.initial_points or []
    if not points:
        return []
    used = {t.attrs.get(ENQUEUED_ATTR) for t in history}
    space = spec.space
    return [
        Suggestion(space.convert(point), {ENQUEUED_ATTR: i})
        for i, point in enumerate(points)
        if i not in used
    ]


def suggest(
    suggester: Suggester, spec: ExperimentSpec, history: Sequence[Trial], count: int
) -> list[Suggestion]:
    """Up to ``count`` suggestions: the pending enqueued points first, then the algorithm's."""
    queued = pending_points(spec, history)[: max(count, 0)]
    rest = count - len(queued)
    return queued + (suggester.suggest(history, rest) if rest > 0 else [])


@dataclass(frozen=True)
class WarmSuggester:
    """A suggester that sees ``prior`` trials (of another experiment) before the history."""

    inner: Suggester
    prior: tuple[Trial, ...]

    def suggest(self, history: Sequence[Trial], count: int) -> list[Suggestion]:
        return self.inner.suggest([*self.prior, *history], count)


def prior_trials(repo: Repository, experiment: Experiment) -> tuple[Trial, ...]:
    """The completed trials of ``spec.warmStartFrom`` (none without it), checked compatible.

    Raises:
        SpecError: the experiment does not exist or its space is not compatible.
    """
    source_name = experiment.spec.warm_start_from
    if source_name is None:
        return ()
    try:
        source = repo.get_experiment(experiment.namespace, source_name)
    except NotFound as e:  # reported as a problem of the field
        raise SpecError([FieldError("spec.warmStartFrom", str(e))]) from e
    trials = [
        t
        for t in repo.history(source.id)
        if t.state.completed and t.objective is not None and math.isfinite(t.objective)
    ]
    problems = compatibility_errors(
        experiment.spec.space, source.experiment.spec.space, trials, source_name
    )
    ours, theirs = experiment.spec.objective, source.experiment.spec.objective
    if (ours.objective_metric_name, ours.type) != (theirs.objective_metric_name, theirs.type):
        problems.append(
            FieldError(
                "spec.warmStartFrom",
                f"experiment {source_name} has objective {theirs.type} "
                f"{theirs.objective_metric_name!r}, this one {ours.type} "
                f"{ours.objective_metric_name!r}: its values would mislead the algorithm",
            )
        )
    if problems:
        raise SpecError(problems)
    return tuple(trials)


def compatibility_errors(
    target: SearchSpace, source: SearchSpace, trials: Sequence[Trial], source_name: str
) -> list[FieldError]:
    """Why the trials of experiment ``source_name`` cannot feed an algorithm over ``target``.

    Compatible means: the same parameter names, each of the same type, and every value of the
    trials inside the target space. Each problem names the parameter. (The objective, the same
    metric and direction, is checked by :func:`prior_trials`.)
    """
    path = "spec.warmStartFrom"
    errors = []
    for name in source.names:
        if name not in target:
            errors.append(
                FieldError(path, f"parameter {name!r} of experiment {source_name} is not here")
            )
    for p in target:
        if p.name not in source:
            errors.append(
                FieldError(path, f"parameter {p.name!r} is not in experiment {source_name}")
            )
        elif source[p.name].kind is not p.kind:
            errors.append(
                FieldError(
                    path,
                    f"parameter {p.name!r} is {source[p.name].kind} in experiment "
                    f"{source_name} and {p.kind} here",
                )
            )
    if errors:
        return errors
    for p in target:
        for t in trials:
            value = t.parameters.get(p.name)
            if value is None or point_errors(SearchSpace((p,)), {p.name: value}, path):
                errors.append(
                    FieldError(
                        path,
                        f"parameter {p.name!r}: trial {t.name} of experiment {source_name} has "
                        f"{value!r}, which is not {describe(p)} (widen the space)",
                    )
                )
                break
    return errors


def check_warm_start(repo: Repository, experiment: Experiment) -> None:
    """Refuse (``SpecError``) a warm start from a missing or incompatible experiment."""
    prior_trials(repo, experiment)


def build_suggester(repo: Repository, experiment: Experiment) -> Suggester:
    """The experiment's suggester, fed the trials of ``spec.warmStartFrom`` when set."""
    inner = create_suggester(experiment.spec)
    prior = prior_trials(repo, experiment)
    return WarmSuggester(inner, prior) if prior else inner


async def open_suggester(db: AsyncRepository, experiment: Experiment) -> Suggester:
    """:func:`build_suggester` for async callers: the database read on the database thread,
    the (import-heavy) suggester built on a worker thread."""
    prior = await db.run(prior_trials, experiment) if experiment.spec.warm_start_from else ()
    inner = await asyncio.to_thread(create_suggester, experiment.spec)
    return WarmSuggester(inner, prior) if prior else inner


def enqueued(
    repo: Repository, record: ExperimentRecord, points: Sequence[Mapping[str, Any]]
) -> ExperimentRecord:
    """Append ``points`` to the stored ``spec.initialPoints``; returns the updated record.

    Raises:
        SpecError: a point is not in the space (paths ``points[i].<parameter>``).
        InvalidRequest: the experiment has ended, or its algorithm takes no enqueued points.
    """
    spec = record.experiment.spec
    algorithm = spec.algorithm.algorithm_name
    if algorithm in REFUSED_BY:
        raise InvalidRequest(f"{algorithm} does not take enqueued points: {REFUSED_BY[algorithm]}")
    if record.phase.finished:
        raise InvalidRequest(
            f"experiment {record.name} has ended ({record.phase}): raise its budget to resume it"
        )
    if not points:
        raise SpecError([FieldError("points", "must hold at least one point")])
    if len(spec.initial_points or []) + len(points) > MAX_POINTS:
        raise InvalidRequest(f"experiment {record.name} would hold more than {MAX_POINTS} points")
    errors = [e for i, p in enumerate(points) for e in point_errors(spec.space, p, f"points[{i}]")]
    if errors:
        raise SpecError(errors)
    data = record.experiment.dump()
    data["spec"]["initialPoints"] = [*(spec.initial_points or []), *(dict(p) for p in points)]
    repo.update_spec(record.id, Experiment.model_validate(data))
    return repo.experiment_by_id(record.id)
