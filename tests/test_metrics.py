"""Tests of tuner.collectors: text and JSON line parsing, collector selection, file tailing."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tuner.collectors import (
    DEFAULT_FILTER,
    FileTailer,
    JsonLineParser,
    LineParser,
    parse_rfc3339,
    parser_for,
)
from tuner.spec import ExperimentSpec, Objective
from tuner.trials import Observation

NOW = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
KATIB_DOCS_FORMAT = r"{metricName: ([\w|-]+), metricValue: ((-?\d+)(\.\d+)?)}"


def clock() -> datetime:
    return NOW


def objective(*additional: str, name: str = "accuracy") -> Objective:
    return Objective(
        type="maximize", objective_metric_name=name, additional_metric_names=list(additional)
    )


def triples(observations: list[Observation]) -> list[tuple[str, int, float]]:
    return [(o.metric, o.step, o.value) for o in observations]


def text_parser(*additional: str, formats: list[str] | None = None) -> LineParser:
    return LineParser(objective(*additional), formats, now=clock)


# ---------------------------------------------------------------------------------------------
# Text lines


def test_default_filter_is_katibs() -> None:
    assert DEFAULT_FILTER == r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"


def test_default_filter_several_metrics_and_explicit_epoch() -> None:
    p = text_parser("loss")
    obs = p.parse("epoch=3 accuracy=0.91 loss=0.3")
    assert triples(obs) == [("accuracy", 3, 0.91), ("loss", 3, 0.3)]
    assert all(o.time == NOW for o in obs)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("accuracy = 0.5", 0.5),
        ("accuracy=.98", 0.98),
        ("accuracy=1e-3", 1e-3),
        ("accuracy=-7.53e-05", -7.53e-05),
        ("accuracy=+1.23E10", 1.23e10),
        ("accuracy=-2", -2.0),
        ("INFO train: accuracy=0.7, other stuff", 0.7),
    ],
)
def test_default_filter_number_forms(line: str, expected: float) -> None:
    assert triples(text_parser().parse(line)) == [("accuracy", 0, expected)]


def test_auto_steps_count_per_metric_and_are_deterministic() -> None:
    lines = ["accuracy=0.1", "loss=2.0", "accuracy=0.2 loss=1.5", "accuracy=0.3"]

    def run() -> list[tuple[str, int, float]]:
        p = text_parser("loss")
        return [t for line in lines for t in triples(p.parse(line))]

    first = run()
    assert first == [
        ("accuracy", 0, 0.1),
        ("loss", 0, 2.0),
        ("accuracy", 1, 0.2),
        ("loss", 1, 1.5),
        ("accuracy", 2, 0.3),
    ]
    assert run() == first


def test_explicit_step_keys_and_continuation_of_auto_steps() -> None:
    p = text_parser("loss")
    assert triples(p.parse("step=10 accuracy=0.5")) == [("accuracy", 10, 0.5)]
    assert triples(p.parse("accuracy=0.6")) == [("accuracy", 11, 0.6)]
    assert triples(p.parse("global_step = 20 loss=0.1")) == [("loss", 20, 0.1)]
    # step is preferred over epoch; the key is case-insensitive
    assert triples(p.parse("Epoch=2 STEP=300 accuracy=0.7")) == [("accuracy", 300, 0.7)]


def test_non_integer_or_negative_epoch_is_not_a_step() -> None:
    p = text_parser()
    assert triples(p.parse("epoch=1.5 accuracy=0.5")) == [("accuracy", 0, 0.5)]
    assert triples(p.parse("epoch=-1 accuracy=0.6")) == [("accuracy", 1, 0.6)]


def test_epoch_that_is_a_metric_is_not_a_step() -> None:
    p = text_parser("epoch")
    obs = p.parse("epoch=7 accuracy=0.5")
    assert triples(obs) == [("epoch", 0, 7.0), ("accuracy", 0, 0.5)]


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2024-01-01T10:00:00Z", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("2024-01-01T10:00:00.25Z", datetime(2024, 1, 1, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2024-01-01T10:00:00.123456789Z", datetime(2024, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-01-01T12:30:00+02:30", datetime(2024, 1, 1, 10, 0, tzinfo=UTC)),
        ("2024-01-01t05:00:00-05:00", datetime(2024, 1, 1, 10, 0, tzinfo=UTC)),
    ],
)
def test_leading_rfc3339_timestamp_is_the_time(stamp: str, expected: datetime) -> None:
    obs = text_parser().parse(f"{stamp} accuracy=0.9")
    assert triples(obs) == [("accuracy", 0, 0.9)]
    assert obs[0].time == expected
    assert obs[0].time is not None and obs[0].time.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "line",
    [
        "2024-01-01 accuracy=0.9",  # a date is not a timestamp
        "2024-01-01T10:00:00 accuracy=0.9",  # no offset
        "2024-13-01T10:00:00Z accuracy=0.9",  # no such month
        "accuracy=0.9 2024-01-01T10:00:00Z",  # not leading
    ],
)
def test_other_leading_tokens_leave_the_time_to_the_clock(line: str) -> None:
    obs = text_parser().parse(line)
    assert triples(obs) == [("accuracy", 0, 0.9)]
    assert obs[0].time == NOW


def test_parse_rfc3339_rejects_garbage() -> None:
    assert parse_rfc3339("yesterday") is None
    assert parse_rfc3339("2024-01-01T10:00:00+24:00") is None
    assert parse_rfc3339("2016-12-31T23:59:60Z") == datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_custom_metrics_format_from_katib_docs() -> None:
    p = text_parser("loss", formats=[KATIB_DOCS_FORMAT])
    obs = p.parse("{metricName: accuracy, metricValue: 0.8} {metricName: loss, metricValue: -1.5}")
    assert triples(obs) == [("accuracy", 0, 0.8), ("loss", 0, -1.5)]
    # the default filter is not used when a format is given
    assert p.parse("accuracy=0.9") == []


def test_several_custom_formats_all_apply() -> None:
    p = text_parser("loss", formats=[r"(accuracy):\s*([\d.]+)", r"(loss)\s+is\s+([\d.]+)"])
    assert triples(p.parse("accuracy: 0.5; loss is 0.25")) == [
        ("accuracy", 0, 0.5),
        ("loss", 0, 0.25),
    ]


def test_custom_format_may_yield_nan_and_inf() -> None:
    p = text_parser("loss", formats=[r"([a-z]+)=(\S+)"])
    obs = p.parse("accuracy=nan loss=inf")
    assert [o.metric for o in obs] == ["accuracy", "loss"]
    assert math.isnan(obs[0].value)
    assert obs[1].value == math.inf


def test_custom_format_needs_two_groups() -> None:
    with pytest.raises(ValueError, match="two groups"):
        text_parser(formats=[r"accuracy=(\d+)"])


@pytest.mark.parametrize(
    "line",
    [
        "",
        "   ",
        "starting training",
        "accuracy=",
        "accuracy=abc",
        "accuracy=nan",
        "accuracy=inf",
        "accuracy=-",
        "accuracy=e5",
        "\x00\xff garbage ===",
        "precision=0.5 recall=0.7",  # not the objective's metrics
        "my-accuracy=0.5",  # a longer name is another metric
    ],
)
def test_junk_and_unknown_metrics_are_skipped(line: str) -> None:
    assert text_parser().parse(line) == []


def test_names_outside_the_spec_are_remembered_with_a_value() -> None:
    parser = LineParser(objective(name="Score"), now=clock)
    for line in [
        "epoch=0 score=0.93 lr=0.1",
        "epoch=1 score=0.95 note=abc",
        "Score=oops",
        "a=1 b=2 c=3 d=4 e=5",
    ]:
        assert parser.parse(line) == []
    # First value of each name, in order, step keys and non-numbers left out, at most five.
    assert parser.unknown == ["score=0.93", "lr=0.1", "a=1", "b=2", "c=3"]
    assert parser.parse("Score=0.5")[0].value == 0.5


def test_json_keys_outside_the_spec_are_remembered() -> None:
    parser = JsonLineParser(objective(name="Score"), now=clock)
    assert parser.parse('{"score": 0.93, "step": 1, "timestamp": 5, "tag": "x"}') == []
    assert parser.unknown == ["score=0.93"]


def test_junk_does_not_advance_steps() -> None:
    p = text_parser()
    p.parse("accuracy=nan")
    p.parse("loss=0.1")
    assert triples(p.parse("accuracy=0.3")) == [("accuracy", 0, 0.3)]


def test_line_endings_are_ignored() -> None:
    assert triples(text_parser().parse("accuracy=0.5\r\n")) == [("accuracy", 0, 0.5)]


def test_default_clock_is_utc_aware() -> None:
    obs = LineParser(objective()).parse("accuracy=0.5")
    assert obs[0].time is not None and obs[0].time.tzinfo is not None
    assert abs(obs[0].time - datetime.now(UTC)) < timedelta(minutes=1)


# ---------------------------------------------------------------------------------------------
# JSON lines


def json_parser(*additional: str) -> JsonLineParser:
    return JsonLineParser(objective(*additional), now=clock)


def test_json_numbers_and_numeric_strings() -> None:
    p = json_parser("loss")
    obs = p.parse(json.dumps({"accuracy": "0.5", "loss": 0.25, "other": 1}))
    assert triples(obs) == [("accuracy", 0, 0.5), ("loss", 0, 0.25)]
    assert all(o.time == NOW for o in obs)
    assert triples(p.parse('{"accuracy": 1}')) == [("accuracy", 1, 1.0)]


def test_json_timestamps() -> None:
    p = json_parser()
    epoch = p.parse('{"accuracy": "0.5", "timestamp": 1700000000.5}')
    assert epoch[0].time == datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)
    rfc = p.parse('{"accuracy": "0.5", "timestamp": "2024-01-01T11:00:00+01:00"}')
    assert rfc[0].time == datetime(2024, 1, 1, 10, tzinfo=UTC)
    for bad in ('"yesterday"', "true", "null", "[1]", "1e300"):
        obs = p.parse(f'{{"accuracy": 0.5, "timestamp": {bad}}}')
        assert obs[0].time == NOW, bad


def test_json_steps() -> None:
    p = json_parser()
    assert triples(p.parse('{"accuracy": 0.1, "step": 5}')) == [("accuracy", 5, 0.1)]
    assert triples(p.parse('{"accuracy": 0.2, "epoch": 7.0}')) == [("accuracy", 7, 0.2)]
    assert triples(p.parse('{"accuracy": 0.3, "global_step": "9"}')) == [("accuracy", 9, 0.3)]
    assert triples(p.parse('{"accuracy": 0.4}')) == [("accuracy", 10, 0.4)]
    assert triples(p.parse('{"accuracy": 0.5, "step": -1, "epoch": 1.5}')) == [
        ("accuracy", 11, 0.5)
    ]


def test_json_step_key_that_is_a_metric_is_not_a_step() -> None:
    p = json_parser("epoch")
    assert triples(p.parse('{"accuracy": 0.5, "epoch": 3}')) == [
        ("accuracy", 0, 0.5),
        ("epoch", 0, 3.0),
    ]


def test_json_nan_is_kept() -> None:
    obs = json_parser().parse('{"accuracy": NaN}')
    assert len(obs) == 1 and math.isnan(obs[0].value)


@pytest.mark.parametrize(
    "line",
    [
        "",
        '{"accuracy": true}',
        '{"accuracy": "high"}',
        '{"accuracy": null}',
        '{"accuracy": {"value": 1}}',
        '{"loss": 0.5}',
    ],
)
def test_json_values_that_are_not_numbers_are_skipped(line: str) -> None:
    parser = json_parser()
    assert parser.parse(line) == []
    assert parser.problem is None


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("not json", "not valid JSON"),
        ('{"accuracy": 0.5', "not valid JSON"),
        ("[1, 2]", "a JSON list, not an object"),
        ('"accuracy"', "a JSON str, not an object"),
        ("[" * 100000, "not valid JSON"),
    ],
)
def test_a_line_that_is_not_a_json_object_is_a_problem(line: str, why: str) -> None:
    """Katib's collector fails on such a line; tuner records the first as the problem."""
    parser = json_parser()
    assert parser.parse('{"accuracy": 0.5}') != []
    assert parser.parse(line) == []
    assert parser.problem is not None
    assert parser.problem.startswith("line 2 of the JSON metrics file") and why in parser.problem
    parser.parse("also not json")
    assert parser.problem.startswith("line 2 ")  # the first one is kept


# ---------------------------------------------------------------------------------------------
# parser_for


def spec_with_collector(collector: dict[str, Any]) -> ExperimentSpec:
    return ExperimentSpec.model_validate(
        {
            "objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
            "algorithm": {"algorithmName": "random"},
            "metricsCollectorSpec": collector,
        }
    )


def test_parser_for_each_collector_kind() -> None:
    default = ExperimentSpec.model_validate(
        {
            "objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
            "algorithm": {"algorithmName": "random"},
        }
    )
    assert isinstance(parser_for(default), LineParser)

    custom = parser_for(
        spec_with_collector(
            {
                "collector": {"kind": "StdOut"},
                "source": {"filter": {"metricsFormat": [KATIB_DOCS_FORMAT]}},
            }
        ),
        now=clock,
    )
    assert isinstance(custom, LineParser)
    assert triples(custom.parse("{metricName: accuracy, metricValue: 0.8}")) == [
        ("accuracy", 0, 0.8)
    ]

    def file(fmt: str) -> ExperimentSpec:
        path = {"path": "/var/log/katib/metrics.log", "kind": "File", "format": fmt}
        return spec_with_collector(
            {"collector": {"kind": "File"}, "source": {"fileSystemPath": path}}
        )

    assert isinstance(parser_for(file("TEXT")), LineParser)
    assert isinstance(parser_for(file("JSON")), JsonLineParser)
    assert parser_for(spec_with_collector({"collector": {"kind": "Push"}})) is None
    assert parser_for(spec_with_collector({"collector": {"kind": "None"}})) is None


# ---------------------------------------------------------------------------------------------
# FileTailer


def test_tailer_file_appears_later(tmp_path: Path) -> None:
    path = tmp_path / "metrics.log"
    tailer = FileTailer(path, text_parser())
    assert tailer.poll() == []
    assert tailer.flush() == []
    path.write_text("accuracy=0.1\naccuracy=0.2\n")
    assert triples(tailer.poll()) == [("accuracy", 0, 0.1), ("accuracy", 1, 0.2)]
    assert tailer.poll() == []


def test_tailer_partial_lines(tmp_path: Path) -> None:
    path = tmp_path / "metrics.log"
    tailer = FileTailer(path, text_parser("loss"))
    with path.open("w") as f:
        f.write("accuracy=0.5 lo")
        f.flush()
        assert tailer.poll() == []
        f.write("ss=0.25\naccuracy=0.")
        f.flush()
        assert triples(tailer.poll()) == [("accuracy", 0, 0.5), ("loss", 0, 0.25)]
        f.write("75")
        f.flush()
        assert tailer.poll() == []
        assert triples(tailer.flush()) == [("accuracy", 1, 0.75)]
        assert tailer.flush() == []
        assert tailer.offset == path.stat().st_size


def test_tailer_multibyte_character_split_across_polls(tmp_path: Path) -> None:
    path = tmp_path / "metrics.log"
    tailer = FileTailer(path, text_parser())
    data = "é accuracy=0.5\n".encode()
    path.write_bytes(data[:1])
    assert tailer.poll() == []
    path.write_bytes(data)
    assert triples(tailer.poll()) == [("accuracy", 0, 0.5)]


def test_tailer_crlf_and_junk(tmp_path: Path) -> None:
    path = tmp_path / "metrics.log"
    path.write_bytes(b"garbage \xff\xfe\r\naccuracy=0.5\r\n\r\naccuracy=oops\r\n")
    assert triples(FileTailer(path, text_parser()).poll()) == [("accuracy", 0, 0.5)]


def test_tailer_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    tailer = FileTailer(path, json_parser("loss"))
    path.write_text(
        '{"accuracy": "0.5", "loss": "1.0", "timestamp": 1700000000}\n'
        "junk\n"
        '{"accuracy": 0.6, "step": 4}\n'
        '{"loss": 0.'
    )
    obs = tailer.poll()
    assert triples(obs) == [("accuracy", 0, 0.5), ("loss", 0, 1.0), ("accuracy", 4, 0.6)]
    assert obs[0].time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert obs[2].time == NOW
    with path.open("a") as f:
        f.write("5}\n")
    assert triples(tailer.poll()) == [("loss", 1, 0.5)]


def test_tailer_restarts_when_file_is_truncated_or_replaced(tmp_path: Path) -> None:
    path = tmp_path / "metrics.log"
    tailer = FileTailer(path, text_parser())
    path.write_text("accuracy=0.1\naccuracy=0.2\n")
    assert len(tailer.poll()) == 2
    path.write_text("accuracy=0.3\n")  # truncated and rewritten, shorter
    assert triples(tailer.poll()) == [("accuracy", 2, 0.3)]
    other = tmp_path / "new.log"
    other.write_text("accuracy=0.4\naccuracy=0.5\naccuracy=0.6\n")
    other.replace(path)  # a new file at the same path
    assert [o.value for o in tailer.poll()] == [0.4, 0.5, 0.6]


def test_tailer_reparsing_gives_same_steps(tmp_path: Path) -> None:
    path = tmp_path / "metrics.log"
    path.write_text("accuracy=0.1\nepoch=5 accuracy=0.2\naccuracy=0.3\n")
    first = triples(FileTailer(path, text_parser()).poll())
    assert first == [("accuracy", 0, 0.1), ("accuracy", 5, 0.2), ("accuracy", 6, 0.3)]
    assert triples(FileTailer(path, text_parser()).poll()) == first


def test_timestamps_with_offsets_are_normalised_to_utc() -> None:
    obs = text_parser().parse("2024-06-01T00:00:00+09:00 accuracy=1")
    tz = timezone(timedelta(hours=9))
    assert obs[0].time == datetime(2024, 6, 1, tzinfo=tz)
    assert obs[0].time is not None and obs[0].time.tzinfo is UTC


def test_tailer_file_never_created_is_a_problem_at_the_end(tmp_path: Path) -> None:
    tailer = FileTailer(tmp_path / "metrics.log", text_parser())
    assert tailer.poll() == [] and tailer.problem is None  # the trial may still create it
    assert tailer.poll(final=True) == []
    assert (
        tailer.problem
        == f"the metrics file {tmp_path / 'metrics.log'} was never created by the trial"
    )


def test_tailer_of_a_file_that_existed_has_no_problem(tmp_path: Path) -> None:
    path = tmp_path / "metrics.log"
    path.write_text("")
    tailer = FileTailer(path, text_parser())
    assert tailer.poll(final=True) == [] and tailer.problem is None


def test_filters_have_gos_ascii_classes() -> None:
    """Katib's regexes run on Go's regexp, where \\d and \\w are ASCII only."""
    parser = text_parser()
    assert parser.parse("accuracy=\u0663") == []  # an Arabic-Indic digit three
    assert triples(parser.parse("accuracy=3")) == [("accuracy", 0, 3.0)]
    assert text_parser("lo\u00df").parse("lo\u00df=0.5") == []  # \w does not match ß
