"""The Pareto front and the hypervolume, on hand-made trials (tuner.pareto)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from optuna._hypervolume import compute_hypervolume

from tuner.constraints import Constraint, feasible, feasible_first, violations
from tuner.pareto import dominates, hypervolume_history, pareto_front
from tuner.space import Direction, Objective
from tuner.trials import Trial, TrialState

MIN_MIN = (Objective("a"), Objective("b"))
MIN_MAX = (Objective("a"), Objective("b", Direction.MAXIMIZE))


def trial(
    number: int,
    a: float | None,
    b: float | None,
    state: TrialState = TrialState.SUCCEEDED,
    **more: float,
) -> Trial:
    metrics = {k: v for k, v in (("a", a), ("b", b)) if v is not None}
    return Trial(f"t{number}", number, {}, state=state, metrics={**metrics, **more})


def names(trials: list[Trial]) -> list[str]:
    return [t.name for t in trials]


def test_dominates_needs_no_worse_everywhere_and_better_somewhere() -> None:
    assert dominates((1, 1), (2, 1))
    assert not dominates((1, 1), (1, 1))
    assert not dominates((1, 3), (2, 1))


def test_front_is_the_non_dominated_set_with_ties_kept_in_order() -> None:
    trials = [
        trial(0, 1, 5),
        trial(1, 2, 2),
        trial(2, 3, 3),  # dominated by t1
        trial(3, 2, 2),  # a duplicate of t1: neither dominates the other
        trial(4, 5, 1),
        trial(5, 1, 6),  # dominated by t0 (equal a, worse b)
    ]
    assert names(pareto_front(trials, MIN_MIN)) == ["t0", "t1", "t3", "t4"]


def test_each_objective_counts_in_its_own_direction() -> None:
    trials = [trial(0, 1, 5), trial(1, 2, 6), trial(2, 3, 1)]
    assert names(pareto_front(trials, MIN_MIN)) == ["t0", "t2"]
    # b maximized: t1 (b=6) is now optimal, t2 (b=1, a=3) is beaten by t0.
    assert names(pareto_front(trials, MIN_MAX)) == ["t0", "t1"]


def test_unfinished_failed_and_non_finite_trials_are_left_out() -> None:
    trials = [
        trial(0, 0, 0, TrialState.RUNNING),
        trial(1, 0, 0, TrialState.FAILED),
        trial(2, math.nan, 0),
        trial(3, None, 0),
        trial(4, 0, math.inf),
        trial(5, 3, 3, TrialState.EARLY_STOPPED),
    ]
    assert names(pareto_front(trials, MIN_MIN)) == ["t5"]


def test_constraints_keep_only_feasible_trials_on_the_front() -> None:
    size = [Constraint("size", max=1.0)]
    trials = [trial(0, 0, 0, size=2.0), trial(1, 1, 1, size=1.0), trial(2, 2, 0.5, size=0.5)]
    assert names(pareto_front(trials, MIN_MIN, size)) == ["t1", "t2"]
    assert names(pareto_front(trials[:1], MIN_MIN, size)) == []  # none feasible: no front


def test_constraint_violations_follow_optunas_sign() -> None:
    t = trial(0, 0, 0, size=2.0, acc=0.5)
    at_most, at_least = Constraint("size", max=1.0), Constraint("acc", min=0.8)
    assert violations(t, [at_most, at_least]) == pytest.approx((1.0, 0.3))
    assert not feasible(t, [at_most]) and feasible(t, [Constraint("size", max=2.0)])
    assert violations(t, [Constraint("missing", max=1)]) == (math.inf,)
    trials = [trial(0, 0, 0, size=3.0), trial(1, 0, 0, size=0.5), trial(2, 0, 0)]
    assert names(feasible_first(trials, [at_most])) == ["t1", "t0", "t2"]


def test_hypervolume_history_grows_and_matches_optuna_on_the_final_front() -> None:
    trials = [trial(0, 4, 4), trial(1, 1, 3), trial(2, 3, 1), trial(3, 2, 2), trial(4, 5, 5)]
    history, reference = hypervolume_history(trials, MIN_MIN)
    assert reference == pytest.approx([5.4, 5.4])  # worst + a tenth of the range
    assert [n for n, _ in history] == [0, 1, 2, 3, 4]
    values = [v for _, v in history]
    assert values == sorted(values) and values[-1] == values[-2]  # t4 adds nothing
    assert values[0] == pytest.approx(1.4 * 1.4)
    points = np.array([[4, 4], [1, 3], [3, 1], [2, 2], [5, 5]], dtype=float)
    assert values[-1] == pytest.approx(compute_hypervolume(points, np.array(reference)))
    # by hand: the staircase 1,3 / 2,2 / 3,1 under (5.4, 5.4)
    assert values[-1] == pytest.approx(4.4 * 2.4 + 3.4 * 1.0 + 2.4 * 1.0)
    assert hypervolume_history([], MIN_MIN) == ([], None)


@pytest.mark.parametrize("objectives", [2, 3])
def test_hypervolume_history_equals_the_hypervolume_of_every_prefix(objectives: int) -> None:
    rng = np.random.default_rng(4)
    values = rng.integers(0, 6, size=(60, objectives)).astype(float)  # ties and duplicates
    goals_names = [f"m{i}" for i in range(objectives)]
    goals = tuple(Objective(name) for name in goals_names)
    trials = [
        Trial(
            f"t{n}", n, {}, TrialState.SUCCEEDED, metrics=dict(zip(goals_names, row, strict=True))
        )
        for n, row in enumerate(values)
    ]
    history, reference = hypervolume_history(trials, goals)
    assert reference is not None
    for n, volume in history:
        expected = compute_hypervolume(values[: n + 1], np.array(reference))
        assert volume == pytest.approx(expected)


@pytest.mark.parametrize(("objectives", "seed"), [(2, 0), (3, 1), (4, 2)])
def test_front_matches_the_definition_on_random_ties(objectives: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 5, size=(200, objectives)).astype(float)
    names = [f"m{i}" for i in range(objectives)]
    goals = tuple(Objective(n, Direction.MAXIMIZE if i % 2 else Direction.MINIMIZE)
                  for i, n in enumerate(names))  # fmt: skip
    trials = [
        Trial(f"t{n}", n, {}, TrialState.SUCCEEDED, metrics=dict(zip(names, row, strict=True)))
        for n, row in enumerate(values)
    ]
    signs = np.array([-1.0 if g.direction is Direction.MAXIMIZE else 1.0 for g in goals])
    losses = values * signs
    expected = [
        f"t{i}"
        for i, a in enumerate(losses)
        if not any(np.all(b <= a) and np.any(b < a) for b in losses)
    ]
    assert names_of(pareto_front(trials, goals)) == expected


def names_of(trials: list[Trial]) -> list[str]:
    return [t.name for t in trials]
