"""Grid search: the axes Katib builds, each point once, the history as the record."""

from __future__ import annotations

import pytest

from tests.algorithms._support import loss, make_spec, make_trial, param, point, run
from tuner.algorithms.grid import GridSuggester
from tuner.trials import TrialState


def grid(*parameters: dict[str, object], random_state: str | None = None) -> GridSuggester:
    settings = {} if random_state is None else {"random_state": random_state}
    return GridSuggester(
        make_spec("grid", parameters, settings).study,
        None if random_state is None else int(random_state),
    )


def test_axes_and_order() -> None:
    g = grid(
        param("n", "int", min="1", max="6", step="2"),
        param("lr", "double", min="0.1", max="0.35", step="0.1", distribution="logUniform"),
        param("opt", "categorical", list=["sgd", "adam"]),
        param("batch", "discrete", list=["16", "32.5"]),
    )
    points = [s.parameters for s in g.suggest([], 100)]
    assert g.size == len(points) == 3 * 3 * 2 * 2
    # itertools.product order, decimal steps (0.3, not 0.30000000000000004), typed values;
    # a log distribution still gives a linear grid, and max is not a point when off the grid.
    assert points[0] == {"n": 1, "lr": 0.1, "opt": "sgd", "batch": 16}
    assert points[1] == {"n": 1, "lr": 0.1, "opt": "sgd", "batch": 32.5}
    assert points[-1] == {"n": 5, "lr": 0.3, "opt": "adam", "batch": 32.5}
    assert sorted({p["lr"] for p in points}) == [0.1, 0.2, 0.3]
    assert type(points[0]["n"]) is int and type(points[0]["batch"]) is int


def test_trials_in_any_state_take_their_point() -> None:
    g = grid(param("n", "int", min="1", max="4"))
    states = [TrialState.FAILED, TrialState.RUNNING, TrialState.KILLED]
    history = [make_trial(i, {"n": i + 1}, state) for i, state in enumerate(states)]
    assert [s.parameters for s in g.suggest(history, 5)] == [{"n": 4}]
    history.append(make_trial(3, {"n": 4}, TrialState.CREATED))
    assert g.suggest(history, 5) == []


def test_values_off_the_grid_take_nothing_and_storage_noise_is_tolerated() -> None:
    g = grid(param("x", "double", min="0", max="0.3", step="0.1"))
    history = [
        make_trial(0, {"x": 0.15}),  # between two points
        make_trial(1, {"x": 0.30000000000000004}),  # 0.3 as floating-point arithmetic has it
        make_trial(2, {"y": 1}),  # another space
        make_trial(3, {"x": "0.1"}),  # as text
    ]
    assert [s.parameters for s in g.suggest(history, 5)] == [{"x": 0.0}, {"x": 0.2}]


def test_suggestions_not_yet_created_are_offered_again() -> None:
    g = grid(param("n", "int", min="1", max="5"))
    first = g.suggest([], 2)
    # The caller dropped them: the next call, with the same history, proposes the same points.
    assert g.suggest([], 2) == first


@pytest.mark.parametrize("random_state", ["1", "2"])
def test_random_state_permutes_the_order(random_state: str) -> None:
    parameters = (param("a", "int", min="0", max="9"), param("b", "int", min="0", max="9"))
    plain = [point(s.parameters) for s in grid(*parameters).suggest([], 100)]
    shuffled = [
        point(s.parameters) for s in grid(*parameters, random_state=random_state).suggest([], 100)
    ]
    again = [
        point(s.parameters) for s in grid(*parameters, random_state=random_state).suggest([], 100)
    ]
    assert shuffled == again != plain
    assert sorted(shuffled) == sorted(plain)


def test_a_long_grid_run_is_exact_and_cheap() -> None:
    g = grid(param("a", "int", min="1", max="40"), param("b", "int", min="1", max="50"))
    history = run(g, rounds=700, batch=3, objective=loss)
    assert len(history) == 2000
    assert len({point(t.parameters) for t in history}) == 2000
    assert g.suggest(history, 1) == []
