"""Katib's validator tests (``pkg/webhook/v1beta1/experiment/validator/validator_test.go``),
case by case, run as specs through ``tuner.spec.load_spec``.

Each case starts from a spec of our own shaped like the Go test's fake instance, changes what
the Go case changes, and expects Katib's outcome: valid, or invalid at Katib's field paths
(each path Katib names must be the start of one of ours; ours may be more precise). Only
errors under the part of the spec the Go test function validates count (its ``scope``).

Where tuner deliberately differs, the case says so in ``differs`` and expects tuner's outcome;
each such reason is a row of the README's "Differences from Katib" table.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tuner import lifecycle
from tuner.errors import FieldError, SpecError
from tuner.spec import load_spec
from tuner.trials import ExperimentPhase

Spec = dict[str, Any]


def fake() -> Spec:
    """The Go test's ``newFakeInstance``: an int and a categorical parameter, a one-container
    Job using both, the StdOut collector, early stopping, maxTrialCount 6."""
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "fake", "namespace": "fakens"},
        "spec": {
            "maxTrialCount": 6,
            "metricsCollectorSpec": {"collector": {"kind": "StdOut"}},
            "objective": {"type": "maximize", "goal": 0.11, "objectiveMetricName": "testme"},
            # The Go test's algorithm is a mock ("test"); tuner knows its algorithms.
            "algorithm": {"algorithmName": "random"},
            "earlyStopping": {"algorithmName": "medianstop"},
            "parameters": [
                {
                    "name": "lr",
                    "parameterType": "int",
                    "feasibleSpace": {"min": "1", "max": "5", "distribution": "uniform"},
                },
                {
                    "name": "momentum",
                    "parameterType": "categorical",
                    "feasibleSpace": {"list": ["0.95", "0.85", "0.75"]},
                },
            ],
            "trialTemplate": {
                "primaryContainerName": "training-container",
                "successCondition": 'status.conditions.#(type=="Complete")#|#(status=="True")#',
                "failureCondition": 'status.conditions.#(type=="Failed")#|#(status=="True")#',
                "trialParameters": [
                    {"name": "learningRate", "description": "Learning rate", "reference": "lr"},
                    {"name": "momentum", "description": "Momentum", "reference": "momentum"},
                ],
                "trialSpec": fake_job(),
            },
        },
    }


def fake_job() -> Spec:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "training-container",
                            "image": "example.com/pytorch-mnist-cpu",
                            "command": [
                                "python3",
                                "--epochs=1",
                                "--batch-size=16",
                                "/opt/pytorch-mnist/mnist.py",
                                "--lr=${trialParameters.learningRate}",
                                "--momentum=${trialParameters.momentum}",
                            ],
                        }
                    ]
                }
            }
        },
    }


@dataclass
class Case:
    description: str  # the Go case's testDescription
    change: Callable[[Spec], None]
    katib: tuple[str, ...] = ()  # the paths of Katib's expected errors; () = valid
    scope: str = ""  # the part of the spec the Go test function validates
    differs: str | None = None  # why tuner's outcome is not Katib's: a README table row
    tuner: tuple[str, ...] | None = None  # tuner's paths, when it differs

    @property
    def expected(self) -> tuple[str, ...]:
        return self.katib if self.tuner is None else self.tuner


def spec(s: Spec) -> Spec:
    return s["spec"]  # type: ignore[no-any-return]


def template(s: Spec) -> Spec:
    return spec(s)["trialTemplate"]  # type: ignore[no-any-return]


def container(s: Spec) -> Spec:
    return template(s)["trialSpec"]["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


def collector(value: Spec) -> Callable[[Spec], None]:
    return lambda s: spec(s).update(metricsCollectorSpec=value)


def sets(path: str, value: Any) -> Callable[[Spec], None]:
    """A change that sets the dotted ``path`` (list indexes as numbers) to ``value``."""

    def change(s: Spec) -> None:
        *parents, last = path.split(".")
        node: Any = s
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is DELETE:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return change


DELETE = object()
EXPERIMENT = ""
PARAMS = "spec.parameters"
TEMPLATE = "spec.trialTemplate"
JOB = "spec.trialTemplate.trialSpec"
COLLECTOR = "spec.metricsCollectorSpec"
DEFAULTED = "Defaulting before validation"
"""Katib's Go test calls the validator without the defaulting webhook, which fills this in
when the spec goes through Katib's API server, as tuner does."""


def _template_source_configmap(s: Spec) -> None:
    template(s)["configMap"] = {
        "configMapName": "config-map-name",
        "configMapNamespace": "config-map-namespace",
        "templatePath": "config-map-template-path",
    }


def _configmap_only(**cm: str) -> Callable[[Spec], None]:
    def change(s: Spec) -> None:
        del template(s)["trialSpec"]
        template(s)["configMap"] = cm

    return change


def _command(index: int, arg: str | None) -> Callable[[Spec], None]:
    def change(s: Spec) -> None:
        command = container(s)["command"]
        if arg is None:
            command.pop(index)
        elif index == len(command):
            command.append(arg)
        else:
            command[index] = arg

    return change


def _unparsable_template(s: Spec) -> None:
    # The Go case's template uses learningRate and numberLayers but never momentum.
    container(s)["command"] = [
        "--invalidParameter={'num_layers': 2, 'input_sizes': [32, 32, 3]}",
        "--lr=${trialParameters.learningRate}",
        "--num-layers=${trialParameters.numberLayers}",
    ]


def _job(text: Spec) -> Callable[[Spec], None]:
    return lambda s: template(s).update(trialSpec=text)


CASES = [
    # -- TestValidateExperiment --------------------------------------------------------------
    Case("Name is invalid", sets("metadata.name", "1234-test"), ("metadata.name",)),
    Case(
        "Name is invalid (too long)",
        sets("metadata.name", "test-manymanymanyextracharactersthatgobeyondlimit"),
        ("metadata.name",),
    ),
    Case("Objective is nil", sets("spec.objective", DELETE), ("spec.objective",)),
    Case("Objective type is unknown", sets("spec.objective.type", ""), ("spec.objective.type",)),
    Case(
        "Objective metric name is empty",
        sets("spec.objective.objectiveMetricName", ""),
        ("spec.objective.objectiveMetricName",),
    ),
    Case(
        "additionalMetricNames should not contain objective metric name",
        lambda s: spec(s)["objective"].update(
            objectiveMetricName="objective", additionalMetricNames=["objective", "objective-1"]
        ),
        ("spec.objective.additionalMetricNames",),
        scope="spec.objective",
    ),
    Case("Algorithm is nil", sets("spec.algorithm", DELETE), ("spec.algorithm",)),
    Case(
        "Algorithm name is empty",
        sets("spec.algorithm.algorithmName", ""),
        ("spec.algorithm.algorithmName",),
    ),
    Case("EarlyStopping is nil", sets("spec.earlyStopping", DELETE)),
    Case(
        "EarlyStopping AlgorithmName is empty",
        sets("spec.earlyStopping.algorithmName", ""),
        ("spec.earlyStopping.algorithmName",),
    ),
    Case("Run validator for correct experiment", lambda s: None),
    Case(
        "Max failed trial count is negative",
        sets("spec.maxFailedTrialCount", -1),
        ("spec.maxFailedTrialCount",),
    ),
    Case("Max trial count is negative", sets("spec.maxTrialCount", -1), ("spec.maxTrialCount",)),
    Case(
        "Parallel trial count is negative",
        sets("spec.parallelTrialCount", -1),
        ("spec.parallelTrialCount",),
    ),
    Case(
        "Invalid resume policy", sets("spec.resumePolicy", "invalid-policy"), ("spec.resumePolicy",)
    ),
    Case("Parameters and NAS config is nil", sets("spec.parameters", []), ("spec",)),
    Case(
        "Parameters and NAS config is not nil",
        sets("spec.nasConfig", {"operations": [{"operationType": "op1"}]}),
        ("spec",),
    ),
    Case(
        "Trial template is nil",
        sets("spec.trialTemplate", DELETE),
        ("spec.trialTemplate",),
        differs="No trialTemplate: ask/tell",
        tuner=(),
    ),
    Case(
        "Invalid feasible space in parameters",
        sets("spec.parameters.1.feasibleSpace.max", "5"),
        ("spec.parameters[1].feasibleSpace",),
    ),
    Case(
        "maxFailedTrialCount greater than maxTrialCount",
        lambda s: spec(s).update(maxTrialCount=5, maxFailedTrialCount=6),
        ("spec.maxFailedTrialCount",),
    ),
    Case(
        "maxFailedTrialCount equal to maxTrialCount",
        lambda s: spec(s).update(maxTrialCount=5, maxFailedTrialCount=5),
    ),
    Case(
        "parallelTrialCount greater than maxTrialCount",
        lambda s: spec(s).update(maxTrialCount=5, parallelTrialCount=6),
        ("spec.parallelTrialCount",),
    ),
    Case(
        "parallelTrialCount equal to maxTrialCount",
        lambda s: spec(s).update(maxTrialCount=5, parallelTrialCount=5),
    ),
    # -- TestValidateParameters --------------------------------------------------------------
    Case(
        "Invalid parameter type",
        sets("spec.parameters.0.parameterType", "invalid-type"),
        ("spec.parameters[0].parameterType",),
        scope=PARAMS,
    ),
    Case(
        "Feasible space is nil",
        sets("spec.parameters.0.feasibleSpace", {}),
        ("spec.parameters[0].feasibleSpace",),
        scope=PARAMS,
    ),
    Case(
        "Not empty list for int parameter type",
        sets("spec.parameters.0.feasibleSpace.list", ["invalid-list"]),
        ("spec.parameters[0].feasibleSpace.list",),
        scope=PARAMS,
    ),
    Case(
        "Empty max and min for int parameter type",
        sets("spec.parameters.0.feasibleSpace", {"step": "1"}),
        ("spec.parameters[0].feasibleSpace.max",),
        scope=PARAMS,
    ),
    Case(
        "Not empty max for categorical parameter type",
        sets("spec.parameters.1.feasibleSpace.max", "1"),
        ("spec.parameters[1].feasibleSpace",),
        scope=PARAMS,
    ),
    Case(
        "Invalid distribution type",
        sets("spec.parameters.0.feasibleSpace.distribution", "invalid-distribution"),
        ("spec.parameters[0].feasibleSpace.distribution",),
        scope=PARAMS,
    ),
    Case("Valid parameters case", lambda s: None, scope=PARAMS),
    # -- TestValidateTrialTemplate -----------------------------------------------------------
    Case(
        "Trial parameters is nil",
        sets("spec.trialTemplate.trialParameters", DELETE),
        ("spec.trialTemplate.trialParameters",),
        scope=TEMPLATE,
    ),
    Case(
        "Trial spec nil",
        sets("spec.trialTemplate.trialSpec", DELETE),
        ("spec.trialTemplate.TrialSource",),  # Katib names its Go field here
        scope=TEMPLATE,
        tuner=("spec.trialTemplate.trialSpec",),
    ),
    Case(
        "Trial spec and ConfigMap is not nil",
        _template_source_configmap,
        ("spec.trialTemplate",),
        scope=TEMPLATE,
    ),
    Case(
        "Missed template path in ConfigMap",
        _configmap_only(configMapName="config-map-name", configMapNamespace="config-map-namespace"),
        ("spec.trialTemplate.configMap",),
        scope=TEMPLATE,
    ),
    Case(
        "Wrong template path in ConfigMap",
        _configmap_only(
            configMapName="config-map-name",
            configMapNamespace="config-map-namespace",
            templatePath="wrong-path",
        ),
        ("spec.trialTemplate",),
        scope=TEMPLATE,
        differs="ConfigMap templates",
        tuner=(),
    ),
    Case(
        "Empty reference or name in Trial parameters",
        sets("spec.trialTemplate.trialParameters.0.reference", ""),
        ("spec.trialTemplate.trialParameters[0]", "spec.trialTemplate"),
        scope=TEMPLATE,
    ),
    Case(
        "Wrong name in Trial parameters",
        sets("spec.trialTemplate.trialParameters.0.name", "{invalid-name}"),
        ("spec.trialTemplate.trialParameters[0]", "spec.trialTemplate"),
        scope=TEMPLATE,
    ),
    Case(
        "Duplicate name in Trial parameters",
        sets("spec.trialTemplate.trialParameters.1.name", "learningRate"),
        ("spec.trialTemplate.trialParameters[1].name", "spec.trialTemplate"),
        scope=TEMPLATE,
    ),
    Case(
        "Duplicate reference in Trial parameters",
        sets("spec.trialTemplate.trialParameters.1.reference", "lr"),
        ("spec.trialTemplate.trialParameters[1].reference", "spec.trialTemplate"),
        scope=TEMPLATE,
    ),
    Case(
        "Trial template contains Trial parameters which weren't referenced from spec.parameters",
        sets("spec.trialTemplate.trialParameters.1.reference", "wrong-ref"),
        ("spec.trialTemplate.trialParameters[1].reference",),
        scope=TEMPLATE,
    ),
    Case(
        "Trial template contains Trial parameters when spec.parameters is empty",
        lambda s: (
            spec(s).pop("parameters"),
            template(s)["trialParameters"][1].update(reference="wrong-ref"),
        ),
        scope=TEMPLATE,
    ),
    Case(
        "Trial template contains Trial metadata reference as parameter",
        sets("spec.trialTemplate.trialParameters.1.reference", "${trialSpec.Name}"),
        scope=TEMPLATE,
    ),
    Case(
        "Trial template contains Trial annotation reference as parameter",
        sets(
            "spec.trialTemplate.trialParameters.1.reference",
            "${trialSpec.Annotations[test-annotation]}",
        ),
        scope=TEMPLATE,
    ),
    Case(
        "Trial template contains Trial's label reference as parameter",
        sets("spec.trialTemplate.trialParameters.1.reference", "${trialSpec.Labels[test-label]}"),
        scope=TEMPLATE,
    ),
    Case(
        "Trial template doesn't contain parameter from Trial parameters",
        _command(2, "--lr=${trialParameters.invalidParameter}"),
        ("spec.trialTemplate",),
        scope=TEMPLATE,
    ),
    Case(
        "Trial template contains extra parameter",
        _command(6, "--extra-parameter=${trialParameters.extraParameter}"),
        ("spec.trialTemplate",),
        scope=TEMPLATE,
    ),
    Case(
        "Trial template is unable to convert to unstructured after substitution",
        _unparsable_template,
        ("spec.trialTemplate.trialParameters[1].name",),
        scope=TEMPLATE,
    ),
    Case(
        "Trial template contains metadata.name or metadata.namespace",
        sets(
            "spec.trialTemplate.trialSpec.metadata",
            {"name": "trial-name", "namespace": "trial-namespace"},
        ),
        ("spec.trialTemplate",),
        scope=TEMPLATE,
    ),
    Case(
        "Trial template doesn't contain APIVersion or Kind",
        sets("spec.trialTemplate.trialSpec.apiVersion", DELETE),
        ("spec.trialTemplate",),
        scope=TEMPLATE,
    ),
    Case(
        "Trial template has custom Kind",
        sets("spec.trialTemplate.trialSpec.kind", "CustomKind"),
        scope=TEMPLATE,
    ),
    Case(
        "Trial template doesn't have PrimaryContainerName",
        sets("spec.trialTemplate.primaryContainerName", ""),
        ("spec.trialTemplate.primaryContainerName",),
        scope=TEMPLATE,
    ),
    Case(
        "Trial template doesn't have SuccessCondition",
        sets("spec.trialTemplate.successCondition", ""),
        ("spec.trialTemplate",),
        scope=TEMPLATE,
        differs=DEFAULTED,
        tuner=(),
    ),
    # -- TestValidateTrialJob ----------------------------------------------------------------
    Case(
        "Trial template has invalid Batch Job parameter",
        sets("spec.trialTemplate.trialSpec.spec.template.spec.containers", {"name": "x"}),
        ("spec.trialTemplate.trialSpec",),
        scope=JOB,
    ),
    Case(
        "Trial template has invalid Batch Job structure",
        sets("spec.trialTemplate.trialSpec.spec.template.invalidSpec", "not-job-format"),
        ("spec.trialTemplate.trialSpec",),
        scope=JOB,
    ),
    Case(
        "Valid case with nvidia.com/gpu resource in Trial template",
        lambda s: container(s).update(
            resources={"limits": {"nvidia.com/gpu": 1}, "requests": {"nvidia.com/gpu": 1}}
        ),
        scope=JOB,
    ),
    Case(
        "Only validate Kubernetes Job",
        lambda s: template(s)["trialSpec"].update(apiVersion="test/v1", invalidField=1),
        scope=JOB,
    ),
    # -- TestValidateMetricsCollector --------------------------------------------------------
    Case(
        "Invalid metrics collector Kind",
        collector({"collector": {"kind": "invalid-kind"}}),
        ("spec.metricsCollectorSpec.collector.kind",),
        scope=COLLECTOR,
    ),
    Case(
        "Invalid path for File metrics collector",
        collector(
            {
                "collector": {"kind": "File"},
                "source": {"fileSystemPath": {"path": "not/absolute/path", "format": "TEXT"}},
            }
        ),
        ("spec.metricsCollectorSpec.source.fileSystemPath.path",),
        scope=COLLECTOR,
    ),
    Case(
        "Invalid path for TF event metrics collector",
        collector(
            {
                "collector": {"kind": "TensorFlowEvent"},
                "source": {"fileSystemPath": {"path": "not/absolute/path"}},
            }
        ),
        ("spec.metricsCollectorSpec.source",),
        scope=COLLECTOR,
    ),
    Case(
        "Invalid file format for TF event metrics collector",
        collector(
            {
                "collector": {"kind": "TensorFlowEvent"},
                "source": {
                    "fileSystemPath": {
                        "path": "/absolute/path",
                        "format": "JSON",
                        "kind": "Directory",
                    }
                },
            }
        ),
        ("spec.metricsCollectorSpec.source.fileSystemPath.format",),
        scope=COLLECTOR,
    ),
    Case(
        "Invalid port and path for Prometheus metrics collector",
        collector(
            {"collector": {"kind": "PrometheusMetric"}, "source": {"httpGet": {"port": "Port"}}}
        ),
        (
            "spec.metricsCollectorSpec.source.httpGet.port",
            "spec.metricsCollectorSpec.source.httpGet.path",
        ),
        scope=COLLECTOR,
        differs=DEFAULTED,  # the empty path becomes /metrics
        tuner=("spec.metricsCollectorSpec.source.httpGet.port",),
    ),
    Case(
        "Invalid path for Prometheus metrics collector",
        collector(
            {
                "collector": {"kind": "PrometheusMetric"},
                "source": {"httpGet": {"port": 8888, "path": "not/valid/path"}},
            }
        ),
        ("spec.metricsCollectorSpec.source.httpGet.path",),
        scope=COLLECTOR,
    ),
    Case(
        "Empty container for Custom metrics collector",
        collector({"collector": {"kind": "Custom"}}),
        ("spec.metricsCollectorSpec.collector.customCollector",),
        scope=COLLECTOR,
    ),
    Case(
        "Invalid path for Custom metrics collector",
        collector(
            {
                "collector": {"kind": "Custom", "customCollector": {"name": "my-collector"}},
                "source": {"fileSystemPath": {"path": "not/absolute/path"}},
            }
        ),
        ("spec.metricsCollectorSpec.source.fileSystemPath",),
        scope=COLLECTOR,
    ),
    Case(
        "Invalid metrics format regex for File metrics collector",
        collector(
            {
                "collector": {"kind": "File"},
                "source": {
                    "filter": {"metricsFormat": ["["]},
                    "fileSystemPath": {"path": "/absolute/path", "kind": "File", "format": "TEXT"},
                },
            }
        ),
        ("spec.metricsCollectorSpec.source.filter.metricsFormat",),
        scope=COLLECTOR,
    ),
    Case(
        "One subexpression in metrics format",
        collector(
            {
                "collector": {"kind": "File"},
                "source": {
                    "filter": {"metricsFormat": [r"{metricName: ([\w|-]+)}"]},
                    "fileSystemPath": {"path": "/absolute/path", "kind": "File", "format": "TEXT"},
                },
            }
        ),
        ("spec.metricsCollectorSpec.source.filter.metricsFormat",),
        scope=COLLECTOR,
    ),
    Case(
        "Invalid file format for File metrics collector",
        collector(
            {
                "collector": {"kind": "File"},
                "source": {
                    "fileSystemPath": {
                        "path": "/absolute/path",
                        "kind": "File",
                        "format": "invalid",
                    }
                },
            }
        ),
        ("spec.metricsCollectorSpec.source.fileSystemPath.format",),
        scope=COLLECTOR,
    ),
    Case(
        "Invalid metrics filer for File metrics collector when file format is `JSON`",
        collector(
            {
                "collector": {"kind": "File"},
                "source": {
                    "filter": {},
                    "fileSystemPath": {"path": "/absolute/path", "kind": "File", "format": "JSON"},
                },
            }
        ),
        ("spec.metricsCollectorSpec.source.filter",),
        scope=COLLECTOR,
    ),
    Case(
        "Run validator for correct File metrics collector",
        collector(
            {
                "collector": {"kind": "File"},
                "source": {
                    "fileSystemPath": {"path": "/absolute/path", "kind": "File", "format": "JSON"}
                },
            }
        ),
        scope=COLLECTOR,
    ),
    # -- TestValidateConfigData (Katib's config lookups fail; here: unknown names) ----------
    Case(
        "Get early stopping config data error",
        sets("spec.earlyStopping.algorithmName", "no-such-rule"),
        ("spec.earlyStopping.algorithmName",),
    ),
    Case(
        "Get suggestion config data error",
        sets("spec.algorithm.algorithmName", "no-such-algorithm"),
        ("spec.algorithm.algorithmName",),
    ),
]


def errors_of(data: Spec) -> list[FieldError]:
    try:
        load_spec(data)
    except SpecError as e:
        return list(e.errors)
    return []


@pytest.mark.parametrize("case", CASES, ids=[c.description for c in CASES])
def test_katib_validator_case(case: Case) -> None:
    data = fake()
    case.change(data)
    errors = [e for e in errors_of(data) if e.path.startswith(case.scope)]
    if not case.expected:
        assert errors == [], errors
        return
    assert errors, f"Katib refuses this spec at {case.katib}; tuner accepted it"
    for path in case.expected:
        assert any(e.path.startswith(path) for e in errors), (path, errors)


def test_every_difference_is_in_the_readme() -> None:
    from tests.helpers import ROOT

    readme = (ROOT / "README.md").read_text()
    for case in CASES:
        if case.differs is not None:
            assert f"| {case.differs} |" in readme, case.differs


# -- the resume cases of TestValidateExperiment: edits of a stored experiment --------------------


def stored(**spec: Any) -> Any:
    data = copy.deepcopy(fake())
    data["spec"].update(spec)
    return load_spec(data)


def test_resume_succeeded_experiment_with_resume_policy_never() -> None:
    old = stored(resumePolicy="Never")
    new = lifecycle.edit_budget(old, {"maxTrialCount": 7})
    with pytest.raises(SpecError) as refused:
        lifecycle.check_edit(
            "fake", ExperimentPhase.SUCCEEDED, lifecycle.MAX_TRIALS_REACHED, old.spec, new.spec, 6
        )
    assert [e.path for e in refused.value.errors] == ["spec.resumePolicy"]


def test_resume_experiment_with_max_trial_count_not_above_its_trials() -> None:
    old = stored(maxFailedTrialCount=2, resumePolicy="LongRunning")
    new = lifecycle.edit_budget(old, {"maxFailedTrialCount": 3})
    with pytest.raises(SpecError) as refused:
        lifecycle.check_edit("fake", ExperimentPhase.RUNNING, None, old.spec, new.spec, 6)
    assert [e.path for e in refused.value.errors] == ["spec.maxTrialCount"]


def test_change_algorithm_name_when_resuming_experiment() -> None:
    with pytest.raises(SpecError) as refused:
        lifecycle.edit_budget(stored(), {"algorithm": {"algorithmName": "tpe"}})
    assert [e.path for e in refused.value.errors] == ["spec.algorithm"]


def test_run_validator_to_correct_resume_experiment() -> None:
    for policy in ("LongRunning", "FromVolume"):
        old = stored(resumePolicy=policy)
        new = lifecycle.edit_budget(old, {"maxTrialCount": 9})
        lifecycle.check_edit(
            "fake", ExperimentPhase.SUCCEEDED, lifecycle.MAX_TRIALS_REACHED, old.spec, new.spec, 6
        )
        # Goal reached or failed: Katib continues neither, whatever the policy.
        for phase, reason in (
            (ExperimentPhase.SUCCEEDED, lifecycle.GOAL_REACHED),
            (ExperimentPhase.FAILED, lifecycle.FAILED),
        ):
            with pytest.raises(SpecError):
                lifecycle.check_edit("fake", phase, reason, old.spec, new.spec, 6)
