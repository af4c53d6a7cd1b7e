"""What the dashboard's plots show, computed from light trial rows: pure functions, no I/O.

The browser never receives every trial of a large experiment: each function takes all the
completed trials, computes what its plot shows over all of them (best-so-far, importances), and
keeps at most ``cap`` points, always keeping the ones that matter (improvements, the best trials).
:mod:`tuner.api.routes.plots` reads the rows, calls these and ships the results as JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from tuner.trials import TrialState

COMPLETED = (TrialState.SUCCEEDED, TrialState.EARLY_STOPPED)
"""States whose trials count in the plots of objectives."""
MIN_TRIALS_FOR_IMPORTANCE = 4
IMPORTANCE_SAMPLE = 2000
"""Importances are fitted on at most this many completed trials, evenly spread."""


class PlotPoint(Protocol):
    """A trial without its metrics (:class:`tuner.storage.repository.TrialPoint` is one)."""

    @property
    def number(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def state(self) -> TrialState: ...
    @property
    def objective(self) -> float | None: ...
    @property
    def message(self) -> str | None: ...
    @property
    def parameters(self) -> Mapping[str, Any]: ...


P = TypeVar("P", bound=PlotPoint)


@dataclass(frozen=True)
class Axis:
    """A parameter as the plots see it.

    Attributes:
        name: the parameter's name.
        type: its ``parameterType`` (``double``, ``int``, ``discrete``, ``categorical``).
        categories: for a categorical parameter, its choices as text, in spec order.
        log: a range sampled on a log scale (Katib ``logUniform``/``logNormal``): plotted on a
            log axis.
        low: the range's lower bound (the axis starts there), None for lists.
        high: the range's upper bound, None for lists.
    """

    name: str
    type: str
    categories: tuple[str, ...] | None = None
    log: bool = False
    low: float | None = None
    high: float | None = None


# -- selections -------------------------------------------------------------------------------


def finite(points: Sequence[P]) -> list[P]:
    """The points with a finite objective."""
    return [p for p in points if p.objective is not None and math.isfinite(p.objective)]


def spread(items: Sequence[P], count: int) -> list[P]:
    """``count`` items evenly spread over ``items`` (all of them when there are fewer)."""
    if count <= 0:
        return []
    if len(items) <= count:
        return list(items)
    stride = len(items) / count
    return [items[int(i * stride)] for i in range(count)]


def best_first(points: Sequence[P], *, maximize: bool) -> list[P]:
    """The points by objective, best first; ties in creation order."""
    sign = -1.0 if maximize else 1.0
    return sorted(points, key=lambda p: (sign * (p.objective or 0.0), p.number))


def _value(value: Any) -> float | None:
    """A parameter value as a finite number, or None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# -- history ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """Each completed trial's objective (thinned to the cap) and the best-so-far step line.

    Attributes:
        total: the points given.
        shown: the points kept, in creation order: every improvement, the rest evenly spread.
        best_number: trial numbers where the best so far changes, then the last trial's.
        best_value: the best so far at each of ``best_number``.
    """

    total: int
    shown: tuple[PlotPoint, ...]
    best_number: tuple[int, ...]
    best_value: tuple[float, ...]


def history(points: Sequence[PlotPoint], *, maximize: bool, cap: int) -> History:
    """The objective history of ``points`` (finite objectives, in creation order)."""
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
    shown = list(points)
    if len(points) > cap:
        rest = [p for p in points if p.number not in improving]
        keep = {p.number for p in spread(rest, max(0, cap - len(improving)))} | improving
        shown = [p for p in points if p.number in keep]
    return History(len(points), tuple(shown), tuple(best_number), tuple(best_value))


# -- parallel coordinates ---------------------------------------------------------------------


@dataclass(frozen=True)
class Dimension:
    """One axis of the parallel-coordinates plot: a value per shown trial.

    Categorical values are indexes into ``categories``; a value that is missing, not a number
    or not one of the categories is None. On a log axis (``scale == "log"``) the values are
    base-10 logarithms (a value that is not positive is None), ``range`` spans the logarithms of
    the bounds and ``ticks`` are placed at round numbers, labelled by ``tick_text`` in the
    parameter's own units.
    """

    name: str
    type: str
    values: list[float | None]
    categories: list[str] | None = None
    scale: Literal["linear", "log"] = "linear"
    range: tuple[float, float] | None = None
    ticks: list[float] | None = None
    tick_text: list[str] | None = None


@dataclass(frozen=True)
class Parallel:
    """The trials of the parallel-coordinates plot, in creation order, with their axes."""

    total: int
    shown: tuple[PlotPoint, ...]
    dimensions: tuple[Dimension, ...]


def parallel(
    points: Sequence[PlotPoint], axes: Sequence[Axis], *, maximize: bool, cap: int
) -> Parallel:
    """At most ``cap`` of ``points``: the best fifth of the cap, the rest evenly spread."""
    shown = list(points)
    if len(points) > cap:
        ranked = best_first(points, maximize=maximize)
        top = cap // 5
        chosen = ranked[:top] + spread(ranked[top:], cap - top)
        shown = sorted(chosen, key=lambda p: p.number)
    dimensions = tuple(
        _dimension(axis, [p.parameters.get(axis.name) for p in shown]) for axis in axes
    )
    return Parallel(len(points), tuple(shown), dimensions)


def _dimension(axis: Axis, raw: list[Any]) -> Dimension:
    if axis.categories is None and axis.log:
        return _log_dimension(axis, [_value(v) for v in raw])
    if axis.categories is None:
        return Dimension(axis.name, axis.type, [_value(v) for v in raw])
    index = {c: i for i, c in enumerate(axis.categories)}
    values: list[float | None] = [
        float(index[str(v)]) if v is not None and str(v) in index else None for v in raw
    ]
    return Dimension(axis.name, "categorical", values, list(axis.categories))


def _log_dimension(axis: Axis, numbers: list[float | None]) -> Dimension:
    values = [math.log10(v) if v is not None and v > 0 else None for v in numbers]
    positive = [v for v in numbers if v is not None and v > 0]
    low = axis.low if axis.low is not None and axis.low > 0 else min(positive, default=1.0)
    high = axis.high if axis.high is not None and axis.high > low else max(positive, default=low)
    if high <= low:
        high = low * 10
    ticks = log_ticks(low, high)
    return Dimension(
        axis.name,
        axis.type,
        values,
        scale="log",
        range=(math.log10(low), math.log10(high)),
        ticks=[math.log10(t) for t in ticks],
        tick_text=[f"{t:g}" for t in ticks],
    )


def log_ticks(low: float, high: float) -> list[float]:
    """Round numbers in ``[low, high]`` (0 < low < high) for a log axis: the powers of ten,
    with 2 and 5 times them when fewer than three powers fit, and the bounds when still fewer.

    >>> log_ticks(1e-4, 1e-1)
    [0.0001, 0.001, 0.01, 0.1]
    >>> log_ticks(0.03, 0.3)
    [0.05, 0.1, 0.2]
    """
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))

    def within(multiples: tuple[int, ...]) -> list[float]:
        found = []
        for exponent in range(first, last + 1):
            for m in multiples:
                tick = float(f"{m}e{exponent}")  # exact decimal, not m * 10.0**exponent
                if low * (1 - 1e-9) <= tick <= high * (1 + 1e-9):
                    found.append(tick)
        return found

    ticks = within((1,))
    if len(ticks) < 3:
        ticks = within((1, 2, 5))
    if len(ticks) < 2:
        ticks = sorted({low, *ticks, high})
    return ticks


# -- intermediate values ----------------------------------------------------------------------

Group = Literal["top", "stopped"]


def curve_trials(
    points: Sequence[P], *, maximize: bool, limit: int, stopped: int
) -> list[tuple[P, Group]]:
    """Whose intermediate values to plot: the ``limit`` best succeeded trials (topped up with
    the latest running ones early in an experiment), then the latest ``stopped`` early-stopped.

    Args:
        points: every trial, in creation order.
    """
    succeeded = finite([p for p in points if p.state is TrialState.SUCCEEDED])
    running = [p for p in points if p.state is TrialState.RUNNING]
    top = best_first(succeeded, maximize=maximize)[:limit]
    if len(top) < limit:
        top += running[-(limit - len(top)) :]
    early = [p for p in points if p.state is TrialState.EARLY_STOPPED][-stopped:]
    early = early if stopped else []
    chosen: list[tuple[P, Group]] = [(p, "top") for p in top]
    return chosen + [(p, "stopped") for p in early]


def thin_curve(
    curve: Sequence[tuple[int, float | None]], count: int
) -> list[tuple[int, float | None]]:
    """At most ``count`` evenly spread (step, value) pairs of ``curve``, plus its last one."""
    if len(curve) <= count:
        return list(curve)
    stride = len(curve) / count
    return [curve[int(i * stride)] for i in range(count)] + [curve[-1]]


# -- importance -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Importance:
    """How much each parameter explains the objective.

    Attributes:
        method: ``random-forest`` (scikit-learn), ``variance`` (eta squared), or ``none``.
        trials: the completed trials the importances were computed from.
        importances: (parameter, share) pairs, largest first; the shares add up to 1 (or are
            all 0 when the objective does not vary).
        message: why there are no importances.
    """

    method: str
    trials: int
    importances: tuple[tuple[str, float], ...]
    message: str | None = None


def importance(points: Sequence[PlotPoint], axes: Sequence[Axis]) -> Importance:
    """Parameter importances over ``points`` (finite objectives).

    The mean decrease in impurity of a random forest fitted on the trials (parameters ->
    objective), the model fANOVA also starts from, when scikit-learn is installed; otherwise
    each parameter's share of the objective's variance explained by grouping the trials on that
    parameter alone (:func:`eta_squared`). Fitted on at most :data:`IMPORTANCE_SAMPLE` trials.
    """
    if len(points) < MIN_TRIALS_FOR_IMPORTANCE:
        return Importance(
            method="none",
            trials=len(points),
            importances=(),
            message=(
                f"needs at least {MIN_TRIALS_FOR_IMPORTANCE} completed trials "
                f"({len(points)} so far)"
            ),
        )
    sample = spread(points, IMPORTANCE_SAMPLE)
    columns = [_column(axis, [p.parameters.get(axis.name) for p in sample]) for axis in axes]
    y = [p.objective or 0.0 for p in sample]
    method, scores = forest_importance(columns, y)
    if scores is None:
        method, scores = "variance", [eta_squared(c, y) for c in columns]
    total = sum(scores)
    normalized = [s / total if total > 0 else 0.0 for s in scores]
    ranked = sorted(
        ((axis.name, v) for axis, v in zip(axes, normalized, strict=True)), key=lambda i: -i[1]
    )
    return Importance(method=method, trials=len(points), importances=tuple(ranked))


def _column(axis: Axis, raw: list[Any]) -> list[float]:
    """A parameter as a numeric feature: a categorical one by its choice's index (-1: none)."""
    if axis.categories is None:
        return [_value(v) or 0.0 for v in raw]
    index = {c: float(i) for i, c in enumerate(axis.categories)}
    return [index.get(str(v), -1.0) for v in raw]


def forest_importance(columns: list[list[float]], y: list[float]) -> tuple[str, list[float] | None]:
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


def eta_squared(column: list[float], y: list[float], bins: int = 10) -> float:
    """Share of the variance of ``y`` explained by grouping on ``column`` (correlation ratio).

    Up to ``bins`` distinct values group by value; more are cut into ``bins`` quantile bins.
    """
    n = len(y)
    mean = sum(y) / n
    total = sum((v - mean) ** 2 for v in y)
    if total <= 0:
        return 0.0
    distinct = sorted(set(column))
    if len(distinct) <= bins:
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


# -- list page --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """An experiment's trial counts as the list page shows them."""

    trials: int
    done: int
    running: int
    failed: int


def tally(counts: Mapping[TrialState, int]) -> Tally:
    """Trials in all, finished (any final state), running (or created) and failed."""
    return Tally(
        trials=sum(counts.values()),
        done=sum(n for state, n in counts.items() if state.finished),
        running=counts.get(TrialState.RUNNING, 0) + counts.get(TrialState.CREATED, 0),
        failed=counts.get(TrialState.FAILED, 0),
    )
