"""Katib's Job examples (their features, in specs of our own: tests/katib/examples.py) validate
as they are, and run with ``tuner run`` once their command is a local script."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.katib.examples import examples
from tuner.cli import main
from tuner.errors import SpecError
from tuner.runners.local import LocalRunner
from tuner.spec import CollectorKind, FileFormat, load_spec
from tuner.storage import Repository, make_engine
from tuner.trials import ExperimentPhase, TrialState

EXAMPLES = examples()
NOT_LOCAL = {
    "metrics-collector/custom-metrics-collector.yaml": "sidecar",
    "trial-template/trial-configmap-source.yaml": "ConfigMaps",
}


def params(keys: list[str], marks: dict[str, pytest.MarkDecorator]) -> list[Any]:
    return [pytest.param(k, id=k, marks=[marks[k]] if k in marks else []) for k in keys]


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / f"{data['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_every_job_example_is_covered() -> None:
    """The 21 Job-based examples of Katib's examples/v1beta1 (PBT aside: tuner has no PBT
    algorithm), whatever their trial source."""
    assert len(EXAMPLES) == 21


@pytest.mark.parametrize("key", sorted(EXAMPLES))
def test_example_validates(key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, EXAMPLES[key])
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "valid Experiment kubeflow/" in out


def test_katib_defaults_are_filled_in() -> None:
    """What Katib's defaulting webhook adds, the stored spec shows."""
    plain = load_spec(EXAMPLES["hp-tuning/random.yaml"] | {})
    tt = plain.spec.trial_template
    assert tt is not None and tt.success_condition == (
        'status.conditions.#(type=="Complete")#|#(status=="True")#'
    )
    assert tt.failure_condition == 'status.conditions.#(type=="Failed")#|#(status=="True")#'
    assert plain.spec.resume_policy.value == "Never"
    assert plain.spec.metrics_collector_spec.kind is CollectorKind.STDOUT
    data = EXAMPLES["metrics-collector/file-metrics-collector.yaml"]
    assert "format" not in data["spec"]["metricsCollectorSpec"]["source"]["fileSystemPath"]
    source = load_spec(data).spec.metrics_collector_spec.source
    assert source is not None and source.file_system_path is not None
    assert source.file_system_path.format is FileFormat.TEXT
    dumped = load_spec(data).dump()["spec"]
    assert dumped["metricsCollectorSpec"]["source"]["fileSystemPath"]["format"] == "TEXT"
    assert dumped["parallelTrialCount"] == 2 and dumped["resumePolicy"] == "Never"


RUNNABLE = sorted(set(EXAMPLES) - set(NOT_LOCAL))
RUN_MARKS: dict[str, pytest.MarkDecorator] = {}


def run(tmp_path: Path, spec: Path) -> int:
    db, work = str(tmp_path / "run.db"), str(tmp_path / "work")
    return main(["run", str(spec), "--db", db, "--quiet", "--workdir", work])


def stored(tmp_path: Path, name: str) -> tuple[Any, list[Any]]:
    repo = Repository(make_engine(str(tmp_path / "run.db"), must_exist=True))
    try:
        record = repo.get_experiment("kubeflow", name)
        return record, repo.trials(record.id)
    finally:
        repo.engine.dispose()


@pytest.mark.parametrize("key", params(RUNNABLE, RUN_MARKS))
def test_example_runs_with_tuner_run(
    key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = EXAMPLES[key]
    name = data["metadata"]["name"]
    code = run(tmp_path, write(tmp_path, data))
    out, err = capsys.readouterr()
    assert code == 0, out + err
    record, trials = stored(tmp_path, name)
    assert record.phase is ExperimentPhase.SUCCEEDED, record
    assert record.reason in ("ExperimentMaxTrialsReached", "ExperimentGoalReached"), record
    if record.reason == "ExperimentMaxTrialsReached":
        assert len(trials) == data["spec"]["maxTrialCount"]
    else:  # the goal, reached before the budget ran out, by one of the trials
        objective = data["spec"]["objective"]
        values = [t.objective for t in trials if t.objective is not None]
        if objective["type"] == "minimize":
            assert min(values) <= objective["goal"], values
        else:
            assert max(values) >= objective["goal"], values
    # Every trial reported its objective through the example's collector (early stopping may
    # stop some of them, with what they reported so far). Once the goal is reached, the trials
    # still running are killed, as in Katib.
    for t in trials:
        if t.state is TrialState.KILLED and record.reason == "ExperimentGoalReached":
            continue
        assert t.state in (TrialState.SUCCEEDED, TrialState.EARLY_STOPPED), (t, out)
        assert t.objective is not None, t


@pytest.mark.parametrize("key", sorted(NOT_LOCAL))
def test_the_local_runner_refuses_what_it_cannot_run_at_submit(
    key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Valid for Katib and for ``tuner validate``; the local runner says why it cannot."""
    experiment = load_spec(EXAMPLES[key])
    with pytest.raises(SpecError) as refused:
        LocalRunner(tmp_path).check(experiment)
    assert NOT_LOCAL[key] in str(refused.value)
    path = write(tmp_path, EXAMPLES[key])
    assert main(["validate", str(path)]) == 0
    _, err = capsys.readouterr()
    assert "note: `tuner run` cannot run it:" in err and NOT_LOCAL[key] in err, err
    code = run(tmp_path, path)
    _, err = capsys.readouterr()
    assert code == 2 and NOT_LOCAL[key] in err and "local runner" in err, err
    assert not (tmp_path / "run.db").exists() or not stored_names(tmp_path)


def stored_names(tmp_path: Path) -> list[str]:
    repo = Repository(make_engine(str(tmp_path / "run.db"), must_exist=True))
    try:
        return [r.name for r in repo.list_experiments()]
    finally:
        repo.engine.dispose()


def test_resume_policies_decide_whether_a_finished_run_continues(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """LongRunning (and FromVolume) continue on a raised maxTrialCount; Never refuses."""
    for key, continues in (
        ("resume-experiment/long-running-resume.yaml", True),
        ("hp-tuning/random.yaml", False),
    ):
        data = EXAMPLES[key]
        name = data["metadata"]["name"]
        path = write(tmp_path, data)
        assert run(tmp_path, path) == 0
        data = yaml.safe_load(path.read_text())
        data["spec"]["maxTrialCount"] = 4
        path.write_text(yaml.safe_dump(data))
        code = run(tmp_path, path)
        _, err = capsys.readouterr()
        record, trials = stored(tmp_path, name)
        if continues:
            assert code == 0, err
            assert record.phase is ExperimentPhase.SUCCEEDED and len(trials) == 4
        else:
            assert code == 2 and "spec.resumePolicy" in err and "Never" in err, err
            assert record.experiment.spec.max_trial_count == 3 and len(trials) == 3
