"""Katib's file metrics-collector test cases, run through tuner's File collector.

Each case is one of ``TestCollectObservationLog`` in Katib's
``pkg/metricscollector/v1beta1/file-metricscollector/file-metricscollector_test.go``: the same
file content, metric names, filters and format, and Katib's expected outcome, written in tuner's
terms:

* a list of ``(metric, value, time)``: the observations, in order. Katib's zero time (a line
  without a timestamp) is tuner's collection time, :data:`NOW` here.
* ``UNAVAILABLE``: Katib reports the objective as unavailable; tuner collects no value of the
  objective, so a successful trial ends MetricsUnavailable.
* ``("error", text)``: Katib's collection fails; tuner's collector reports a problem containing
  ``text``, and a successful trial ends MetricsUnavailable with it.
* ``("spec error", field)``: refused before any trial runs, with that field path.

Where tuner deliberately differs, the case says so in ``difference``, and README's differences
table has the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import experiment_dict
from tuner.collectors import FileTailer, JsonLineParser, LineParser
from tuner.errors import SpecError
from tuner.lifecycle import trial_ending
from tuner.spec import Objective, load_spec
from tuner.trials import TrialState

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
UNAVAILABLE = "unavailable"
DOCS_FILTER = r"{metricName: ([\w|-]+), metricValue: ((-?\d+)(\.\d+)?)}"


def t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class Case:
    file: str
    data: str | None
    metrics: tuple[str, ...]
    fmt: str
    expected: Any
    filters: tuple[str, ...] = ()
    difference: str = ""


GOOD_JSON = """\
{"checkpoint_path": "", "global_step": "0", "loss": "0.22082142531871796", "timestamp": 1638422847.28721, "trial": "0"}
{"acc": "0.9349666833877563", "checkpoint_path": "", "global_step": "0", "timestamp": 1638422847.287801, "trial": "0"}
{"checkpoint_path": "", "global_step": "1", "loss": "0.1414974331855774", "timestamp": "2021-12-02T14:27:50.000035161Z", "trial": "0"}
{"acc": "0.9586416482925415", "checkpoint_path": "", "global_step": "1", "timestamp": "2021-12-02T14:27:50.000037459Z", "trial": "0"}
{"checkpoint_path": "", "global_step": "2", "loss": "0.10683439671993256", "trial": "0"}"""  # noqa: E501

GOOD_TEXT = """\
2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: 0.8078};{metricName: loss, metricValue: 0.5183}
2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: 0.6752}
2024-03-04T17:55:08Z INFO     {metricName: loss, metricValue: 0.3634}
2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: 100}
2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: 888.333}
2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: -0.4759}
{metricName: loss, metricValue: 0.8671}"""  # noqa: E501

STAMP = t("2024-03-04T17:55:08Z")

CASES: dict[str, Case] = {
    "Positive case for logs in JSON format": Case(
        "good.json",
        GOOD_JSON,
        ("acc", "loss"),
        "JSON",
        [
            ("loss", 0.22082142531871796, t("2021-12-02T05:27:27.287210Z")),
            ("acc", 0.9349666833877563, t("2021-12-02T05:27:27.287801Z")),
            ("loss", 0.1414974331855774, t("2021-12-02T14:27:50.000035Z")),
            ("acc", 0.9586416482925415, t("2021-12-02T14:27:50.000037Z")),
            ("loss", 0.10683439671993256, NOW),
        ],
        difference="Katib reads the fraction of an epoch-seconds timestamp as nanoseconds "
        "(1638422847.28721 -> ...27.000028721); tuner reads seconds (...27.28721). Times are "
        "kept to the microsecond.",
    ),
    "Positive case for logs in TEXT format": Case(
        "good.log",
        GOOD_TEXT,
        ("accuracy", "loss"),
        "TEXT",
        [
            ("accuracy", 0.8078, STAMP),
            ("loss", 0.5183, STAMP),
            ("accuracy", 0.6752, STAMP),
            ("loss", 0.3634, STAMP),
            ("accuracy", 100.0, STAMP),
            ("accuracy", 888.333, STAMP),
            ("accuracy", -0.4759, STAMP),
            ("loss", 0.8671, NOW),
        ],
        filters=(DOCS_FILTER,),
    ),
    "Invalid case for logs in TEXT format": Case(
        "invalid-value.log",
        "2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: .333}\n"
        "2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: -.333}\n"
        "2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: - 345.333}\n"
        "2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: 888.}",
        ("accuracy", "loss"),
        "TEXT",
        UNAVAILABLE,
        filters=(DOCS_FILTER,),
    ),
    "Invalid file name": Case(
        "invalid", None, ("acc",), "JSON", ("error", "was never created by the trial")
    ),
    "Invalid file format": Case(
        "good.log",
        None,
        ("acc",),
        "invalid",
        ("spec error", "spec.metricsCollectorSpec.source.fileSystemPath.format"),
    ),
    "Invalid formatted file for logs in JSON format": Case(
        "invalid-format.json",
        '"checkpoint_path": "", "global_step": "0", "loss": "0.22082142531871796", '
        '"timestamp": 1638422847.28721, "trial": "0"\n'
        '{"acc": "0.9349666833877563", "checkpoint_path": "", "global_step": "0", '
        '"timestamp": 1638422847.287801, "trial": "0',
        ("acc", "loss"),
        "JSON",
        ("error", "line 1 of the JSON metrics file"),
    ),
    "Invalid formatted file for logs in TEXT format": Case(
        "invalid-format.log",
        "2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: 0.6752\n"
        "2024-03-04T17:55:08Z INFO     {metricName: loss, metricValue: 0.3634}",
        ("accuracy", "loss"),
        "TEXT",
        UNAVAILABLE,
        filters=(DOCS_FILTER,),
    ),
    "Invalid timestamp for logs in JSON format": Case(
        "invalid-timestamp.json",
        '{"checkpoint_path": "", "global_step": "0", "loss": "0.22082142531871796", '
        '"timestamp": "invalid", "trial": "0"}\n'
        '{"acc": "0.9349666833877563", "checkpoint_path": "", "global_step": "0", '
        '"timestamp": 1638422847, "trial": "0"}',
        ("acc", "loss"),
        "JSON",
        [
            ("loss", 0.22082142531871796, NOW),
            ("acc", 0.9349666833877563, t("2021-12-02T05:27:27Z")),
        ],
    ),
    "Invalid timestamp for logs in TEXT format": Case(
        "invalid-timestamp.log",
        "2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: 0.6752}\n"
        "invalid INFO     {metricName: loss, metricValue: 0.3634}",
        ("accuracy", "loss"),
        "TEXT",
        [("accuracy", 0.6752, STAMP), ("loss", 0.3634, NOW)],
        filters=(DOCS_FILTER,),
    ),
    "Missing objective metric in JSON training logs": Case(
        "missing-objective-metric.json",
        '{"checkpoint_path": "", "global_step": "0", "loss": "0.22082142531871796", '
        '"timestamp": 1638422847.28721, "trial": "0"}\n'
        '{"checkpoint_path": "", "global_step": "1", "loss": "0.1414974331855774", '
        '"timestamp": "2021-12-02T14:27:50.000035161+09:00", "trial": "0"}\n'
        '{"checkpoint_path": "", "global_step": "2", "loss": "0.10683439671993256", "trial": "0"}',
        ("acc", "loss"),
        "JSON",
        UNAVAILABLE,
    ),
    "Missing objective metric in TEXT training logs": Case(
        "missing-objective-metric.log",
        "2024-03-04T17:55:08Z INFO     {metricName: loss, metricValue: 0.3634}\n"
        "2024-03-04T17:55:08Z INFO     {metricName: loss, metricValue: 0.8671}",
        ("accuracy", "loss"),
        "TEXT",
        UNAVAILABLE,
    ),
}


def spec_for(case: Case, path: Path) -> dict[str, Any]:
    source: dict[str, Any] = {
        "fileSystemPath": {"path": str(path), "kind": "File", "format": case.fmt}
    }
    if case.filters:
        source["filter"] = {"metricsFormat": list(case.filters)}
    return experiment_dict(
        objective={
            "type": "maximize",
            "objectiveMetricName": case.metrics[0],
            "additionalMetricNames": list(case.metrics[1:]),
        },
        metricsCollectorSpec={"collector": {"kind": "File"}, "source": source},
    )


def collect(case: Case, tmp_path: Path) -> Any:
    """Run a case through the File collector as the controller does; its outcome."""
    path = tmp_path / case.file
    try:
        experiment = load_spec(spec_for(case, path))
    except SpecError as e:
        return ("spec error", [err.path for err in e.errors])
    if case.data is not None:
        path.write_text(case.data)
    objective = Objective(
        type="maximize",
        objective_metric_name=case.metrics[0],
        additional_metric_names=list(case.metrics[1:]),
    )
    assert experiment.spec.metrics_collector_spec.kind.value == "File"
    parser: LineParser | JsonLineParser = (
        JsonLineParser(objective, now=lambda: NOW)
        if case.fmt == "JSON"
        else LineParser(objective, list(case.filters), now=lambda: NOW)
    )
    tailer = FileTailer(path, parser)
    observations = tailer.poll(final=True)
    reported = any(o.metric == case.metrics[0] for o in observations)
    ending = trial_ending(
        experiment.spec, True, reported, "Completed", None, tailer.unknown, tailer.problem
    )
    if tailer.problem is not None:
        assert ending.state is TrialState.METRICS_UNAVAILABLE
        assert tailer.problem in (ending.message or "")
        return ("error", tailer.problem)
    if not reported:
        assert ending.state is TrialState.METRICS_UNAVAILABLE
        return UNAVAILABLE
    assert ending.state is TrialState.SUCCEEDED
    return [(o.metric, o.value, o.time) for o in observations]


@pytest.mark.parametrize("name", list(CASES))
def test_katib_file_collector_case(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    outcome = collect(case, tmp_path)
    expected = case.expected
    if isinstance(expected, tuple) and expected[0] == "error":
        assert outcome[0] == "error", outcome
        assert expected[1] in outcome[1]
    elif isinstance(expected, tuple) and expected[0] == "spec error":
        assert outcome[0] == "spec error", outcome
        assert expected[1] in outcome[1]
    else:
        assert outcome == expected


def test_every_katib_case_is_here() -> None:
    """The 11 cases of Katib's TestCollectObservationLog, by their names."""
    assert len(CASES) == 11
    differing = [n for n, c in CASES.items() if c.difference]
    assert differing == ["Positive case for logs in JSON format"]
