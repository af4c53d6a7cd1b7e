"""The contract every suggestion algorithm meets, checked for each registered algorithm.

Like Optuna's ``tests/samplers_tests/test_samplers.py``: one suite, parametrized over
``tuner.algorithms.registry.algorithm_names()``, so a new algorithm is tested by registering it.
"""

from __future__ import annotations

import importlib.util
import statistics
from typing import Any

import numpy as np
import pytest

from tests.algorithms._support import (
    ALGORITHMS,
    CONTINUOUS,
    DEPENDENCY,
    MIXED,
    MIXED_GRID,
    SAMPLING,
    experiment,
    loss,
    make_spec,
    make_trial,
    param,
    point,
    quadratic,
    run,
    skip_without_dependency,
    suggester,
)
from tuner.algorithms.registry import create_suggester
from tuner.errors import SpecError
from tuner.spec import ParameterType, load_spec
from tuner.trials import TrialState

# Trial budget per algorithm in the loops below: a Gaussian-process step costs 0.1-0.5 s.
ROUNDS = {"bayesianoptimization": 2, "gp": 2}
COUNT = {"bayesianoptimization": 2, "gp": 2}


def mixed_space(algorithm: str) -> list[dict[str, Any]]:
    return MIXED_GRID if algorithm == "grid" else MIXED


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_values_have_the_right_type_and_stay_in_the_space(algorithm: str) -> None:
    parameters = mixed_space(algorithm)
    s = suggester(algorithm, parameters, {"random_state": "3"})
    spec = make_spec(algorithm, parameters)
    history = run(s, rounds=ROUNDS.get(algorithm, 8), batch=3, objective=loss)

    # pbt waits for a generation (5 members) to finish before breeding the next: 5 per 2 rounds.
    assert len(history) == (20 if algorithm == "pbt" else 3 * ROUNDS.get(algorithm, 8))
    for trial in history:
        assert set(trial.parameters) == {p.name for p in spec.parameters}
        for p in spec.parameters:
            value = trial.parameters[p.name]
            assert p.contains(value), (p.name, value)
            if p.parameter_type is ParameterType.INT:
                assert type(value) is int
                assert (value - 8) % 8 == 0
            elif p.parameter_type is ParameterType.DOUBLE:
                assert type(value) is float
            elif p.parameter_type is ParameterType.DISCRETE:
                assert type(value) in (int, float) and value in (16, 32, 64.5)
            else:
                assert type(value) is str and value in ("sgd", "adam", "rmsprop")
    lrs = [float(t.parameters["lr"]) for t in history]
    assert all(0.0001 - 1e-12 <= lr <= 0.1 + 1e-12 for lr in lrs)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_count_is_respected(algorithm: str) -> None:
    parameters = mixed_space(algorithm)
    s = suggester(algorithm, parameters, {"random_state": "1"})
    history = run(s, rounds=1, batch=2, objective=loss)

    assert s.suggest(history, 0) == []
    assert len(s.suggest(history, 1)) == 1
    three = s.suggest(history, 3)
    if algorithm == "grid":
        assert 0 < len(three) <= 3
    else:
        assert len(three) == 3


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_seeded_suggestions_are_a_function_of_the_history(algorithm: str) -> None:
    parameters = mixed_space(algorithm)
    history = run(
        suggester(algorithm, parameters, {"random_state": "5"}),
        rounds=ROUNDS.get(algorithm, 4),
        batch=2,
        objective=loss,
    )

    count = COUNT.get(algorithm, 3)
    first = suggester(algorithm, parameters, {"random_state": "7"}).suggest(history, count)
    again = suggester(algorithm, parameters, {"random_state": "7"}).suggest(history, count)
    other = suggester(algorithm, parameters, {"random_state": "8"}).suggest(history, count)

    assert [s.parameters for s in first] == [s.parameters for s in again]
    assert [s.parameters for s in first] != [s.parameters for s in other]


# pbt repeats points by design (an exploiting member copies a better member's values); that
# a rebuilt pbt suggester continues the same population is tested in test_pbt.py.
@pytest.mark.parametrize("seeded", [True, False], ids=["seeded", "unseeded"])
@pytest.mark.parametrize("algorithm", [a for a in SAMPLING if a != "pbt"])
def test_a_rebuilt_suggester_does_not_replay_the_history(algorithm: str, seeded: bool) -> None:
    settings = {"random_state": "11"} if seeded else {}
    before = suggester(algorithm, CONTINUOUS, settings)
    history = run(before, rounds=ROUNDS.get(algorithm, 5), batch=2, objective=quadratic)
    # The crash left the last suggestions created but not run.
    for suggestion in before.suggest(history, 2):
        history.append(
            make_trial(
                len(history), suggestion.parameters, TrialState.RUNNING, attrs=suggestion.attrs
            )
        )

    after = suggester(algorithm, CONTINUOUS, settings)  # the restarted process
    tried = {point(t.parameters) for t in history}
    fresh = after.suggest(history, 3)

    assert len(fresh) == 3
    assert not tried & {point(s.parameters) for s in fresh}
    # And the experiment goes on without meeting the old sequence later either.
    history += [
        make_trial(len(history) + i, s.parameters, objective=quadratic(s.parameters), attrs=s.attrs)
        for i, s in enumerate(fresh)
    ]
    later = run(after, rounds=2, batch=2, objective=quadratic, history=list(history))
    assert len({point(t.parameters) for t in later}) == len(later)


def test_grid_covers_each_point_once_across_a_restart() -> None:
    parameters = [
        param("n", "int", min="1", max="3"),
        param("lr", "double", min="0.1", max="0.3", step="0.1"),
        param("opt", "categorical", list=["sgd", "adam"]),
    ]
    first = suggester("grid", parameters)
    history = run(first, rounds=2, batch=4, objective=loss)
    history[-1].state = TrialState.FAILED  # any state counts as tried
    history[-1].objective = None
    second = suggester("grid", parameters)  # after a restart
    history = run(second, rounds=3, batch=4, objective=loss, history=history)

    points = [point(t.parameters) for t in history]
    expected = {
        point({"n": n, "lr": lr, "opt": opt})
        for n in (1, 2, 3)
        for lr in (0.1, 0.2, 0.3)
        for opt in ("sgd", "adam")
    }
    assert len(points) == len(expected) == 18
    assert set(points) == expected
    assert second.suggest(history, 3) == []
    assert first.suggest(history, 3) == []


@pytest.mark.parametrize("algorithm", ["tpe", "multivariate-tpe", "cmaes", "bayesianoptimization"])
def test_model_based_algorithms_beat_random_draws(algorithm: str) -> None:
    trials = 12 if algorithm == "bayesianoptimization" else 30
    settings = {"random_state": "2"}
    if algorithm == "bayesianoptimization":
        settings["n_initial_points"] = "4"
    history = run(
        suggester(algorithm, CONTINUOUS, settings), rounds=trials, batch=1, objective=quadratic
    )

    rng = np.random.default_rng(0)
    draws = [quadratic({"x": x, "y": y}) for x, y in rng.uniform(-5, 5, size=(1000, 2))]
    values = [t.objective for t in history if t.objective is not None]
    assert len(values) == trials
    assert min(values) < np.percentile(draws, 5)
    # The second half concentrates where the function is low: a model is at work.
    assert statistics.median(values[trials // 2 :]) < statistics.median(draws)


def test_maximize_is_honoured() -> None:
    s = suggester("tpe", CONTINUOUS, {"random_state": "4"}, objective="maximize")
    history = run(s, rounds=30, batch=1, objective=lambda p: -quadratic(p))
    values = [t.objective for t in history if t.objective is not None]
    assert statistics.median(values[15:]) > statistics.median(values[:4])
    assert max(values) > -2.0


# ---------------------------------------------------------------------------------------------
# Settings validation, through the spec loader: errors must name the setting's path.


ALGORITHM_PATH = "spec.algorithm.algorithmName"


def spec_errors(
    algorithm: str, settings: dict[str, str], parameters: list[dict[str, Any]] | None = None
) -> dict[str, list[str]]:
    """Messages by path (an absent optional dependency adds one at ``ALGORITHM_PATH``)."""
    with pytest.raises(SpecError) as info:
        load_spec(experiment(algorithm, parameters or CONTINUOUS, settings))
    errors: dict[str, list[str]] = {}
    for e in info.value.errors:
        errors.setdefault(e.path, []).append(e.message)
    return errors


def mentions(messages: list[str], fragment: str) -> bool:
    return any(fragment in m for m in messages)


@pytest.mark.parametrize(
    ("algorithm", "settings", "index", "fragment"),
    [
        ("random", {"seed": "1"}, 0, "unknown setting for random; known: random_state"),
        ("tpe", {"random_state": "1", "n_startup_trials": "abc"}, 1, "must be an integer >= 0"),
        ("multivariate-tpe", {"n_ei_candidates": "0"}, 0, "must be an integer >= 1"),
        ("tpe", {"gamma": "1.5"}, 0, "open interval (0, 1)"),
        ("tpe", {"prior_weight": "0"}, 0, "greater than 0"),
        ("cmaes", {"restart_strategy": "bogus"}, 0, "must be one of none, ipop, bipop"),
        ("cmaes", {"sigma": "-1"}, 0, "greater than 0"),
        ("sobol", {"random_state": "-3"}, 0, "must be an integer >= 0"),
        ("bayesianoptimization", {"acq_func": "EIps"}, 0, "needs each trial's duration"),
        ("bayesianoptimization", {"base_estimator": "GBRT"}, 0, "GBRT is not available"),
        (
            "bayesianoptimization",
            {"base_estimator": "RF", "acq_optimizer": "lbfgs"},
            1,
            "use acq_optimizer auto or sampling",
        ),
        ("bayesianoptimization", {"acq_optimizer": "adam"}, 0, "auto, sampling, lbfgs"),
        ("bayesianoptimization", {"random_state": "1", "n_initial_points": "x"}, 1, "integer"),
        ("grid", {"n_startup_trials": "3"}, 0, "unknown setting for grid"),
        ("grid", {"random_state": "x"}, 0, "must be an integer >= 0"),
    ],
)
def test_bad_settings_are_reported_at_their_path(
    algorithm: str, settings: dict[str, str], index: int, fragment: str
) -> None:
    parameters = [
        param("x", "double", min="0", max="1", step="0.5"),
        param("y", "int", min="0", max="3"),
    ]
    errors = spec_errors(algorithm, settings, parameters)
    path = f"spec.algorithm.algorithmSettings[{index}]"
    assert path in errors, errors
    (message,) = errors[path]
    assert message.startswith(f"{list(settings)[index]}: ")
    assert fragment in message
    assert set(errors) <= {path, ALGORITHM_PATH}
    if importlib.util.find_spec(DEPENDENCY.get(algorithm, "optuna")) is not None:
        assert ALGORITHM_PATH not in errors


KATIB_DOC_SETTINGS = {
    "random": {"random_state": "10"},
    "grid": {"random_state": "10"},
    "tpe": {"n_EI_candidates": "25", "random_state": "10", "gamma": "0.25", "prior_weight": "1.1"},
    "multivariate-tpe": {"n_ei_candidates": "25", "random_state": "10", "n_startup_trials": "5"},
    "cmaes": {"random_state": "10", "sigma": "0.001", "restart_strategy": "none"},
    "sobol": {},
    "auto": {"random_state": "10"},  # tuner's own: it takes random_state only
    "hyperband": {"resource_name": "budget", "eta": "3", "r_l": "9"},
    "gp": {"n_initial_points": "2", "random_state": "10"},
    "pbt": {
        "suggestion_trial_dir": "/var/log/katib/checkpoints/",
        "n_population": "40",
        "truncation_threshold": "0.2",
    },
    "bayesianoptimization": {
        "base_estimator": "GP",
        "n_initial_points": "2",
        "acq_func": "gp_hedge",
        "acq_optimizer": "auto",
        "random_state": "10",
    },
    # tuner's own, for several objectives (algorithms/multi_objective.py)
    "motpe": {"n_startup_trials": "3", "random_state": "10"},
    "nsga2": {"population_size": "4", "crossover_prob": "0.8", "random_state": "10"},
    "nsga3": {"population_size": "4", "swapping_prob": "0.4", "random_state": "10"},
}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_katib_documented_settings_are_accepted_and_used(algorithm: str) -> None:
    skip_without_dependency(algorithm)
    parameters = [
        param("x", "double", min="-5", max="5", step="0.5"),
        param("y", "int", min="-5", max="5"),
    ]
    spec = make_spec(algorithm, parameters, KATIB_DOC_SETTINGS[algorithm])
    # Suggesting past every start-up phase raises no warning (pytest turns warnings into errors).
    history = run(create_suggester(spec), rounds=4, batch=2, objective=quadratic)
    assert len(history) == 8


def test_space_problems_are_reported_on_the_algorithm() -> None:
    log_step = [
        param("lr", "double", min="0.001", max="0.1", step="0.01", distribution="logUniform")
    ]
    assert mentions(spec_errors("tpe", {}, log_step)[ALGORITHM_PATH], "parameter 'lr': step")

    no_step = [param("x", "double", min="0", max="1")]
    assert mentions(spec_errors("grid", {}, no_step)[ALGORITHM_PATH], "needs feasibleSpace.step")

    huge = [param(n, "int", min="1", max="1000") for n in ("a", "b", "c")]
    assert mentions(spec_errors("grid", {}, huge)[ALGORITHM_PATH], "1,000,000,000 points")

    only_categorical = [param("c", "categorical", list=["a", "b"])]
    messages = spec_errors("cmaes", {}, only_categorical)[ALGORITHM_PATH]
    assert mentions(messages, "at least one int or double")


@pytest.mark.parametrize(
    ("algorithm", "message"),
    [
        (
            "bayesianoptimization",
            "bayesianoptimization needs the optional dependency skopt: pip install scikit-optimize",
        ),
        ("gp", "gp needs the optional dependency torch: pip install 'tuner[gp]'"),
        ("cmaes", "cmaes needs the optional dependency cmaes: pip install cmaes"),
    ],
)
def test_a_missing_dependency_is_reported_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, algorithm: str, message: str
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == DEPENDENCY[algorithm] else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert spec_errors(algorithm, {}) == {ALGORITHM_PATH: [message]}
