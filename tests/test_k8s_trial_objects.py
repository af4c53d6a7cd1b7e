"""Trial objects of any kind as plain data (tuner.k8s.trial_objects): no cluster needed."""

from __future__ import annotations

import copy
from typing import Any

from tests.helpers import experiment_dict
from tuner.k8s.jobs import INSTALLATION_LABEL
from tuner.k8s.trial_objects import pod_keys, primary_pods, trial_manifest, trial_pod_keys
from tuner.spec import Experiment, load_spec
from tuner.templates import EXPERIMENT_LABEL, TRIAL_LABEL, render_trial
from tuner.trials import Trial

OWNER = {"apiVersion": "tuner.dev/v1beta1", "kind": "Experiment", "name": "e", "uid": "u"}


def experiment(trial_spec: dict[str, Any], **tt: Any) -> Experiment:
    data = experiment_dict("exp")
    data["spec"]["parameters"] = data["spec"]["parameters"][:1]
    data["spec"]["trialTemplate"] = {
        "trialParameters": [{"name": "x", "reference": "x"}],
        "trialSpec": trial_spec,
        **tt,
    }
    return load_spec(data)


def container(name: str) -> dict[str, Any]:
    return {"name": name, "image": "i", "command": ["train", "--x=${trialParameters.x}"]}


def manifest(exp: Experiment) -> dict[str, Any]:
    trial = Trial(name="exp-0001", number=1, parameters={"x": 0.5})
    return trial_manifest(exp, trial, render_trial(exp, trial), {"TUNER_TRIAL": "exp-0001"}, OWNER)


def env(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env") or []}


def test_a_pytorchjob_is_named_labelled_owned_and_its_master_gets_the_environment() -> None:
    replicas = {
        "Master": {"replicas": 1, "template": {"spec": {"containers": [container("pytorch")]}}},
        "Worker": {"replicas": 2, "template": {"spec": {"containers": [container("pytorch")]}}},
    }
    spec = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "spec": {}}
    spec["spec"]["pytorchReplicaSpecs"] = replicas
    obj = manifest(experiment(spec, primaryContainerName="pytorch"))
    meta = obj["metadata"]
    assert meta["name"] == "exp-0001" and meta["ownerReferences"] == [OWNER]
    assert {EXPERIMENT_LABEL, TRIAL_LABEL, INSTALLATION_LABEL} <= set(meta["labels"])
    master, worker = (obj["spec"]["pytorchReplicaSpecs"][r]["template"] for r in replicas)
    assert env(master["spec"]["containers"][0])["TUNER_TRIAL"] == "exp-0001"
    assert "TUNER_TRIAL" not in env(worker["spec"]["containers"][0])
    assert master["spec"]["containers"][0]["command"] == ["train", "--x=0.5"]
    for template in (master, worker):  # every replica's pods are found by the trial label
        assert template["metadata"]["labels"][TRIAL_LABEL] == "exp-0001"


def test_a_trainjob_gets_the_environment_in_its_trainer() -> None:
    spec = {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "spec": {"runtimeRef": {"name": "torch-distributed"}, "trainer": container("node")},
    }
    obj = manifest(experiment(spec, primaryContainerName="node"))
    assert env(obj["spec"]["trainer"])["TUNER_TRIAL"] == "exp-0001"
    assert obj["spec"]["runtimeRef"] == {"name": "torch-distributed"}


def test_a_kind_without_a_primary_container_is_created_as_written() -> None:
    spec = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "spec": {"entrypoint": "a", "arguments": {"x": "${trialParameters.x}"}},
    }
    exp = experiment(
        copy.deepcopy(spec),
        primaryContainerName="main",
        successCondition='status.phase=="Succeeded"',
        failureCondition='status.phase=="Failed"',
    )
    obj = manifest(exp)
    assert obj["spec"] == {"entrypoint": "a", "arguments": {"x": "0.5"}}
    assert obj["metadata"]["name"] == "exp-0001"


def test_pods_are_found_by_owner_label_or_job_name_and_filtered_by_primary_labels() -> None:
    def pod(name: str, created: str, **labels: str) -> dict[str, Any]:
        meta = {"name": name, "uid": name, "creationTimestamp": created, "labels": labels}
        meta["ownerReferences"] = [{"uid": "job-uid"}]
        return {"metadata": meta}

    master = pod("m", "2", **{"training.kubeflow.org/job-role": "master"})
    worker = pod("w", "1", **{"training.kubeflow.org/job-name": "exp-0001"})
    keys = set(trial_pod_keys("job-uid", "exp-0001", "exp-0001", job=False))
    assert keys & set(pod_keys(master)) and keys & set(pod_keys(worker))
    assert set(trial_pod_keys("job-uid", "exp-0001", "exp-0001", job=True)) == {"owner:job-uid"}
    assert primary_pods([master, worker], None) == [worker, master]  # oldest first
    assert primary_pods([master, worker], {"training.kubeflow.org/job-role": "master"}) == [master]
