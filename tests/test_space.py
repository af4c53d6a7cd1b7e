"""The typed search space: Katib strings parsed once; conversion, bounds, log, grid, lists."""

from __future__ import annotations

import math

import pytest

from tuner.space import (
    AlgorithmChoice,
    Direction,
    Objective,
    Parameter,
    ParameterKind,
    SearchSpace,
    SpaceError,
    Study,
    parse_parameter,
    study_of,
)
from tuner.spec import load_spec


def test_ranges_are_parsed_from_katib_strings() -> None:
    p = parse_parameter(
        "lr", ParameterKind.DOUBLE, minimum="1e-4", maximum="0.1", distribution="logUniform"
    )
    assert p == Parameter(
        "lr", ParameterKind.DOUBLE, 1e-4, 0.1, None, True, distribution="logUniform"
    )
    n = parse_parameter("n", ParameterKind.INT, minimum="1", maximum="9", step="2")
    assert (n.low, n.high, n.step, n.log) == (1.0, 9.0, 2.0, False)
    normal = parse_parameter(
        "x", ParameterKind.DOUBLE, minimum="-1", maximum="1", distribution="normal"
    )
    assert not normal.log  # sampled on a linear scale, like uniform


def test_lists_are_typed() -> None:
    d = parse_parameter("d", ParameterKind.DISCRETE, values=["1", "2.5", "-3"])
    assert d.choices == (1, 2.5, -3)
    assert [type(c) for c in d.choices] == [int, float, int]
    c = parse_parameter("c", ParameterKind.CATEGORICAL, values=["1", "adam"])
    assert c.choices == ("1", "adam")


def test_a_categorical_parameter_takes_katibs_default_distribution() -> None:
    """Katib's webhook writes distribution uniform into every parameter; it means nothing for
    a list of choices, and Katib accepts it there."""
    parameter = parse_parameter(
        "opt", ParameterKind.CATEGORICAL, values=["a", "b"], distribution="uniform"
    )
    assert parameter.choices == ("a", "b") and not parameter.log


@pytest.mark.parametrize(
    ("kind", "fields", "expected"),
    [
        (
            ParameterKind.DOUBLE,
            {"maximum": "1"},
            [("min", "must be specified for parameterType double")],
        ),
        (ParameterKind.DOUBLE, {"minimum": "a", "maximum": "1"}, [("min", "'a' is not a number")]),
        (
            ParameterKind.DOUBLE,
            {"minimum": "0", "maximum": "inf"},
            [("max", "'inf' is not a finite number")],
        ),
        (
            ParameterKind.INT,
            {"minimum": "0.5", "maximum": "3"},
            [("min", "must be an integer for parameterType int, got '0.5'")],
        ),
        (
            ParameterKind.DOUBLE,
            {"minimum": "2", "maximum": "1"},
            [("min", "must not exceed max (2 > 1)")],
        ),
        (
            ParameterKind.DOUBLE,
            {"minimum": "0", "maximum": "1", "distribution": "logUniform"},
            [("min", "must be positive for distribution logUniform")],
        ),
        (
            ParameterKind.DOUBLE,
            {"minimum": "0", "maximum": "1", "step": "0"},
            [("step", "must be greater than 0")],
        ),
        (
            ParameterKind.DOUBLE,
            {"minimum": "0", "maximum": "1", "step": "2"},
            [("step", "must not exceed max - min")],
        ),
        (
            ParameterKind.DOUBLE,
            {"minimum": "0", "maximum": "1", "values": ["1"]},
            [("list", "not supported for parameterType double")],
        ),
        (
            ParameterKind.CATEGORICAL,
            {"values": []},
            [("list", "must be a non-empty list for parameterType categorical")],
        ),
        (ParameterKind.CATEGORICAL, {"values": ["a", "a"]}, [("list", "values must be unique")]),
        (ParameterKind.DISCRETE, {"values": ["1", "x"]}, [("list[1]", "'x' is not a number")]),
        (
            ParameterKind.CATEGORICAL,
            {"values": ["a"], "minimum": "0"},
            [("", "min, max and step are not supported for parameterType categorical")],
        ),
    ],
)
def test_invalid_feasible_spaces_report_every_problem(
    kind: ParameterKind, fields: dict[str, object], expected: list[tuple[str, str]]
) -> None:
    with pytest.raises(SpaceError) as info:
        parse_parameter("p", kind, **fields)  # type: ignore[arg-type]
    assert info.value.problems == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": ParameterKind.DOUBLE, "low": 2.0, "high": 1.0},
        {"kind": ParameterKind.DOUBLE, "low": 0.0, "high": math.inf},
        {"kind": ParameterKind.DOUBLE, "low": 0.0, "high": 1.0, "log": True},
        {"kind": ParameterKind.DOUBLE, "low": 0.0, "high": 1.0, "step": 2.0},
        {"kind": ParameterKind.INT, "low": 0.5, "high": 3.0},
        {"kind": ParameterKind.INT, "low": 0.0, "high": 3.0, "choices": (1,)},
        {"kind": ParameterKind.CATEGORICAL},
        {"kind": ParameterKind.CATEGORICAL, "choices": ("a", "a")},
        {"kind": ParameterKind.CATEGORICAL, "choices": ("a",), "low": 0.0},
    ],
)
def test_parameters_validate_themselves(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Parameter("p", **kwargs)  # type: ignore[arg-type]


def test_conversion_to_the_parameter_type() -> None:
    assert Parameter("n", ParameterKind.INT, 1, 9).convert("3.6") == 4
    assert Parameter("x", ParameterKind.DOUBLE, 0, 1).convert("0.25") == 0.25
    d = Parameter("d", ParameterKind.DISCRETE, choices=(1, 2.5))
    assert d.convert("1") == 1 and isinstance(d.convert("1"), int)
    assert d.convert(2.5) == 2.5
    assert Parameter("c", ParameterKind.CATEGORICAL, choices=("a",)).convert(1) == "1"
    with pytest.raises(ValueError):
        Parameter("x", ParameterKind.DOUBLE, 0, 1).convert("abc")


def test_bounds_step_grid_and_lists() -> None:
    x = Parameter("x", ParameterKind.DOUBLE, 0.0, 1.0, step=0.25)
    assert x.contains(0.5) and x.contains(1.0) and x.contains(0.75 + 1e-12)
    assert not x.contains(0.3) and not x.contains(1.25) and not x.contains("0.5")
    n = Parameter("n", ParameterKind.INT, 1, 10, log=True)
    assert n.contains(1) and n.contains(10) and not n.contains(2.5) and not n.contains(11)
    c = Parameter("c", ParameterKind.DISCRETE, choices=(1, 2.5))
    assert c.contains(1) and c.contains(1.0) and not c.contains(2)


def test_search_space_by_name_and_conversion() -> None:
    space = SearchSpace(
        (
            Parameter("n", ParameterKind.INT, 1, 9),
            Parameter("c", ParameterKind.CATEGORICAL, choices=("a", "b")),
        )
    )
    assert space.names == ["n", "c"] and len(space) == 2 and "n" in space and "z" not in space
    assert space["c"].choices == ("a", "b")
    assert space.convert({"c": "b", "n": "2", "extra": 1}) == {"n": 2, "c": "b"}
    with pytest.raises(ValueError):
        SearchSpace((space["n"], space["n"]))


def test_objective_direction_and_goal() -> None:
    low = Objective("loss", Direction.MINIMIZE, goal=0.1)
    assert low.minimize and low.better(1.0, 2.0) and low.goal_reached(0.1)
    assert not low.goal_reached(math.nan)
    high = Objective("acc", Direction.MAXIMIZE)
    assert not high.minimize and high.better(2.0, 1.0) and not high.goal_reached(1.0)


def test_a_loaded_spec_carries_its_study(tmp_path: object) -> None:
    experiment = load_spec(
        {
            "metadata": {"name": "s"},
            "spec": {
                "objective": {"type": "maximize", "objectiveMetricName": "acc", "goal": 0.9},
                "algorithm": {
                    "algorithmName": "random",
                    "algorithmSettings": [{"name": "random_state", "value": "1"}],
                },
                "earlyStopping": {"algorithmName": "medianstop"},
                "parallelTrialCount": 2,
                "parameters": [
                    {
                        "name": "lr",
                        "parameterType": "double",
                        "feasibleSpace": {"min": "0.01", "max": 0.1},
                    },
                ],
            },
        }
    )
    spec = experiment.spec
    study = spec.study
    assert study is spec.study  # built once
    assert study_of(spec) is study and study_of(study) is study
    assert study.space["lr"] is spec.parameters[0].parameter  # parsed once, shared
    assert study.objective == Objective("acc", Direction.MAXIMIZE, 0.9)
    assert study.algorithm == AlgorithmChoice("random", {"random_state": "1"})
    assert study.early_stopping == AlgorithmChoice("medianstop", {})
    assert study.parallel_trial_count == 2 and study.complete
    assert isinstance(study, Study)


@pytest.mark.parametrize(
    ("kind", "low", "high", "step", "field"),
    [
        (ParameterKind.DOUBLE, -1e308, 1e308, None, "max"),  # the width overflows
        (ParameterKind.DOUBLE, 0.0, 1.0, 1e-300, "step"),  # Decimal arithmetic fails
        (ParameterKind.INT, 0.0, 2.0**60, None, ""),  # beyond exact floats
    ],
)
def test_ranges_no_suggester_can_sample_are_invalid_however_built(
    kind: ParameterKind, low: float, high: float, step: float | None, field: str
) -> None:
    with pytest.raises(ValueError, match="x: "):
        Parameter("x", kind, low, high, step)
    with pytest.raises(SpaceError) as caught:
        parse_parameter("x", kind, minimum=repr(low), maximum=repr(high), step=step and repr(step))
    assert [key for key, _ in caught.value.problems] == [field]


def test_wide_ranges_within_the_limits_are_valid() -> None:
    Parameter("x", ParameterKind.DOUBLE, -8e307, 8e307)
    Parameter("x", ParameterKind.DOUBLE, 0.0, 1.0, 1e-14)
    Parameter("n", ParameterKind.INT, -(2.0**53), 2.0**53)
