"""The TensorFlowEvent collector with event files written by a real writer (tensorboardX)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.collectors.running import collector_spec, stored, tuner_run
from tests.helpers import experiment_dict
from tuner.collectors.tfevent import TfEventCollector, should_consider
from tuner.lifecycle import trial_ending
from tuner.spec import Objective, load_spec
from tuner.trials import TrialState


def test_katibs_tag_rule() -> None:
    # A metric without a directory: every file, tags starting with the name.
    assert should_consider("accuracy", "accuracy", "/logs/train/events.out")
    assert should_consider("accuracy_top1", "accuracy", "/logs/events.out")
    assert not should_consider("loss", "accuracy", "/logs/train/events.out")
    # With a directory: only files whose directory ends with it.
    assert should_consider("loss", "train/loss", "/logs/train/events.out")
    assert not should_consider("loss", "train/loss", "/logs/test/events.out")


def test_tfevent_trial_through_tuner_run(tmp_path: Path) -> None:
    spec = collector_spec(
        "tfevent",
        "tfevent_trial.py",
        ["--logdir=/var/log/katib/tfevent/"],
        {
            "collector": {"kind": "TensorFlowEvent"},
            "source": {"fileSystemPath": {"path": "/var/log/katib/tfevent/", "kind": "Directory"}},
        },
        {
            "type": "maximize",
            "objectiveMetricName": "accuracy",
            "additionalMetricNames": ["train/loss"],
        },
        maxTrialCount=1,
    )
    code, output = tuner_run(tmp_path, spec)
    assert code == 0, output
    ((trial, observations),) = stored(tmp_path, "tfevent")
    assert trial.state is TrialState.SUCCEEDED, trial.message
    x = float(trial.parameters["x"])
    expected = [0.9 - (x - 0.25) ** 2 + 0.01 * s for s in range(3)]
    accuracy = [(o.step, o.value) for o in observations if o.metric == "accuracy"]
    assert [s for s, _ in accuracy] == [0, 1, 2]
    assert all(abs(v - e) < 1e-6 for (_, v), e in zip(accuracy, expected, strict=True))
    # train/loss is the train run's loss (1 - accuracy), never the test run's 5.0.
    loss = [o.value for o in observations if o.metric == "train/loss"]
    assert len(loss) == 3
    assert all(abs(v - (1 - e)) < 1e-6 for v, e in zip(loss, expected, strict=True))
    assert trial.objective is not None and abs(trial.objective - expected[-1]) < 1e-6
    # The trial wrote into its own directory (the spec's path rewritten in its arguments).
    events = list((tmp_path / "work").rglob("events.out.tfevents.*"))
    assert {p.parent.name for p in events} == {"train", "test"}


def test_directory_never_written_makes_metrics_unavailable(tmp_path: Path) -> None:
    collector = TfEventCollector(
        tmp_path / "never", Objective(type="maximize", objective_metric_name="accuracy")
    )
    assert asyncio.run(collector.collect()) == [] and collector.problem is None
    assert asyncio.run(collector.collect(final=True)) == []
    assert (
        collector.problem
        == f"the event directory {tmp_path / 'never'} was never created by the trial"
    )
    ending = trial_ending(
        load_spec(experiment_dict()).spec, True, False, "Completed", None, [], collector.problem
    )
    assert ending.state is TrialState.METRICS_UNAVAILABLE
    assert "was never created" in (ending.message or "")


def test_unreadable_files_are_skipped_and_tags_outside_the_spec_are_named(tmp_path: Path) -> None:
    # TensorBoard's own writer here (tensorboardX is slow to import in-process).
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    (tmp_path / "notes.txt").write_text("not an event file")
    writer = EventFileWriter(str(tmp_path / "run"))
    value = summary_pb2.Summary.Value(tag="acc", simple_value=0.5)
    writer.add_event(
        event_pb2.Event(step=0, wall_time=1.0, summary=summary_pb2.Summary(value=[value]))
    )
    writer.close()
    collector = TfEventCollector(
        tmp_path, Objective(type="maximize", objective_metric_name="accuracy")
    )
    assert asyncio.run(collector.collect(final=True)) == []
    assert collector.problem is None
    assert collector.unknown == ["acc=0.5"]


def test_katibs_tensorboardx_case(tmp_path: Path) -> None:
    """Katib's ``test_parse_file_with_tensorboardX``: train/ and test/ runs with the same tags,
    read with qualified names (``train/accuracy``) and, from train/, with plain names. The same
    scalar events, written with TensorBoard's own writer (tensorboardX is slow to import here;
    the ``tuner run`` test above uses it)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    dirs, names, iterations = ("train", "test"), ("accuracy", "loss"), 3
    for d in dirs:
        writer = EventFileWriter(str(tmp_path / d))
        for name in names:
            for i in range(iterations):
                value = summary_pb2.Summary.Value(tag=name, simple_value=0.1)
                summary = summary_pb2.Summary(value=[value])
                writer.add_event(event_pb2.Event(step=i, wall_time=1.0 + i, summary=summary))
        writer.close()

    def read(directory: Path, metrics: list[str]) -> list[tuple[str, int, float]]:
        objective = Objective(
            type="maximize", objective_metric_name=metrics[0], additional_metric_names=metrics[1:]
        )
        observations = asyncio.run(TfEventCollector(directory, objective).collect(final=True))
        return sorted((o.metric, o.step, round(o.value, 6)) for o in observations)

    qualified = [f"{d}/{n}" for d in dirs for n in names]
    assert read(tmp_path, qualified) == sorted(
        (m, i, 0.1) for m in qualified for i in range(iterations)
    )
    assert read(tmp_path / "train", list(names)) == sorted(
        (n, i, 0.1) for n in names for i in range(iterations)
    )
