"""The dashboard's aggregates: compact, downsampled JSON computed on the server.

Each plot endpoint reads light rows (:meth:`tuner.storage.Repository.trial_points`) in one
query and hands them to the pure functions of :mod:`tuner.plots`, which decide what the plot
shows; the routes only read and shape the JSON.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from tuner import plots
from tuner.api.auth import APIAuth
from tuner.api.deps import DNS_LABEL, ExperimentDep, RepoDep, ServiceDep, TrialName
from tuner.api.routes.common import AUTH_ERRORS, INVALID, NOT_FOUND
from tuner.errors import NotFound
from tuner.limits import MAX_NAME_LENGTH
from tuner.spec import ObjectiveType, ParameterType
from tuner.storage import ExperimentRecord

router = APIRouter(
    prefix="/experiments/{name}",
    tags=["dashboard"],
    dependencies=[APIAuth],
    responses={**AUTH_ERRORS, **NOT_FOUND, **INVALID},
)
overview_router = APIRouter(
    tags=["dashboard"], dependencies=[APIAuth], responses={**AUTH_ERRORS, **INVALID}
)


# -- models -----------------------------------------------------------------------------------


class _Read(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class ExperimentOverviewRead(_Read):
    namespace: str
    name: str
    phase: str
    reason: str | None
    message: str | None
    algorithm: str
    objective_metric: str
    objective_type: str
    max_trial_count: int | None
    trials: int
    done: int = Field(description="finished trials, in any final state")
    running: int
    failed: int
    best: float | None = Field(description="best objective of a completed trial")
    created_at: str


class HistoryRead(_Read):
    metric: str
    direction: str
    total: int = Field(description="completed trials with an objective value")
    sampled: bool = Field(description="points were thinned to the cap (every improvement kept)")
    number: list[int]
    trial: list[str]
    value: list[float]
    state: list[str]
    best_number: list[int] = Field(description="best-so-far as a step line: where it changes")
    best_value: list[float]


class DimensionRead(_Read):
    name: str
    type: str
    values: list[float | None]
    categories: list[str] | None = Field(
        default=None, description="for categorical parameters: values index into this list"
    )
    scale: Literal["linear", "log"] = Field(
        default="linear",
        description="log: a logUniform/logNormal parameter; values are base-10 logarithms",
    )
    range: list[float] | None = Field(default=None, description="log axis: log10 of the bounds")
    ticks: list[float] | None = Field(default=None, description="log axis: where ticks go")
    tick_text: list[str] | None = Field(default=None, description="log axis: tick labels")


class ParallelRead(_Read):
    metric: str
    direction: str
    total: int
    sampled: bool
    trial: list[str]
    objective: list[float]
    dimensions: list[DimensionRead]


class CurveRead(_Read):
    trial: str
    state: str
    reason: str | None
    objective: float | None
    group: Literal["top", "stopped"]
    step: list[int]
    value: list[float | None]


class CurvesRead(_Read):
    metric: str
    curves: list[CurveRead]


class ImportanceItem(_Read):
    parameter: str
    importance: float


class ImportanceRead(_Read):
    metric: str
    method: str = Field(description="random-forest (scikit-learn) or variance (eta squared)")
    trials: int = Field(description="completed trials the importances were computed from")
    importances: list[ImportanceItem]
    message: str | None = None


class TrialTailRead(_Read):
    trial: str
    runner_ref: str | None = Field(description="pid:N (local) or the Kubernetes Job name")
    lines: int
    log: str | None
    message: str | None = Field(default=None, description="why there is no log")


# -- inputs -----------------------------------------------------------------------------------


def _maximize(record: ExperimentRecord) -> bool:
    return record.experiment.spec.objective.type is ObjectiveType.MAXIMIZE


def _axes(record: ExperimentRecord) -> list[plots.Axis]:
    return [
        plots.Axis(
            p.name,
            p.parameter_type.value,
            tuple(str(c) for c in p.choices)
            if p.parameter_type is ParameterType.CATEGORICAL
            else None,
            log=p.log,
            low=p.low if p.log else None,
            high=p.high if p.log else None,
        )
        for p in record.experiment.spec.parameters
    ]


# -- list page --------------------------------------------------------------------------------


@overview_router.get(
    "/overview",
    summary="Every experiment with its trial counts and best objective (the dashboard's list)",
)
def overview(
    repo: RepoDep,
    namespace: Annotated[
        str | None,
        Query(
            max_length=MAX_NAME_LENGTH,
            pattern=DNS_LABEL,
            description="only this namespace (default: all)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[ExperimentOverviewRead]:
    records = repo.list_experiments(namespace=namespace, limit=limit)
    tallies = repo.experiment_tallies([r.id for r in records])
    rows = []
    for r in records:
        spec = r.experiment.spec
        found = tallies[r.id]
        counts = plots.tally(found.counts)
        rows.append(
            ExperimentOverviewRead(
                namespace=r.namespace,
                name=r.name,
                phase=r.phase.value,
                reason=r.reason,
                message=r.message,
                algorithm=spec.algorithm.algorithm_name,
                objective_metric=spec.objective.objective_metric_name,
                objective_type=spec.objective.type.value,
                max_trial_count=spec.max_trial_count,
                trials=counts.trials,
                done=counts.done,
                running=counts.running,
                failed=counts.failed,
                best=found.high if _maximize(r) else found.low,
                created_at=r.created_at.isoformat(),
            )
        )
    return rows


# -- experiment plots -------------------------------------------------------------------------


@router.get("/plots/history", summary="Each completed trial's objective and the best so far")
def history(
    record: ExperimentDep,
    repo: RepoDep,
    cap: Annotated[int, Query(ge=10, le=20000, description="at most this many points")] = 2000,
) -> HistoryRead:
    points = plots.finite(repo.trial_points(record.id, plots.COMPLETED, with_parameters=False))
    result = plots.history(points, maximize=_maximize(record), cap=cap)
    shown = result.shown
    return HistoryRead(
        metric=record.experiment.spec.objective.objective_metric_name,
        direction=record.experiment.spec.objective.type.value,
        total=result.total,
        sampled=len(shown) < result.total,
        number=[p.number for p in shown],
        trial=[p.name for p in shown],
        value=[p.objective for p in shown if p.objective is not None],
        state=[p.state.value for p in shown],
        best_number=list(result.best_number),
        best_value=list(result.best_value),
    )


@router.get(
    "/plots/parallel",
    summary="Parameters of completed trials with their objective (best ones always included)",
)
def parallel(
    record: ExperimentDep,
    repo: RepoDep,
    cap: Annotated[int, Query(ge=10, le=5000, description="at most this many trials")] = 1000,
) -> ParallelRead:
    points = plots.finite(repo.trial_points(record.id, plots.COMPLETED))
    result = plots.parallel(points, _axes(record), maximize=_maximize(record), cap=cap)
    shown = result.shown
    return ParallelRead(
        metric=record.experiment.spec.objective.objective_metric_name,
        direction=record.experiment.spec.objective.type.value,
        total=result.total,
        sampled=len(shown) < result.total,
        trial=[p.name for p in shown],
        objective=[p.objective for p in shown if p.objective is not None],
        dimensions=[
            DimensionRead(
                name=d.name,
                type=d.type,
                values=d.values,
                categories=d.categories,
                scale=d.scale,
                range=None if d.range is None else list(d.range),
                ticks=d.ticks,
                tick_text=d.tick_text,
            )
            for d in result.dimensions
        ],
    )


@router.get(
    "/plots/curves",
    summary="Intermediate values of the best trials and of a sample of early-stopped ones",
)
def curves(
    record: ExperimentDep,
    repo: RepoDep,
    limit: Annotated[int, Query(ge=1, le=200, description="best trials to include")] = 15,
    stopped: Annotated[
        int, Query(ge=0, le=200, description="early-stopped trials to include (the latest)")
    ] = 15,
    points: Annotated[int, Query(ge=10, le=5000, description="points per curve at most")] = 300,
) -> CurvesRead:
    metric = record.experiment.spec.objective.objective_metric_name
    every = repo.trial_points(record.id, with_parameters=False)
    chosen = plots.curve_trials(every, maximize=_maximize(record), limit=limit, stopped=stopped)
    data = repo.metric_curves(record.id, [p.name for p, _ in chosen], metric)
    result = []
    for p, group in chosen:
        curve = plots.thin_curve(data.get(p.name, []), points)
        result.append(
            CurveRead(
                trial=p.name,
                state=p.state.value,
                reason=p.message,
                objective=p.objective,
                group=group,
                step=[s for s, _ in curve],
                value=[v for _, v in curve],
            )
        )
    return CurvesRead(metric=metric, curves=result)


# -- importance -------------------------------------------------------------------------------

_cache_lock = threading.Lock()
_importance_cache: OrderedDict[tuple[str, int, int, int], ImportanceRead] = OrderedDict()


@router.get(
    "/plots/importance",
    summary="How much each parameter explains the objective (computed from completed trials)",
)
def importance(record: ExperimentDep, repo: RepoDep) -> ImportanceRead:
    # Cached per experiment until another trial completes (a forest over 2000 trials is slow).
    points = plots.finite(repo.trial_points(record.id, plots.COMPLETED))
    cacheable = len(points) >= plots.MIN_TRIALS_FOR_IMPORTANCE
    key = (str(repo.engine.url), record.id, len(points), points[-1].number if points else -1)
    if cacheable:
        with _cache_lock:
            cached = _importance_cache.get(key)
        if cached is not None:
            return cached
    found = plots.importance(points, _axes(record))
    result = ImportanceRead(
        metric=record.experiment.spec.objective.objective_metric_name,
        method=found.method,
        trials=found.trials,
        importances=[ImportanceItem(parameter=p, importance=v) for p, v in found.importances],
        message=found.message,
    )
    if cacheable:
        with _cache_lock:
            _importance_cache[key] = result
            while len(_importance_cache) > 64:
                _importance_cache.popitem(last=False)
    return result


# -- trial page -------------------------------------------------------------------------------


@router.get(
    "/trials/{trial}/tail",
    summary="The end of a trial's log and where it ran (runner reference)",
)
def trial_tail(
    record: ExperimentDep,
    trial: TrialName,
    repo: RepoDep,
    service: ServiceDep,
    lines: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> TrialTailRead:
    found = repo.get_trial(record.id, trial)
    try:
        path = service.log_path(record, found)
    except NotFound as e:  # no log is an answer here, not an error: the page says why
        return TrialTailRead(
            trial=trial, runner_ref=found.runner_ref, lines=0, log=None, message=e.message
        )
    text = _tail(path, lines)
    return TrialTailRead(
        trial=trial, runner_ref=found.runner_ref, lines=text.count("\n"), log=text, message=None
    )


def _tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a file, reading only its end."""
    chunk = max(4096, lines * 512)
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - chunk))
        data = f.read()
    text = data.decode(errors="replace")
    kept = text.splitlines(keepends=True)
    if size > chunk and kept:
        kept = kept[1:]  # the first line is probably cut
    return "".join(kept[-lines:])
