"""The one settings schema of the algorithms and stopping rules, and the typed settings."""

from __future__ import annotations

import pytest

from tuner.algorithms.hyperband import HyperbandSettings
from tuner.algorithms.sampler_settings import SamplerSettings
from tuner.algorithms.settings import (
    Schema,
    Setting,
    at_least,
    bounded_float,
    integer,
    one_of,
    open_interval,
    text,
)
from tuner.early_stopping import MedianStopRule, PatienceRule, ThresholdRule
from tuner.early_stopping.registry import schema as rule_schema

SCHEMA = Schema(
    "demo",
    (
        Setting("n", at_least(1), 3, description="a count"),
        Setting("rate", open_interval(0.0, 1.0, "a number in (0, 1)")),
        Setting("name", text, required=True, description="the target"),
        Setting("mode", one_of(("a", "b"), {"c": "c is gone; use a"})),
    ),
)


def test_values_are_typed_and_defaults_filled() -> None:
    values, problems = SCHEMA.parse({"name": "x", "rate": "0.5", "mode": "b"})
    assert problems == []
    assert values == {"name": "x", "rate": 0.5, "mode": "b", "n": 3}
    assert isinstance(values["n"], int) and isinstance(values["rate"], float)


def test_every_problem_is_reported_with_its_setting() -> None:
    values, problems = SCHEMA.parse({"n": "0", "rate": "1", "mode": "c", "other": "1"})
    assert problems == [
        ("n", "must be an integer >= 1, got '0'"),
        ("rate", "must be a number in (0, 1), got '1'"),
        ("mode", "c is gone; use a"),
        ("other", "unknown setting for demo; known: n, rate, name, mode"),
        ("name", "is required by demo"),
    ]
    assert values == {}


def test_a_custom_message_for_a_missing_setting() -> None:
    schema = Schema(
        "hb",
        (
            Setting(
                "r",
                text,
                required=True,
                description="budget",
                missing="must be set for {owner} ({description})",
            ),
        ),
    )
    assert schema.parse({})[1] == [("r", "must be set for hb (budget)")]


@pytest.mark.parametrize(
    ("parser", "text_", "message"),
    [
        (at_least(0), "x", "must be an integer >= 0, got 'x'"),
        (
            open_interval(0.0, None, "a number greater than 0"),
            "nan",
            "must be a number greater than 0, got 'nan'",
        ),
        (one_of(("a", "b")), "z", "must be one of a, b, got 'z'"),
        (integer(2), "x", "'x' is not an integer"),
        (integer(2), "1", "must be an integer >= 2, got 1"),
        (bounded_float(0.0), "x", "'x' is not a number"),
        (bounded_float(0.0), "inf", "'inf' is not a finite number"),
        (bounded_float(0.0, low_open=True), "0", "must be > 0, got 0"),
        (bounded_float(0.0, 100.0), "101", "must be <= 100, got 101"),
    ],
)
def test_parser_messages(parser: object, text_: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parser(text_)  # type: ignore[operator]


def test_rule_schemas_list_settings_alphabetically() -> None:
    assert rule_schema("percentile").names == [
        "interval_steps",
        "n_startup_trials",
        "n_warmup_steps",
        "percentile",
    ]


def test_typed_constructors_validate() -> None:
    with pytest.raises(ValueError):
        SamplerSettings("tpe", n_ei_candidates=0)
    with pytest.raises(ValueError):
        SamplerSettings("nope")
    with pytest.raises(ValueError):
        HyperbandSettings("epochs", r_l=9, eta=1)
    with pytest.raises(ValueError):
        MedianStopRule(minimize=True, min_trials_required=0)
    with pytest.raises(ValueError):
        ThresholdRule(minimize=True)
    with pytest.raises(ValueError):
        PatienceRule(minimize=True, patience=0)
    assert SamplerSettings("tpe").n_ei_candidates == 24
