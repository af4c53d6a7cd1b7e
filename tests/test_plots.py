"""tuner.plots: what each dashboard plot shows, for small known inputs, asserted exactly."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest

from tuner import plots
from tuner.plots import Axis, Dimension
from tuner.trials import TrialState

S, E, R, F = (
    TrialState.SUCCEEDED,
    TrialState.EARLY_STOPPED,
    TrialState.RUNNING,
    TrialState.FAILED,
)


@dataclass(frozen=True)
class Point:
    number: int
    objective: float | None
    state: TrialState = S
    parameters: dict[str, Any] = field(default_factory=dict)
    message: str | None = None

    @property
    def name(self) -> str:
        return f"t{self.number}"


def points(*objectives: float | None) -> list[Point]:
    return [Point(i, v) for i, v in enumerate(objectives)]


def numbers(items: Any) -> list[int]:
    return [p.number for p in items]


# -- selections -------------------------------------------------------------------------------


def test_finite_drops_missing_nan_and_infinite_objectives() -> None:
    given = points(1.0, None, float("nan"), float("inf"), -2.0)
    assert numbers(plots.finite(given)) == [0, 4]


def test_spread_picks_evenly_and_keeps_short_lists() -> None:
    given = points(*range(10))
    assert numbers(plots.spread(given, 4)) == [0, 2, 5, 7]
    assert numbers(plots.spread(given, 3)) == [0, 3, 6]
    assert numbers(plots.spread(given, 10)) == list(range(10))
    assert numbers(plots.spread(given, 20)) == list(range(10))
    assert plots.spread(given, 0) == []


def test_best_first_follows_the_direction_and_breaks_ties_by_number() -> None:
    given = points(3.0, 1.0, 2.0, 1.0)
    assert numbers(plots.best_first(given, maximize=False)) == [1, 3, 2, 0]
    assert numbers(plots.best_first(given, maximize=True)) == [0, 2, 1, 3]


# -- history ----------------------------------------------------------------------------------


def test_history_best_so_far_is_a_step_line_to_the_last_trial() -> None:
    result = plots.history(points(5.0, 3.0, 4.0, 1.0, 2.0), maximize=False, cap=100)
    assert result.total == 5
    assert numbers(result.shown) == [0, 1, 2, 3, 4]
    assert result.best_number == (0, 1, 3, 4)
    assert result.best_value == (5.0, 3.0, 1.0, 1.0)


def test_history_maximizing_ends_on_an_improvement_without_a_carried_point() -> None:
    result = plots.history(points(1.0, 0.5, 2.0), maximize=True, cap=100)
    assert result.best_number == (0, 2)
    assert result.best_value == (1.0, 2.0)


def test_history_over_the_cap_keeps_every_improvement_and_spreads_the_rest() -> None:
    # Improvements at 0, 5 and 10; the other 8 trials (1-4, 6-9) share 7 - 3 = 4 places: every
    # second one.
    objectives = [10.0, 11, 12, 13, 14, 9.0, 15, 16, 17, 18, 8.0]
    result = plots.history(points(*objectives), maximize=False, cap=7)
    assert result.total == 11
    assert numbers(result.shown) == [0, 1, 3, 5, 6, 8, 10]
    assert result.best_number == (0, 5, 10)
    assert result.best_value == (10.0, 9.0, 8.0)


def test_history_of_nothing() -> None:
    result = plots.history([], maximize=False, cap=10)
    assert (result.total, result.shown, result.best_number, result.best_value) == (0, (), (), ())


# -- parallel coordinates ---------------------------------------------------------------------

AXES = [Axis("lr", "double"), Axis("opt", "categorical", ("sgd", "adam")), Axis("n", "int")]


def test_parallel_maps_categories_to_indexes_and_odd_values_to_none() -> None:
    given = [
        Point(0, 1.0, parameters={"lr": 0.1, "opt": "adam", "n": 3}),
        Point(1, 2.0, parameters={"lr": "oops", "opt": "rmsprop", "n": 2}),
        Point(2, 3.0, parameters={"lr": float("inf"), "n": "4"}),
    ]
    result = plots.parallel(given, AXES, maximize=False, cap=10)
    assert result.total == 3 and numbers(result.shown) == [0, 1, 2]
    assert result.dimensions == (
        Dimension("lr", "double", [0.1, None, None]),
        Dimension("opt", "categorical", [1.0, None, None], ["sgd", "adam"]),
        Dimension("n", "int", [3.0, 2.0, 4.0]),
    )


def test_parallel_over_the_cap_keeps_the_best_fifth_then_spreads() -> None:
    # cap 10: the 2 best (numbers 19 and 18), then 8 spread over the other 18 in rank order
    # (17 down to 0, stride 18 / 8 = 2.25: ranks 0, 2, 4, 6, 9, 11, 13, 15).
    given = [Point(i, float(20 - i), parameters={"lr": i}) for i in range(20)]
    result = plots.parallel(given, AXES[:1], maximize=False, cap=10)
    assert result.total == 20
    assert numbers(result.shown) == [2, 4, 6, 8, 11, 13, 15, 17, 18, 19]
    assert result.dimensions[0].values == [2.0, 4.0, 6.0, 8.0, 11.0, 13.0, 15.0, 17.0, 18.0, 19.0]


def test_parallel_puts_a_log_scaled_parameter_on_a_log_axis() -> None:
    # lr is logUniform in [1e-4, 1e-1]: its axis holds log10 values between the logs of the
    # bounds, with ticks at the powers of ten labelled in lr's own units.
    axes = [Axis("lr", "double", log=True, low=1e-4, high=1e-1), Axis("n", "int")]
    given = [
        Point(0, 1.0, parameters={"lr": 0.001, "n": 3}),
        Point(1, 2.0, parameters={"lr": 0.05, "n": 2}),
        Point(2, 3.0, parameters={"lr": 0.0, "n": 4}),  # not positive: no place on a log axis
    ]
    lr, n = plots.parallel(given, axes, maximize=False, cap=10).dimensions
    assert lr.scale == "log" and n.scale == "linear"
    assert lr.values[0] == pytest.approx(-3.0)
    assert lr.values[1] == pytest.approx(math.log10(0.05))
    assert lr.values[2] is None
    assert lr.range == pytest.approx((-4.0, -1.0))
    assert lr.ticks == pytest.approx([-4.0, -3.0, -2.0, -1.0])
    assert lr.tick_text == ["0.0001", "0.001", "0.01", "0.1"]
    assert n.values == [3.0, 2.0, 4.0] and n.ticks is None and n.range is None


def test_log_ticks_use_two_and_five_in_a_narrow_range_and_the_bounds_in_a_tiny_one() -> None:
    assert plots.log_ticks(1e-6, 1.0) == [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0]
    assert plots.log_ticks(0.03, 0.3) == [0.05, 0.1, 0.2]
    assert plots.log_ticks(0.5, 0.9) == [0.5, 0.9]


# -- intermediate values ----------------------------------------------------------------------


def test_curve_trials_best_succeeded_then_latest_stopped() -> None:
    given = [
        Point(0, 3.0),
        Point(1, 1.0),
        Point(2, 0.5, E),
        Point(3, 2.0),
        Point(4, None, R),
        Point(5, 0.1, F),
        Point(6, 0.7, E),
        Point(7, float("nan")),
    ]
    chosen = plots.curve_trials(given, maximize=False, limit=2, stopped=1)
    assert [(p.number, g) for p, g in chosen] == [(1, "top"), (3, "top"), (6, "stopped")]


def test_curve_trials_tops_up_with_running_trials_and_can_skip_stopped() -> None:
    given = [Point(0, 1.0), Point(1, None, R), Point(2, None, R), Point(3, None, R), Point(4, 1, E)]
    chosen = plots.curve_trials(given, maximize=True, limit=3, stopped=0)
    assert [(p.number, g) for p, g in chosen] == [(0, "top"), (2, "top"), (3, "top")]


def test_thin_curve_keeps_the_last_point() -> None:
    curve = [(s, float(s)) for s in range(10)]
    assert plots.thin_curve(curve, 4) == [(0, 0.0), (2, 2.0), (5, 5.0), (7, 7.0), (9, 9.0)]
    assert plots.thin_curve(curve, 10) == curve
    assert plots.thin_curve([(0, None)], 10) == [(0, None)]


# -- importance -------------------------------------------------------------------------------


def test_importance_needs_a_few_trials() -> None:
    result = plots.importance(points(1.0, 2.0, 3.0), AXES)
    assert result == plots.Importance(
        method="none",
        trials=3,
        importances=(),
        message="needs at least 4 completed trials (3 so far)",
    )


def test_importance_without_scikit_learn_is_the_variance_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(plots, "forest_importance", lambda columns, y: ("variance", None))
    # The objective is 10 * opt's index; lr is noise uncorrelated with it.
    given = [
        Point(0, 0.0, parameters={"lr": 1.0, "opt": "sgd"}),
        Point(1, 10.0, parameters={"lr": 1.0, "opt": "adam"}),
        Point(2, 0.0, parameters={"lr": 2.0, "opt": "sgd"}),
        Point(3, 10.0, parameters={"lr": 2.0, "opt": "adam"}),
    ]
    result = plots.importance(given, AXES[:2])
    assert result == plots.Importance(
        method="variance", trials=4, importances=(("opt", 1.0), ("lr", 0.0))
    )


def test_importance_with_scikit_learn_ranks_the_parameter_that_matters() -> None:
    pytest.importorskip("sklearn")
    given = [
        Point(i, float(i % 4) * 10.0, parameters={"lr": float(i % 4), "opt": "sgd"})
        for i in range(12)
    ]
    result = plots.importance(given, AXES[:2])
    assert (result.method, result.trials) == ("random-forest", 12)
    assert result.importances == (("lr", 1.0), ("opt", 0.0))


def test_importance_of_a_constant_objective_is_all_zero() -> None:
    pytest.importorskip("sklearn")
    given = [Point(i, 1.0, parameters={"lr": float(i)}) for i in range(5)]
    result = plots.importance(given, AXES[:1])
    assert result.importances == (("lr", 0.0),)


def test_eta_squared_by_value_and_by_quantile_bins() -> None:
    assert plots.eta_squared([0, 0, 1, 1], [1.0, 1.0, 3.0, 3.0]) == 1.0
    assert plots.eta_squared([0, 1, 0, 1], [1.0, 1.0, 3.0, 3.0]) == 0.0
    assert plots.eta_squared([0, 1, 0, 1], [2.0, 2.0, 2.0, 2.0]) == 0.0
    # 4 distinct values, 2 bins: edges at the median, groups {0, 1} and {2, 3}.
    column = [0.0, 1.0, 2.0, 3.0]
    y = [0.0, 2.0, 4.0, 6.0]  # mean 3, total 20; group means 1 and 5: between 2*4 + 2*4 = 16
    assert plots.eta_squared(column, y, bins=2) == pytest.approx(0.8, abs=0, rel=1e-15)


# -- list page --------------------------------------------------------------------------------


def test_tally_counts_finished_running_and_failed() -> None:
    counts = {S: 3, E: 1, F: 2, R: 4, TrialState.CREATED: 1, TrialState.KILLED: 1}
    assert plots.tally(counts) == plots.Tally(trials=12, done=7, running=5, failed=2)
    assert plots.tally({}) == plots.Tally(trials=0, done=0, running=0, failed=0)
