"""The Pareto front of a multi-objective experiment, and its hypervolume over time.

Pure functions of the stored trials. A trial takes part when it finished with its metrics
(Succeeded or EarlyStopped) and has a finite value for every objective. With constraints, only
feasible trials form the front (infeasible ones rank after every feasible one, so none of them
is optimal while a feasible trial exists); when no trial is feasible the front is empty.

Trial ``a`` dominates ``b`` when ``a`` is at least as good on every objective and strictly
better on one, each objective in its own direction. The front is every trial no other trial
dominates: trials with equal objective values dominate neither one another, so duplicates are all
on the front. Rows keep the order they were given in (creation order from the repository).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from optuna._hypervolume import compute_hypervolume

from tuner.constraints import Constraint, feasible
from tuner.space import Objective
from tuner.trials import RANKED_STATES, Trial

__all__ = ["candidates", "dominates", "hypervolume_history", "losses", "pareto_front"]


def losses(trial: Trial, objectives: Sequence[Objective]) -> tuple[float, ...] | None:
    """The trial's objective values as losses (maximized ones negated), or ``None`` when one is
    missing or not finite."""
    out = []
    for o in objectives:
        value = trial.metrics.get(o.metric)
        if value is None or not math.isfinite(value):
            return None
        out.append(value if o.minimize else -value)
    return tuple(out)


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether loss vector ``a`` dominates ``b``: no worse anywhere, strictly better somewhere."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


def candidates(
    trials: Iterable[Trial], objectives: Sequence[Objective], constraints: Sequence[Constraint]
) -> list[tuple[Trial, tuple[float, ...]]]:
    """The trials that can be on the front, with their loss vectors."""
    out = []
    for t in trials:
        if t.state not in RANKED_STATES or not feasible(t, constraints):
            continue
        loss = losses(t, objectives)
        if loss is not None:
            out.append((t, loss))
    return out


def _front(points: Sequence[tuple[Trial, tuple[float, ...]]]) -> list[Trial]:
    """The non-dominated points, in the given order: O(n log n + n * front size).

    Taken in lexicographic order of their losses, a point can only be dominated by one before
    it, and if by any, then by one already on the front (dominance is transitive); so each point
    is compared with the front found so far, which never loses a member. The comparisons run in
    plain Python while the front is small, then on a numpy array.
    """
    if not points:
        return []
    order = sorted(range(len(points)), key=lambda i: points[i][1])
    front: list[tuple[float, ...]] = []
    array = np.empty((len(points), len(points[0][1])))
    keep = [False] * len(points)
    for i in order:
        point = points[i][1]
        if len(front) < _SMALL_FRONT:
            beaten = any(f != point and all(a <= b for a, b in zip(f, point, strict=True))
                         for f in front)  # fmt: skip
        else:
            known = array[: len(front)]
            beaten = bool(np.any(np.all(known <= point, axis=1) & np.any(known < point, axis=1)))
        if not beaten:
            array[len(front)] = point
            front.append(point)
            keep[i] = True
    return [trial for (trial, _), kept in zip(points, keep, strict=True) if kept]


_SMALL_FRONT = 32


def pareto_front(
    trials: Iterable[Trial],
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint] = (),
) -> list[Trial]:
    """The non-dominated trials among ``trials`` (see the module's rules), in their order."""
    return _front(candidates(trials, objectives, constraints))


def hypervolume_history(
    trials: Sequence[Trial],
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint] = (),
) -> tuple[list[tuple[int, float]], list[float] | None]:
    """The hypervolume of the front after each trial (by trial number), and the reference point.

    The reference point (in losses) is the worst value of each objective among the candidates,
    plus a tenth of its range (or 1 when all values are equal), so every candidate counts.
    Returns ``([], None)`` without candidates.
    """
    points = candidates(sorted(trials, key=lambda t: t.number), objectives, constraints)
    if not points:
        return [], None
    values = np.array([p for _, p in points])
    worst, best = values.max(axis=0), values.min(axis=0)
    span = worst - best
    reference = worst + np.where(span > 0, span / 10, 1.0)
    # The hypervolume changes only when a trial joins the front: one computation per such
    # trial, over the front alone.
    history: list[tuple[int, float]] = []
    front = np.empty((0, values.shape[1]))
    volume = 0.0
    for (trial, _), point in zip(points, values, strict=True):
        if not np.any(np.all(front <= point, axis=1)):  # neither dominated nor a duplicate
            beaten = np.all(point <= front, axis=1)
            front = np.vstack([front[~beaten], point])
            volume = float(compute_hypervolume(front, reference, assume_pareto=True))
        history.append((trial.number, volume))
    return history, [float(r) for r in reference]
