"""Specs with the features of Katib's Job examples (kubeflow/katib ``examples/v1beta1``).

Written here, not copied: each keeps its example's algorithm and settings, collector, filter,
early stopping, parameters (types, steps, distributions), trial parameters and Job structure,
with the container's command pointed at ``tests/data/katib_trainer.py`` and the budget made
small (a few trials) so that each runs in seconds. Katib's file a spec stands for is its key.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

TRAINER = str(Path(__file__).resolve().parents[1] / "data" / "katib_trainer.py")


def double(name: str, lo: str, hi: str, **extra: str) -> dict[str, Any]:
    return {
        "name": name,
        "parameterType": "double",
        "feasibleSpace": {"min": lo, "max": hi, **extra},
    }


def integer(name: str, lo: str, hi: str, **extra: str) -> dict[str, Any]:
    return {"name": name, "parameterType": "int", "feasibleSpace": {"min": lo, "max": hi, **extra}}


LR_MOMENTUM = [double("lr", "0.01", "0.05"), double("momentum", "0.5", "0.9")]
LR_MOMENTUM_REFS = [
    {"name": "learningRate", "description": "Learning rate", "reference": "lr"},
    {"name": "momentum", "description": "Momentum", "reference": "momentum"},
]
LR_MOMENTUM_ARGS = [
    "--lr=${trialParameters.learningRate}",
    "--momentum=${trialParameters.momentum}",
]


def job(command: list[str], **container: Any) -> dict[str, Any]:
    """A ``batch/v1`` Job as Katib's examples write it: one container, restartPolicy Never."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "training-container",
                            "image": "docker.io/kubeflowkatib/pytorch-mnist-cpu:latest",
                            "command": command,
                            **container,
                        }
                    ],
                    "restartPolicy": "Never",
                }
            }
        },
    }


def experiment(
    name: str,
    algorithm: dict[str, Any],
    *,
    objective: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] = LR_MOMENTUM,
    trial_parameters: list[dict[str, Any]] = LR_MOMENTUM_REFS,
    trial_spec: dict[str, Any] | None = None,
    template: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """An Experiment in the examples' common shape; ``spec`` adds or replaces top-level fields."""
    trial_template: dict[str, Any] = {
        "primaryContainerName": "training-container",
        "trialParameters": trial_parameters,
        "trialSpec": trial_spec
        or job([sys.executable, TRAINER, "--epochs=1", "--batch-size=16", *LR_MOMENTUM_ARGS]),
        **(template or {}),
    }
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": "kubeflow"},
        "spec": {
            "objective": objective
            or {"type": "minimize", "goal": 0.001, "objectiveMetricName": "loss"},
            "algorithm": algorithm,
            "parallelTrialCount": 2,
            "maxTrialCount": 3,
            "maxFailedTrialCount": 3,
            "parameters": parameters,
            "trialTemplate": trial_template,
            **spec,
        },
    }


def algorithm(name: str, **settings: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"algorithmName": name}
    if settings:
        spec["algorithmSettings"] = [{"name": k, "value": v} for k, v in settings.items()]
    return spec


ACCURACY = {
    "type": "maximize",
    "goal": 0.99,
    "objectiveMetricName": "accuracy",
    "additionalMetricNames": ["loss"],
}
MEDIAN_STOP = {
    "algorithmName": "medianstop",
    "algorithmSettings": [
        {"name": "min_trials_required", "value": "1"},
        {"name": "start_step", "value": "2"},
    ],
}


def file_trainer(path: str, *extra: str) -> dict[str, Any]:
    """The Job of the File-collector examples: the trainer logs to ``path``."""
    return job(
        [sys.executable, TRAINER, "--epochs=1", f"--log-path={path}", *LR_MOMENTUM_ARGS, *extra]
    )


def _distributions(name: str, algorithm_name: str) -> dict[str, Any]:
    """hyperopt-distribution (random) and optuna-distribution (tpe): every distribution,
    on double and int parameters, with and without a step."""
    refs = [
        *LR_MOMENTUM_REFS,
        {"name": "epochs", "description": "Epochs", "reference": "epochs"},
        {"name": "batchSize", "description": "Batch size", "reference": "batch_size"},
    ]
    command = [
        sys.executable,
        TRAINER,
        "--epochs=${trialParameters.epochs}",
        "--batch-size=${trialParameters.batchSize}",
        *LR_MOMENTUM_ARGS,
    ]
    if algorithm_name == "random":
        parameters = [
            double("lr", "0.01", "0.05", step="0.01", distribution="normal"),
            double("momentum", "0.001", "1", distribution="uniform"),
            integer("epochs", "1", "3", distribution="logUniform"),
            integer("batch_size", "32", "64", distribution="logNormal"),
        ]
    else:
        parameters = [
            double("lr", "1", "5", step="0.1", distribution="uniform"),
            double("momentum", "0.001", "3", distribution="logUniform"),
            integer("epochs", "1", "3", distribution="uniform"),
            integer("batch_size", "32", "64", distribution="logUniform"),
        ]
    return experiment(
        name,
        algorithm(algorithm_name),
        objective={"type": "minimize", "goal": 0.05, "objectiveMetricName": "loss"},
        parameters=parameters,
        trial_parameters=refs,
        trial_spec=job(command),
    )


def _metadata_substitution() -> dict[str, Any]:
    refs = [
        *LR_MOMENTUM_REFS,
        {"name": "trialName", "reference": "${trialSpec.Name}"},
        {"name": "trialNamespace", "reference": "${trialSpec.Namespace}"},
        {"name": "trialKind", "reference": "${trialSpec.Kind}"},
        {"name": "trialAPIVersion", "reference": "${trialSpec.APIVersion}"},
        {"name": "trialLabelCustom", "reference": "${trialSpec.Labels[custom-key]}"},
        {"name": "trialAnnotationCustom", "reference": "${trialSpec.Annotations[custom-key]}"},
    ]
    env = [
        {"name": "TRIAL_NAME", "value": "${trialParameters.trialName}"},
        {"name": "TRIAL_NAMESPACE", "value": "${trialParameters.trialNamespace}"},
        {"name": "TRIAL_KIND", "value": "${trialParameters.trialKind}"},
        {"name": "TRIAL_API_VERSION", "value": "${trialParameters.trialAPIVersion}"},
        {"name": "TRIAL_LABEL_CUSTOM", "value": "${trialParameters.trialLabelCustom}"},
        {"name": "TRIAL_ANNOTATION_CUSTOM", "value": "${trialParameters.trialAnnotationCustom}"},
    ]
    spec = job([sys.executable, TRAINER, "--epochs=1", *LR_MOMENTUM_ARGS], env=env)
    spec["metadata"] = {
        "labels": {"custom-key": "custom-label"},
        "annotations": {"custom-key": "custom-annotation"},
    }
    return experiment(
        "trial-metadata-substitution",
        algorithm("random"),
        trial_parameters=refs,
        trial_spec=spec,
    )


def _custom_collector() -> dict[str, Any]:
    return experiment(
        "custom-metrics-collector",
        algorithm("random"),
        objective={"type": "maximize", "goal": 0.99, "objectiveMetricName": "accuracy"},
        trial_spec=file_trainer("/katib/mnist.log"),
        metricsCollectorSpec={
            "source": {"fileSystemPath": {"path": "/katib/mnist.log", "kind": "File"}},
            "collector": {
                "kind": "Custom",
                "customCollector": {
                    "name": "custom-metrics-logger-and-collector",
                    "image": "example.com/custom-metrics-collector:latest",
                    "imagePullPolicy": "Always",
                    "args": ["-m", "accuracy", "-path", "/katib/mnist.log"],
                    "env": [
                        {
                            "name": "TrialNamePrefix",
                            "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                        }
                    ],
                },
            },
        },
    )


def _configmap_source() -> dict[str, Any]:
    data = experiment(
        "trial-configmap-source",
        algorithm("cmaes"),
        objective={
            "type": "maximize",
            "goal": 0.99,
            "objectiveMetricName": "Validation-accuracy",
            "additionalMetricNames": ["Train-accuracy"],
        },
        parameters=[
            double("lr", "0.01", "0.03"),
            integer("num-layers", "2", "5"),
            {
                "name": "optimizer",
                "parameterType": "categorical",
                "feasibleSpace": {"list": ["sgd", "adam", "ftrl"]},
            },
        ],
        trial_parameters=[
            {"name": "learningRate", "reference": "lr"},
            {"name": "numberLayers", "reference": "num-layers"},
            {"name": "optimizer", "reference": "optimizer"},
        ],
        template={
            "successCondition": 'status.conditions.#(type=="Complete")#|#(status=="True")#',
            "failureCondition": 'status.conditions.#(type=="Failed")#|#(status=="True")#',
            "configMap": {
                "configMapName": "trial-templates",
                "configMapNamespace": "kubeflow",
                "templatePath": "defaultTrialTemplate.yaml",
            },
        },
    )
    del data["spec"]["trialTemplate"]["trialSpec"]
    return data


def examples() -> dict[str, dict[str, Any]]:
    """Katib's example file -> a spec with its features."""
    return {
        "hp-tuning/random.yaml": experiment(
            "random",
            algorithm("random"),
            trial_spec=job(
                [sys.executable, TRAINER, "--epochs=1", "--batch-size=16", *LR_MOMENTUM_ARGS],
                resources={"limits": {"memory": "1Gi", "cpu": "0.5"}},
            ),
        ),
        "hp-tuning/grid.yaml": experiment(
            "grid",
            algorithm("grid"),
            parameters=[
                double("lr", "0.01", "0.05", step="0.005"),
                double("momentum", "0.5", "0.9", step="0.1"),
            ],
        ),
        "hp-tuning/tpe.yaml": experiment("tpe", algorithm("tpe")),
        "hp-tuning/multivariate-tpe.yaml": experiment(
            "multivariate-tpe", algorithm("multivariate-tpe")
        ),
        "hp-tuning/cma-es.yaml": experiment("cma-es", algorithm("cmaes", restart_strategy="ipop")),
        "hp-tuning/sobol.yaml": experiment("sobol", algorithm("sobol")),
        "hp-tuning/bayesian-optimization.yaml": experiment(
            "bayesian-optimization", algorithm("bayesianoptimization", random_state="10")
        ),
        "hp-tuning/hyperband.yaml": experiment(
            "hyperband",
            algorithm("hyperband", resource_name="num-epochs", eta="2", r_l="2"),
            parameters=[*LR_MOMENTUM, integer("num-epochs", "1", "1")],
            trial_parameters=[
                *LR_MOMENTUM_REFS,
                {"name": "numberEpochs", "reference": "num-epochs"},
            ],
            trial_spec=job(
                [
                    sys.executable,
                    TRAINER,
                    "--epochs=${trialParameters.numberEpochs}",
                    "--batch-size=16",
                    *LR_MOMENTUM_ARGS,
                ]
            ),
            parallelTrialCount=2,
            maxTrialCount=2,
            maxFailedTrialCount=2,
        ),
        "hp-tuning/hyperopt-distribution.yaml": _distributions("hyperopt-distribution", "random"),
        "hp-tuning/optuna-distribution.yaml": _distributions("optuna-distribution", "tpe"),
        "early-stopping/median-stop.yaml": experiment(
            "median-stop", algorithm("random"), earlyStopping=MEDIAN_STOP
        ),
        "early-stopping/median-stop-with-json-format.yaml": experiment(
            "median-stop-with-json-format",
            algorithm("random"),
            objective=ACCURACY,
            parameters=[double("lr", "0.01", "0.5"), integer("num-epochs", "3", "4")],
            trial_parameters=[
                {"name": "learningRate", "reference": "lr"},
                {"name": "numberEpochs", "reference": "num-epochs"},
            ],
            trial_spec=job(
                [
                    sys.executable,
                    TRAINER,
                    "--epochs=${trialParameters.numberEpochs}",
                    "--log-path=/katib/mnist.json",
                    "--lr=${trialParameters.learningRate}",
                    "--logger=hypertune",
                ]
            ),
            template={"retain": True},
            earlyStopping=MEDIAN_STOP,
            metricsCollectorSpec={
                "source": {
                    "fileSystemPath": {
                        "path": "/katib/mnist.json",
                        "kind": "File",
                        "format": "JSON",
                    }
                },
                "collector": {"kind": "File"},
            },
        ),
        "metrics-collector/file-metrics-collector.yaml": experiment(
            "file-metrics-collector",
            algorithm("random"),
            objective=ACCURACY,
            trial_spec=file_trainer("/katib/mnist.log"),
            # No format: Katib's defaulting webhook makes it TEXT.
            metricsCollectorSpec={
                "source": {
                    "filter": {
                        "metricsFormat": [
                            r"{metricName: ([\w|-]+), metricValue: ((-?\d+)(\.\d+)?)}"
                        ]
                    },
                    "fileSystemPath": {"path": "/katib/mnist.log", "kind": "File"},
                },
                "collector": {"kind": "File"},
            },
        ),
        "metrics-collector/file-metrics-collector-with-json-format.yaml": experiment(
            "file-metrics-collector-with-json-format",
            algorithm("random"),
            objective=ACCURACY,
            trial_spec=file_trainer("/katib/mnist.json", "--logger=hypertune"),
            metricsCollectorSpec={
                "source": {
                    "fileSystemPath": {
                        "path": "/katib/mnist.json",
                        "kind": "File",
                        "format": "JSON",
                    }
                },
                "collector": {"kind": "File"},
            },
        ),
        "metrics-collector/metrics-collection-strategy.yaml": experiment(
            "metrics-collection-strategy",
            algorithm("tpe"),
            objective={
                "type": "minimize",
                "goal": 0.001,
                "objectiveMetricName": "loss",
                "additionalMetricNames": ["accuracy"],
                "metricStrategies": [
                    {"name": "accuracy", "value": "max"},
                    {"name": "loss", "value": "min"},
                ],
            },
        ),
        "metrics-collector/custom-metrics-collector.yaml": _custom_collector(),
        "resume-experiment/long-running-resume.yaml": experiment(
            "long-running-resume", algorithm("random"), resumePolicy="LongRunning"
        ),
        "resume-experiment/from-volume-resume.yaml": experiment(
            "from-volume-resume", algorithm("random"), resumePolicy="FromVolume"
        ),
        "trial-template/trial-metadata-substitution.yaml": _metadata_substitution(),
        "trial-template/trial-configmap-source.yaml": _configmap_source(),
        "fpga/xgboost-example.yaml": experiment(
            "xgboost-example",
            algorithm("random"),
            objective={
                "type": "maximize",
                "goal": 0.99,
                "objectiveMetricName": "accuracy",
                "additionalMetricNames": ["time"],
            },
            parameters=[
                double("alpha", "0.00", "0.05"),
                double("eta", "0.1", "0.4"),
                double("subsample", "0.6", "1.0"),
            ],
            trial_parameters=[
                {"name": "alpha", "reference": "alpha"},
                {"name": "eta", "reference": "eta"},
                {"name": "subsample", "reference": "subsample"},
            ],
            trial_spec=job(
                [sys.executable, TRAINER],
                args=[
                    "--name=SVHN",
                    "--test-size=0.35",
                    "--tree-method=fpga_exact",
                    "--max-depth=10",
                    "--alpha=${trialParameters.alpha}",
                    "--eta=${trialParameters.eta}",
                    "--subsample=${trialParameters.subsample}",
                ],
                resources={"limits": {"xilinx/aws-vu9p-f1": 1}},
            ),
            parallelTrialCount=1,
        ),
    }
