"""Specs shaped like Katib's 8 examples whose trials are not ``batch/v1`` Jobs.

Written here, not copied: each keeps its example's trial kind and structure (replica types and
counts, primaryPodLabels, primaryContainerName, conditions where the example writes them),
collector, filter and parameters, with the primary container's command pointed at
``tests/data/katib_trainer.py`` and the budget made small. The other replicas keep a command
of their own (``false``, which would fail): the local runner never runs them.
Katib's file a spec stands for is its key.
"""

from __future__ import annotations

import sys
from typing import Any

from tests.katib.examples import (
    LR_MOMENTUM_ARGS,
    TRAINER,
    algorithm,
    double,
    experiment,
    integer,
)

KUBEFLOW = "kubeflow.org/v1"
NOT_RUN = ["false"]
"""The command of replicas that only a cluster runs: it fails, so a local run that ran it
would show."""


def replica(container: str, command: list[str], replicas: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "replicas": replicas,
        "restartPolicy": "OnFailure",
        "template": {
            "spec": {"containers": [{"name": container, "image": "example", "command": command}]}
        },
        **extra,
    }


def small(data: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """A tiny budget: 2 trials, run 2 at a time."""
    data["spec"].update(parallelTrialCount=2, maxTrialCount=2, maxFailedTrialCount=1, **spec)
    return data


def _pytorchjob() -> dict[str, Any]:
    command = [sys.executable, TRAINER, "--epochs=1", "--batch-size=16", *LR_MOMENTUM_ARGS]
    job = {
        "apiVersion": KUBEFLOW,
        "kind": "PyTorchJob",
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": replica("pytorch", command),
                "Worker": replica("pytorch", [*NOT_RUN, *LR_MOMENTUM_ARGS]),
            }
        },
    }
    data = experiment("pytorchjob-mnist", algorithm("random"), trial_spec=job)
    data["spec"]["trialTemplate"]["primaryContainerName"] = "pytorch"
    return small(data)


def _tfjob() -> dict[str, Any]:
    """Workers only (the first is primary), picked by replica-type; TensorBoard events."""
    command = [
        sys.executable,
        TRAINER,
        "--epochs=1",
        "--learning-rate=${trialParameters.learningRate}",
        "--batch-size=${trialParameters.batchSize}",
        "--tfevent-dir=/mnist-with-summaries-logs/test",
    ]
    job = {
        "apiVersion": KUBEFLOW,
        "kind": "TFJob",
        "spec": {"tfReplicaSpecs": {"Worker": replica("tensorflow", command, replicas=2)}},
    }
    data = experiment(
        "tfjob-mnist-with-summaries",
        algorithm("random"),
        objective={"type": "maximize", "goal": 0.99, "objectiveMetricName": "accuracy"},
        parameters=[double("learning_rate", "0.01", "0.05"), integer("batch_size", "32", "64")],
        trial_parameters=[
            {"name": "learningRate", "reference": "learning_rate"},
            {"name": "batchSize", "reference": "batch_size"},
        ],
        trial_spec=job,
        template={
            "primaryContainerName": "tensorflow",
            "primaryPodLabels": {"training.kubeflow.org/replica-type": "worker"},
        },
        metricsCollectorSpec={
            "source": {
                "fileSystemPath": {"path": "/mnist-with-summaries-logs/test", "kind": "Directory"}
            },
            "collector": {"kind": "TensorFlowEvent"},
        },
    )
    return small(data)


def _mpijob() -> dict[str, Any]:
    """The Launcher is primary (mpi-job-role); its command + args run; Workers have none."""
    launcher = replica(sys.executable, [])
    container = launcher["template"]["spec"]["containers"][0]
    container.update(
        name="mpi-launcher",
        command=[sys.executable],
        args=[
            TRAINER,
            "--lr",
            "${trialParameters.learningRate}",
            "--num-steps",
            "${trialParameters.numberSteps}",
        ],
    )
    worker = replica("mpi-worker", [], replicas=2)
    del worker["template"]["spec"]["containers"][0]["command"]
    for r in (launcher, worker):
        del r["restartPolicy"]
    job = {
        "apiVersion": KUBEFLOW,
        "kind": "MPIJob",
        "spec": {
            "slotsPerWorker": 1,
            "cleanPodPolicy": "Running",
            "mpiReplicaSpecs": {"Launcher": launcher, "Worker": worker},
        },
    }
    data = experiment(
        "mpijob-horovod",
        algorithm("random"),
        objective={"type": "minimize", "goal": 0.01, "objectiveMetricName": "loss"},
        parameters=[double("lr", "0.01", "0.03"), integer("num-steps", "50", "150", step="10")],
        trial_parameters=[
            {"name": "learningRate", "reference": "lr"},
            {"name": "numberSteps", "reference": "num-steps"},
        ],
        trial_spec=job,
        template={
            "primaryContainerName": "mpi-launcher",
            "primaryPodLabels": {"mpi-job-role": "launcher"},
            "successCondition": 'status.conditions.#(type=="Succeeded")#|#(status=="True")#',
            "failureCondition": 'status.conditions.#(type=="Failed")#|#(status=="True")#',
        },
    )
    return small(data)


def _xgboostjob() -> dict[str, Any]:
    """LightGBM's metric lines through the example's filter; Master primary by default."""
    args = [
        "--job_type=Train",
        "--metric=binary_logloss,auc",
        "--learning_rate=${trialParameters.learningRate}",
        "--num_leaves=${trialParameters.numberLeaves}",
        "--num_trees=100",
    ]
    master = replica("xgboost", [sys.executable, TRAINER], restartPolicy="Never")
    master["template"]["spec"]["containers"][0]["args"] = args
    worker = replica("xgboost", NOT_RUN, replicas=2, restartPolicy="ExitCode")
    worker["template"]["spec"]["containers"][0]["args"] = args
    job = {
        "apiVersion": KUBEFLOW,
        "kind": "XGBoostJob",
        "spec": {"xgbReplicaSpecs": {"Master": master, "Worker": worker}},
    }
    data = experiment(
        "xgboostjob-lightgbm",
        algorithm("random"),
        objective={
            "type": "maximize",
            "goal": 0.99,
            "objectiveMetricName": "valid_1 auc",
            "additionalMetricNames": ["valid_1 binary_logloss", "training auc"],
        },
        parameters=[double("lr", "0.01", "0.1"), integer("num-leaves", "50", "60", step="1")],
        trial_parameters=[
            {"name": "learningRate", "reference": "lr"},
            {"name": "numberLeaves", "reference": "num-leaves"},
        ],
        trial_spec=job,
        template={"primaryContainerName": "xgboost"},
        metricsCollectorSpec={
            "source": {"filter": {"metricsFormat": [r"(\w+\s\w+)\s:\s((-?\d+)(\.\d+)?)"]}}
        },
    )
    return small(data)


def _mxjob() -> dict[str, Any]:
    """Scheduler, Server and Worker; the Worker (replica-type label) trains."""
    worker = replica(
        "mxnet",
        [sys.executable],
        restartPolicy="Never",
    )
    worker["template"]["spec"]["containers"][0]["args"] = [
        TRAINER,
        "--benchmark",
        "1",
        "--lr=${trialParameters.learningRate}",
        "--num-examples=1000",
        "--num-epochs=4",
    ]
    job = {
        "apiVersion": KUBEFLOW,
        "kind": "MXJob",
        "spec": {
            "jobMode": "MXTrain",
            "runPolicy": {"cleanPodPolicy": "None"},
            "mxReplicaSpecs": {
                "Scheduler": replica("mxnet", NOT_RUN, restartPolicy="Never"),
                "Server": replica("mxnet", NOT_RUN, restartPolicy="Never"),
                "Worker": worker,
            },
        },
    }
    data = experiment(
        "mxjob-byteps",
        algorithm("random"),
        objective={"type": "minimize", "goal": 0.001, "objectiveMetricName": "loss"},
        parameters=[double("lr", "0.01", "0.03")],
        trial_parameters=[{"name": "learningRate", "reference": "lr"}],
        trial_spec=job,
        template={
            "primaryContainerName": "mxnet",
            "primaryPodLabels": {"training.kubeflow.org/replica-type": "worker"},
        },
    )
    return small(data)


def _trainjob() -> dict[str, Any]:
    """Kubeflow Trainer: the command lives in spec.trainer; 2 nodes, one runs locally."""
    job = {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "spec": {
            "runtimeRef": {"name": "torch-distributed"},
            "trainer": {
                "numNodes": 2,
                "image": "example",
                "command": [sys.executable, TRAINER, "--epochs=1", *LR_MOMENTUM_ARGS],
            },
        },
    }
    data = experiment("torch-distributed-example", algorithm("random"), trial_spec=job)
    data["spec"]["trialTemplate"]["primaryContainerName"] = "node"
    return small(data)


def _argo_workflow() -> dict[str, Any]:
    """Two steps passing an output on: only Argo's controller can run it."""
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "spec": {
            "serviceAccountName": "argo",
            "entrypoint": "hp-workflow",
            "templates": [
                {
                    "name": "hp-workflow",
                    "steps": [
                        [{"name": "data-preprocessing", "template": "gen-num-examples"}],
                        [
                            {
                                "name": "model-training",
                                "template": "model-training",
                                "arguments": {
                                    "parameters": [
                                        {
                                            "name": "num-examples",
                                            "value": "{{steps.data-preprocessing.outputs.result}}",
                                        }
                                    ]
                                },
                            }
                        ],
                    ],
                },
                {
                    "name": "gen-num-examples",
                    "script": {
                        "image": "python:3.11-alpine",
                        "command": ["python"],
                        "source": "print(600)\n",
                    },
                },
                {
                    "name": "model-training",
                    "metadata": {"labels": {"katib.kubeflow.org/model-training": "true"}},
                    "inputs": {"parameters": [{"name": "num-examples"}]},
                    "container": {
                        "name": "model-training",
                        "image": "example",
                        "command": [
                            "python3",
                            TRAINER,
                            "--lr=${trialParameters.learningRate}",
                            "--num-examples={{inputs.parameters.num-examples}}",
                        ],
                    },
                },
            ],
        },
    }
    return experiment(
        "katib-argo-workflow",
        algorithm("random"),
        objective={"type": "minimize", "goal": 0.001, "objectiveMetricName": "loss"},
        parameters=[double("lr", "0.01", "0.03")],
        trial_parameters=[{"name": "learningRate", "reference": "lr"}],
        trial_spec=workflow,
        template={
            "retain": True,
            "primaryPodLabels": {"katib.kubeflow.org/model-training": "true"},
            "primaryContainerName": "main",
            "successCondition": 'status.[@this].#(phase=="Succeeded")#',
            "failureCondition": 'status.[@this].#(phase=="Failed")#',
        },
    )


def _tekton_pipeline_run() -> dict[str, Any]:
    """Two tasks passing a result on: only Tekton's controller can run it."""
    run = {
        "apiVersion": "tekton.dev/v1beta1",
        "kind": "PipelineRun",
        "spec": {
            "params": [
                {"name": "lr", "value": "${trialParameters.learningRate}"},
                {"name": "num-examples-init", "value": "60000"},
            ],
            "pipelineSpec": {
                "params": [{"name": "lr"}, {"name": "num-examples-init"}],
                "tasks": [
                    {
                        "name": "data-preprocessing",
                        "params": [
                            {"name": "num-examples-pre", "value": "$(params.num-examples-init)"}
                        ],
                        "taskSpec": {
                            "params": [{"name": "num-examples-pre"}],
                            "results": [{"name": "num-examples-post"}],
                            "steps": [
                                {
                                    "name": "num-examples-optimize",
                                    "image": "python:3.11-alpine",
                                    "command": ["sh", "-c"],
                                    "args": ["echo 600 | tee $(results.num-examples-post.path)"],
                                }
                            ],
                        },
                    },
                    {
                        "name": "model-training",
                        "params": [
                            {"name": "lr", "value": "$(params.lr)"},
                            {
                                "name": "num-examples",
                                "value": "$(tasks.data-preprocessing.results.num-examples-post)",
                            },
                        ],
                        "taskSpec": {
                            "params": [{"name": "lr"}, {"name": "num-examples"}],
                            "steps": [
                                {
                                    "name": "model-training",
                                    "image": "example",
                                    "command": [
                                        "python3",
                                        TRAINER,
                                        "--num-examples=$(params.num-examples)",
                                        "--lr=$(params.lr)",
                                    ],
                                }
                            ],
                        },
                    },
                ],
            },
        },
    }
    return experiment(
        "tekton-pipeline-run",
        algorithm("random"),
        objective={"type": "minimize", "goal": 0.001, "objectiveMetricName": "loss"},
        parameters=[double("lr", "0.01", "0.03")],
        trial_parameters=[{"name": "learningRate", "reference": "lr"}],
        trial_spec=run,
        template={
            "retain": True,
            "primaryPodLabels": {"tekton.dev/pipelineTask": "model-training"},
            "primaryContainerName": "step-model-training",
            "successCondition": 'status.conditions.#(type=="Succeeded")#|#(status=="True")#',
            "failureCondition": 'status.conditions.#(type=="Succeeded")#|#(status=="False")#',
        },
    )


def other_kinds() -> dict[str, dict[str, Any]]:
    """Katib's example file -> a spec with its trial kind and structure."""
    return {
        "kubeflow-training-operator/pytorchjob-mnist.yaml": _pytorchjob(),
        "kubeflow-training-operator/tfjob-mnist-with-summaries.yaml": _tfjob(),
        "kubeflow-training-operator/mpijob-horovod.yaml": _mpijob(),
        "kubeflow-training-operator/xgboostjob-lightgbm.yaml": _xgboostjob(),
        "kubeflow-training-operator/mxjob-byteps.yaml": _mxjob(),
        "kubeflow-trainer/trainjob-pytorch.yaml": _trainjob(),
        "argo/argo-workflow.yaml": _argo_workflow(),
        "tekton/pipeline-run.yaml": _tekton_pipeline_run(),
    }


CLUSTER_ONLY = {
    "argo/argo-workflow.yaml": "Workflow has no local meaning: it runs on Kubernetes only",
    "tekton/pipeline-run.yaml": "PipelineRun has no local meaning: it runs on Kubernetes only",
}
