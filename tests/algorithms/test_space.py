"""The Katib space as Optuna distributions, and stored values back into it."""

from __future__ import annotations

import warnings

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from tests.algorithms._support import make_spec, param
from tuner.algorithms import space


def dists(*parameters: dict[str, object]) -> dict[str, object]:
    spec = make_spec("random", parameters)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna must find nothing to adjust
        return dict(space.distributions(spec.space))


def test_each_parameter_type() -> None:
    d = dists(
        param("i", "int", min="1", max="10", step="3"),
        param("j", "int", min="1", max="1000", distribution="logUniform"),
        param("f", "double", min="0", max="1", step="0.3"),
        param("g", "double", min="0.001", max="1", distribution="logNormal"),
        param("h", "double", min="-1", max="1", distribution="normal"),
        param("k", "discrete", list=["1", "2.5"]),
        param("c", "categorical", list=["a", "b"]),
    )
    assert d["i"] == IntDistribution(1, 10, step=3)
    assert d["j"] == IntDistribution(1, 1000, log=True)
    assert d["f"] == FloatDistribution(0, 0.9, step=0.3)  # max lowered to the last grid point
    assert d["g"] == FloatDistribution(0.001, 1, log=True)  # logNormal: log scale
    assert d["h"] == FloatDistribution(-1, 1)  # normal: linear scale
    assert d["k"] == CategoricalDistribution([1, 2.5])
    assert d["c"] == CategoricalDistribution(["a", "b"])


def test_log_scale_with_a_step_is_a_space_problem() -> None:
    spec = make_spec(
        "grid",
        [
            param("lr", "double", min="0.001", max="0.1", step="0.01", distribution="logUniform"),
            param("n", "int", min="1", max="64", step="2", distribution="logUniform"),
            param("m", "int", min="1", max="64", step="1", distribution="logUniform"),
        ],
    )
    problems = space.space_problems(spec.space)
    assert len(problems) == 2
    assert problems[0].startswith("parameter 'lr': step cannot be combined")
    assert problems[1].startswith("parameter 'n': an int with distribution logUniform")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"x": 0.30000000000000004, "c": "b"}, {"x": pytest.approx(0.3), "c": "b"}),
        ({"x": "0.6", "c": "a"}, {"x": pytest.approx(0.6), "c": "a"}),
        ({"x": 1.5, "c": "a"}, None),
        ({"x": 0.35, "c": "a"}, None),
        ({"x": 0.3, "c": "z"}, None),
        ({"c": "a"}, None),
    ],
)
def test_stored_values_are_checked_and_snapped(value: dict[str, object], expected: object) -> None:
    spec = make_spec(
        "random",
        [
            param("x", "double", min="0", max="1", step="0.3"),
            param("c", "categorical", list=["a", "b"]),
        ],
    )
    assert space.optuna_params(list(spec.space), space.distributions(spec.space), value) == expected


def test_point_keys_ignore_float_noise_and_number_types() -> None:
    spec = make_spec(
        "random",
        [
            param("x", "double", min="0", max="1"),
            param("k", "discrete", list=["1", "2"]),
        ],
    )
    a = space.point_key(list(spec.space), {"x": 0.1 + 0.2, "k": 1})
    b = space.point_key(list(spec.space), {"x": 0.3, "k": 1.0})
    assert a == b and hash(a) == hash(b)
    assert a != space.point_key(list(spec.space), {"x": 0.3001, "k": 1})
