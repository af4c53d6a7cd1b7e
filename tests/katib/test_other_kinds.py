"""Katib's examples whose trials are not ``batch/v1`` Jobs (specs of our own with their
structure: tests/katib/other_kinds.py) validate as they are; the Kubeflow training jobs and the
TrainJob run locally with ``tuner run`` as one process, their primary replica's container;
Argo Workflows and Tekton PipelineRuns are refused locally, saying why."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.katib.other_kinds import CLUSTER_ONLY, other_kinds
from tests.katib.test_examples import run, stored, stored_names, write
from tuner.cli import main
from tuner.errors import SpecError
from tuner.runners.local import LocalRunner
from tuner.spec import load_spec
from tuner.spec.trial_kinds import primary_container
from tuner.templates import render_trial
from tuner.trials import ExperimentPhase, Trial, TrialState

KINDS = other_kinds()
RUNNABLE = sorted(set(KINDS) - set(CLUSTER_ONLY))


def test_every_other_kind_example_is_covered() -> None:
    """Katib's 8: the 5 training-operator jobs, the TrainJob, Argo and Tekton."""
    assert len(KINDS) == 8
    kinds = {data["spec"]["trialTemplate"]["trialSpec"]["kind"] for data in KINDS.values()}
    assert kinds == {
        "PyTorchJob",
        "TFJob",
        "MPIJob",
        "XGBoostJob",
        "MXJob",
        "TrainJob",
        "Workflow",
        "PipelineRun",
    }


@pytest.mark.parametrize("key", sorted(KINDS))
def test_other_kind_validates(key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", str(write(tmp_path, KINDS[key]))])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "valid Experiment kubeflow/" in out
    if key in CLUSTER_ONLY:  # valid; `tuner run` would refuse it, and validate says so
        assert (
            f"note: `tuner run` cannot run it: spec.trialTemplate.trialSpec: {CLUSTER_ONLY[key]}"
            in err
        )
    else:
        assert "cannot run it" not in err, err


@pytest.mark.parametrize("key", RUNNABLE)
def test_other_kind_runs_locally(
    key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each trial is the primary replica's process: the other replicas' command (``false``)
    would fail the trial, so Succeeded with the objective shows only the primary ran."""
    data = KINDS[key]
    code = run(tmp_path, write(tmp_path, data))
    out, err = capsys.readouterr()
    assert code == 0, out + err
    record, trials = stored(tmp_path, data["metadata"]["name"])
    assert record.phase is ExperimentPhase.SUCCEEDED, record
    assert record.reason == "ExperimentMaxTrialsReached", record
    assert len(trials) == 2
    for t in trials:
        assert t.state is TrialState.SUCCEEDED, (t, out + err)
        assert t.objective is not None, t


@pytest.mark.parametrize("key", sorted(CLUSTER_ONLY))
def test_cluster_only_kinds_are_refused_locally(
    key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SpecError) as refused:
        LocalRunner(tmp_path).check(load_spec(KINDS[key]))
    (error,) = refused.value.errors
    assert error.path == "spec.trialTemplate.trialSpec"
    assert CLUSTER_ONLY[key] in error.message and "controller" in error.message
    code = run(tmp_path, write(tmp_path, KINDS[key]))
    _, err = capsys.readouterr()
    assert code == 2 and CLUSTER_ONLY[key] in err, err
    assert not (tmp_path / "run.db").exists() or not stored_names(tmp_path)


def _trial(data: dict[str, Any]) -> Trial:
    experiment = load_spec(data)
    names = [p.name for p in experiment.spec.parameters]
    return Trial(name="t-1", number=1, parameters={n: 0.02 for n in names})


def test_the_primary_replica_is_rendered_with_its_args_and_env() -> None:
    """MPIJob: the Launcher's command + args (substituted); the Workers are not run."""
    data = KINDS["kubeflow-training-operator/mpijob-horovod.yaml"]
    rendered = render_trial(load_spec(data), _trial(data))
    assert rendered.container_name == "mpi-launcher"
    assert rendered.argv[2:] == ["--lr", "0.02", "--num-steps", "0.02"]
    assert rendered.job["kind"] == "MPIJob"  # the whole manifest, for a cluster


def test_a_train_job_renders_its_trainer_with_env() -> None:
    data = copy.deepcopy(KINDS["kubeflow-trainer/trainjob-pytorch.yaml"])
    trainer = data["spec"]["trialTemplate"]["trialSpec"]["spec"]["trainer"]
    trainer["env"] = [{"name": "MOMENTUM", "value": "m=${trialParameters.momentum}"}]
    rendered = render_trial(load_spec(data), _trial(data))
    assert rendered.container_name == "node"
    assert rendered.argv[-2:] == ["--lr=0.02", "--momentum=0.02"]
    assert rendered.env == {"MOMENTUM": "m=0.02"}


def test_a_kind_without_a_primary_container_is_refused_locally(tmp_path: Path) -> None:
    data = copy.deepcopy(KINDS["kubeflow-training-operator/pytorchjob-mnist.yaml"])
    data["spec"]["trialTemplate"]["trialSpec"].update(apiVersion="example.com/v1", kind="Custom")
    data["spec"]["trialTemplate"].update(successCondition="status.ok", failureCondition="status.no")
    with pytest.raises(SpecError) as refused:
        LocalRunner(tmp_path).check(load_spec(data))
    assert "runs batch/v1 Job, Kubeflow training job" in str(refused.value)
    assert "(got example.com/v1/Custom)" in str(refused.value)


def test_primary_pod_labels_choose_the_replica() -> None:
    job: dict[str, Any] = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "spec": {
            "tfReplicaSpecs": {
                role: {"template": {"spec": {"containers": [{"name": "tf", "command": [role]}]}}}
                for role in ("Chief", "PS", "Worker")
            }
        },
    }
    assert primary_container(job, "tf")["command"] == ["Chief"]  # the master role
    ps = {"training.kubeflow.org/replica-type": "ps"}
    assert primary_container(job, "tf", ps)["command"] == ["PS"]
    no_chief = copy.deepcopy(job)
    del no_chief["spec"]["tfReplicaSpecs"]["Chief"]
    assert primary_container(no_chief, "tf")["command"] == ["Worker"]  # else Worker 0


def _no_command(container: dict[str, Any]) -> None:
    container["args"] = container.pop("command")[1:]  # the args alone: an image's entrypoint


def _xgboost_args_only(job: dict[str, Any]) -> None:
    master = job["spec"]["xgbReplicaSpecs"]["Master"]
    _no_command(master["template"]["spec"]["containers"][0])


def _trainer_args_only(job: dict[str, Any]) -> None:
    _no_command(job["spec"]["trainer"])


def _no_master(job: dict[str, Any]) -> None:
    replicas = job["spec"]["pytorchReplicaSpecs"]
    job["spec"]["pytorchReplicaSpecs"] = {"Launcher": replicas["Master"]}


def _renamed_container(job: dict[str, Any]) -> None:
    job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["name"] = "x"


@pytest.mark.parametrize(
    ("key", "edit", "message"),
    [
        (
            "kubeflow-training-operator/xgboostjob-lightgbm.yaml",
            _xgboost_args_only,
            "the primary container 'xgboost' has no command",
        ),
        (
            "kubeflow-trainer/trainjob-pytorch.yaml",
            _trainer_args_only,
            "the TrainJob's spec.trainer has no command",
        ),
        (
            "kubeflow-training-operator/pytorchjob-mnist.yaml",
            _no_master,
            "the PyTorchJob has no Master or Worker replica in spec.pytorchReplicaSpecs "
            "(replicas: ['Launcher'])",
        ),
        (
            "kubeflow-training-operator/tfjob-mnist-with-summaries.yaml",
            _renamed_container,
            "the tfReplicaSpecs.Worker replica has no container named 'tensorflow'",
        ),
    ],
)
def test_what_cannot_run_as_a_process_is_refused_at_submit(
    key: str, edit: Any, message: str, tmp_path: Path
) -> None:
    """An image's entrypoint or a runtime's command is unknown locally: refused before any
    trial starts, naming what is missing."""
    data = copy.deepcopy(KINDS[key])
    edit(data["spec"]["trialTemplate"]["trialSpec"])
    experiment = load_spec(data)  # still valid for Katib
    with pytest.raises(SpecError) as refused:
        LocalRunner(tmp_path).check(experiment)
    assert message in str(refused.value), refused.value
