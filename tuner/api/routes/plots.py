"""Aggregates for the dashboard: compact, downsampled JSON computed on the server.

The browser never receives every trial of a large experiment: each plot endpoint reads light
rows (:meth:`tuner.storage.Repository.trial_points`) in one query, computes what the plot shows
(best-so-far, importances) over all of them, and ships at most ``cap`` points.

Parameter importance is the mean decrease in impurity of a random forest fitted on the completed
trials (parameters -> objective), the model fANOVA also starts from, when scikit-learn is
installed; otherwise each parameter's share of the objective's variance explained by grouping
the trials on that parameter alone (correlation ratio, eta squared, on quantile bins).
Importances are cached per experiment until another trial completes.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from tuner.api.auth import APIAuth
from tuner.api.deps import ExperimentDep, RepoDep, ServiceDep, TrialName
from tuner.api.routes.common import AUTH_ERRORS, INVALID, NOT_FOUND
from tuner.errors import NotFound
from tuner.spec import ObjectiveType, ParameterType
from tuner.storage import ExperimentRecord
from tuner.storage.repository import TrialPoint
from tuner.trials import TrialState

COMPLETED = (TrialState.SUCCEEDED, TrialState.EARLY_STOPPED)

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


# -- helpers ----------------------------------------------------------------------------------


def _direction(record: ExperimentRecord) -> ObjectiveType:
    return record.spec.spec.objective.type


def _finite(points: list[TrialPoint]) -> list[TrialPoint]:
    return [p for p in points if p.objective is not None and math.isfinite(p.objective)]


def _spread(items: list[TrialPoint], count: int) -> list[TrialPoint]:
    """``count`` items evenly spread over ``items`` (all of them when there are fewer)."""
    if count <= 0:
        return []
    if len(items) <= count:
        return list(items)
    stride = len(items) / count
    return [items[int(i * stride)] for i in range(count)]


def _best_first(points: list[TrialPoint], direction: ObjectiveType) -> list[TrialPoint]:
    sign = -1.0 if direction is ObjectiveType.MAXIMIZE else 1.0
    return sorted(points, key=lambda p: (sign * (p.objective or 0.0), p.number))


# -- list page --------------------------------------------------------------------------------


@overview_router.get(
    "/overview",
    summary="Every experiment with its trial counts and best objective (the dashboard's list)",
)
def overview(
    repo: RepoDep,
    namespace: Annotated[
        str | None, Query(max_length=63, description="only this namespace (default: all)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[ExperimentOverviewRead]:
    records = repo.list_experiments(namespace=namespace, limit=limit)
    tallies = repo.experiment_tallies([r.id for r in records])
    rows = []
    finished = [s for s in TrialState if s.finished]
    for r in records:
        spec = r.spec.spec
        tally = tallies[r.id]
        maximize = spec.objective.type is ObjectiveType.MAXIMIZE
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
                trials=sum(tally.counts.values()),
                done=sum(tally.counts[s] for s in finished),
                running=tally.counts[TrialState.RUNNING] + tally.counts[TrialState.CREATED],
                failed=tally.counts[TrialState.FAILED],
                best=tally.high if maximize else tally.low,
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
    direction = _direction(record)
    points = _finite(repo.trial_points(record.id, COMPLETED, with_parameters=False))
    maximize = direction is ObjectiveType.MAXIMIZE
    best_number: list[int] = []
    best_value: list[float] = []
    improving: set[int] = set()
    best: float | None = None
    for p in points:
        assert p.objective is not None
        if best is None or (p.objective > best if maximize else p.objective < best):
            best = p.objective
            best_number.append(p.number)
            best_value.append(best)
            improving.add(p.number)
    if points and best is not None and best_number[-1] != points[-1].number:
        best_number.append(points[-1].number)  # carry the line to the last trial
        best_value.append(best)
    shown = points
    if len(points) > cap:
        rest = [p for p in points if p.number not in improving]
        keep = {p.number for p in _spread(rest, max(0, cap - len(improving)))} | improving
        shown = [p for p in points if p.number in keep]
    return HistoryRead(
        metric=record.spec.spec.objective.objective_metric_name,
        direction=direction.value,
        total=len(points),
        sampled=len(shown) < len(points),
        number=[p.number for p in shown],
        trial=[p.name for p in shown],
        value=[p.objective for p in shown if p.objective is not None],
        state=[p.state.value for p in shown],
        best_number=best_number,
        best_value=best_value,
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
    direction = _direction(record)
    points = _finite(repo.trial_points(record.id, COMPLETED))
    shown = points
    if len(points) > cap:
        ranked = _best_first(points, direction)
        top = cap // 5
        chosen = ranked[:top] + _spread(ranked[top:], cap - top)
        shown = sorted(chosen, key=lambda p: p.number)
    dimensions = []
    for param in record.spec.spec.parameters:
        raw = [p.parameters.get(param.name) for p in shown]
        if param.parameter_type is ParameterType.CATEGORICAL:
            categories = [str(c) for c in param.choices]
            index = {c: i for i, c in enumerate(categories)}
            values: list[float | None] = [
                float(index[str(v)]) if v is not None and str(v) in index else None for v in raw
            ]
            dimensions.append(
                DimensionRead(
                    name=param.name, type="categorical", values=values, categories=categories
                )
            )
        else:
            dimensions.append(
                DimensionRead(
                    name=param.name,
                    type=param.parameter_type.value,
                    values=[_as_float(v) for v in raw],
                )
            )
    return ParallelRead(
        metric=record.spec.spec.objective.objective_metric_name,
        direction=direction.value,
        total=len(points),
        sampled=len(shown) < len(points),
        trial=[p.name for p in shown],
        objective=[p.objective for p in shown if p.objective is not None],
        dimensions=dimensions,
    )


def _as_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


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
    direction = _direction(record)
    metric = record.spec.spec.objective.objective_metric_name
    all_points = repo.trial_points(record.id, with_parameters=False)
    finished = _finite([p for p in all_points if p.state is TrialState.SUCCEEDED])
    running = [p for p in all_points if p.state is TrialState.RUNNING]
    top = _best_first(finished, direction)[:limit]
    if len(top) < limit:  # early in an experiment: show what is running too
        top += running[-(limit - len(top)) :]
    early = [p for p in all_points if p.state is TrialState.EARLY_STOPPED][-stopped:]
    early = early if stopped else []
    chosen: list[tuple[TrialPoint, Literal["top", "stopped"]]] = [(p, "top") for p in top]
    chosen += [(p, "stopped") for p in early]
    data = repo.metric_curves(record.id, [p.name for p, _ in chosen], metric)
    result = []
    for p, group in chosen:
        curve = data.get(p.name, [])
        if len(curve) > points:
            stride = len(curve) / points
            curve = [curve[int(i * stride)] for i in range(points)] + [curve[-1]]
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

MIN_TRIALS_FOR_IMPORTANCE = 4
_IMPORTANCE_SAMPLE = 2000
_cache_lock = threading.Lock()
_importance_cache: OrderedDict[tuple[str, int, int, int], ImportanceRead] = OrderedDict()


@router.get(
    "/plots/importance",
    summary="How much each parameter explains the objective (computed from completed trials)",
)
def importance(record: ExperimentDep, repo: RepoDep) -> ImportanceRead:
    metric = record.spec.spec.objective.objective_metric_name
    points = _finite(repo.trial_points(record.id, COMPLETED))
    parameters = record.spec.spec.parameters
    if len(points) < MIN_TRIALS_FOR_IMPORTANCE:
        return ImportanceRead(
            metric=metric,
            method="none",
            trials=len(points),
            importances=[],
            message=(
                f"needs at least {MIN_TRIALS_FOR_IMPORTANCE} completed trials "
                f"({len(points)} so far)"
            ),
        )
    key = (str(repo.engine.url), record.id, len(points), points[-1].number)
    with _cache_lock:
        cached = _importance_cache.get(key)
    if cached is not None:
        return cached
    sample = _spread(points, _IMPORTANCE_SAMPLE)
    columns: list[list[float]] = []
    for param in parameters:
        raw = [p.parameters.get(param.name) for p in sample]
        if param.parameter_type is ParameterType.CATEGORICAL:
            index = {str(c): float(i) for i, c in enumerate(param.choices)}
            columns.append([index.get(str(v), -1.0) for v in raw])
        else:
            columns.append([_as_float(v) or 0.0 for v in raw])
    y = [p.objective or 0.0 for p in sample]
    method, scores = _forest_importance(columns, y)
    if scores is None:
        method, scores = "variance", [_eta_squared(c, y) for c in columns]
    total = sum(scores)
    normalized = [s / total if total > 0 else 0.0 for s in scores]
    result = ImportanceRead(
        metric=metric,
        method=method,
        trials=len(points),
        importances=sorted(
            (
                ImportanceItem(parameter=p.name, importance=v)
                for p, v in zip(parameters, normalized, strict=True)
            ),
            key=lambda item: -item.importance,
        ),
    )
    with _cache_lock:
        _importance_cache[key] = result
        while len(_importance_cache) > 64:
            _importance_cache.popitem(last=False)
    return result


def _forest_importance(
    columns: list[list[float]], y: list[float]
) -> tuple[str, list[float] | None]:
    """Mean decrease in impurity of a random forest, or None without scikit-learn."""
    try:
        from sklearn.ensemble import RandomForestRegressor
    except ImportError:
        return "variance", None
    if len(set(y)) < 2:
        return "random-forest", [0.0 for _ in columns]
    rows = [list(r) for r in zip(*columns, strict=True)]
    forest = RandomForestRegressor(
        n_estimators=64, min_samples_leaf=2, max_features=None, random_state=0, n_jobs=1
    )
    forest.fit(rows, y)
    return "random-forest", [float(v) for v in forest.feature_importances_]


def _eta_squared(column: list[float], y: list[float], bins: int = 10) -> float:
    """Share of the variance of ``y`` explained by grouping on ``column`` (quantile bins)."""
    n = len(y)
    mean = sum(y) / n
    total = sum((v - mean) ** 2 for v in y)
    if total <= 0:
        return 0.0
    distinct = sorted(set(column))
    if len(distinct) <= bins:
        edges = distinct
        group = {v: i for i, v in enumerate(distinct)}
        labels = [group[v] for v in column]
    else:
        ordered = sorted(column)
        edges = [ordered[(i * n) // bins] for i in range(1, bins)]
        labels = [sum(1 for e in edges if v >= e) for v in column]
    sums: dict[int, float] = {}
    counts: dict[int, int] = {}
    for label, v in zip(labels, y, strict=True):
        sums[label] = sums.get(label, 0.0) + v
        counts[label] = counts.get(label, 0) + 1
    between = sum(counts[g] * (sums[g] / counts[g] - mean) ** 2 for g in sums)
    return between / total


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
