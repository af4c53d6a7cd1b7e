from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import DATA, experiment_dict
from tuner.cli import main
from tuner.errors import SpecError
from tuner.spec import MetricStrategyType, ParameterType, load_spec, spec_warnings


def errors_of(data: dict[str, Any] | str) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        load_spec(data)
    return {e.path: e.message for e in info.value.errors}


def test_katib_example_loads_unchanged() -> None:
    experiment = load_spec(DATA / "katib-random.yaml")
    spec = experiment.spec
    assert experiment.namespace == "kubeflow"
    assert [p.parameter_type for p in spec.parameters] == [
        ParameterType.DOUBLE,
        ParameterType.INT,
        ParameterType.CATEGORICAL,
    ]
    assert spec.parameters[0].low == 0.01 and spec.parameters[0].high == 0.03
    assert spec.parameters[2].choices == ["sgd", "adam", "ftrl"]
    assert spec.parallel_trial_count == 3
    assert spec.metrics_collector_spec.kind.value == "StdOut"
    assert spec.trial_template is not None
    assert spec.trial_template.success_condition.startswith("status.conditions.#(type==")
    # Round trip: the stored form loads back to the same model.
    assert load_spec(experiment.dump()) == experiment


def test_numbers_as_strings_or_yaml_numbers_are_the_same() -> None:
    as_strings = experiment_dict()
    as_numbers = copy.deepcopy(as_strings)
    as_numbers["spec"]["parameters"][0]["feasibleSpace"] = {"min": -2, "max": 2.0}
    as_numbers["spec"]["parameters"][1]["feasibleSpace"] = {"min": 1, "max": 3}
    a, b = load_spec(as_strings).spec.parameters, load_spec(as_numbers).spec.parameters
    assert [(p.low, p.high) for p in a] == [(p.low, p.high) for p in b]


def test_metric_strategy_defaults_follow_objective_type() -> None:
    data = experiment_dict()
    data["spec"]["objective"]["metricStrategies"] = [{"name": "accuracy", "value": "latest"}]
    objective = load_spec(data).spec.objective
    assert objective.strategy("loss") is MetricStrategyType.MIN
    assert objective.strategy("accuracy") is MetricStrategyType.LATEST
    data["spec"]["objective"] = {"type": "maximize", "objectiveMetricName": "acc"}
    assert load_spec(data).spec.objective.strategy("acc") is MetricStrategyType.MAX


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        (lambda s: s.update(maxTrialCount=0), "spec.maxTrialCount", "greater than 0"),
        (
            lambda s: s.update(parallelTrialCount=5),
            "spec.parallelTrialCount",
            "less than or equal to spec.maxTrialCount",
        ),
        (
            lambda s: s.update(maxFailedTrialCount=-1),
            "spec.maxFailedTrialCount",
            "not be less than 0",
        ),
        (
            lambda s: s["parameters"][1]["feasibleSpace"].update(min="5"),
            "spec.parameters[1].feasibleSpace.min",
            "must not exceed max",
        ),
        (
            lambda s: s["parameters"][0]["feasibleSpace"].update(min="abc"),
            "spec.parameters[0].feasibleSpace.min",
            "not a number",
        ),
        (
            lambda s: s["parameters"][1]["feasibleSpace"].update(step="0.5"),
            "spec.parameters[1].feasibleSpace.step",
            "integer",
        ),
        (
            lambda s: s["parameters"][0].update(parameterType="float"),
            "spec.parameters[0].parameterType",
            "'float'",
        ),
        (
            lambda s: s["parameters"].append(
                {"name": "c", "parameterType": "categorical", "feasibleSpace": {"min": "1"}}
            ),
            "spec.parameters[2].feasibleSpace.list",
            "non-empty list",
        ),
        (
            lambda s: s["trialTemplate"]["trialParameters"].append(
                {"name": "unused", "reference": "x"}
            ),
            "spec.trialTemplate.trialParameters[2].reference",
            "duplicate reference",
        ),
        (
            lambda s: s["trialTemplate"]["trialParameters"][1].update(reference="nope"),
            "spec.trialTemplate.trialParameters[1].reference",
            "neither a parameter",
        ),
        (
            lambda s: s["trialTemplate"]["trialParameters"].pop(),
            "spec.trialTemplate",
            "${trialParameters.n}",
        ),
        (
            lambda s: s["trialTemplate"].update(primaryContainerName="other"),
            "spec.trialTemplate.primaryContainerName",
            "not a container",
        ),
        (
            lambda s: s["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][
                0
            ].update(imagee="python"),
            "spec.trialTemplate.trialSpec.spec.template.spec.containers[0].imagee",
            "unknown field of Container",
        ),
        (lambda s: s.update(colour="blue"), "spec.colour", "unknown field"),
        (
            lambda s: s["objective"].update(type="minimise"),
            "spec.objective.type",
            "'minimise'",
        ),
        (
            lambda s: s["algorithm"].update(algorithmName="magic"),
            "spec.algorithm.algorithmName",
            "unknown algorithm",
        ),
        (
            lambda s: s.update(
                metricsCollectorSpec={
                    "collector": {"kind": "File"},
                    "source": {"fileSystemPath": {"path": "metrics.log", "format": "TEXT"}},
                }
            ),
            "spec.metricsCollectorSpec.source.fileSystemPath.path",
            "absolute path",
        ),
        (
            lambda s: s.update(
                metricsCollectorSpec={
                    "collector": {"kind": "StdOut"},
                    "source": {"filter": {"metricsFormat": ["([a-z]+)=.*"]}},
                }
            ),
            "spec.metricsCollectorSpec.source.filter.metricsFormat[0]",
            "two top subexpressions",
        ),
    ],
)
def test_invalid_specs_name_the_field(mutate: Any, path: str, fragment: str) -> None:
    data = experiment_dict()
    mutate(data["spec"])
    errors = errors_of(data)
    assert path in errors, errors
    assert fragment in errors[path]


def test_unused_trial_parameter_is_flagged() -> None:
    data = experiment_dict()
    data["spec"]["trialTemplate"]["trialParameters"].append(
        {"name": "name", "reference": "${trialSpec.Name}"}
    )
    errors = errors_of(data)
    assert "never used" in errors["spec.trialTemplate.trialParameters[2].name"]


def test_metadata_reference_is_accepted() -> None:
    data = experiment_dict()
    data["spec"]["trialTemplate"]["trialParameters"].append(
        {"name": "trialName", "reference": "${trialSpec.Name}"}
    )
    command = data["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][
        0
    ]["command"]
    command.append("--name=${trialParameters.trialName}")
    assert load_spec(data).name == "exp"


def test_all_errors_are_reported_at_once() -> None:
    data = experiment_dict(maxTrialCount=0)
    data["metadata"]["name"] = "Bad_Name"
    data["spec"]["parameters"][0]["feasibleSpace"]["max"] = "-5"
    errors = errors_of(data)
    assert {"metadata.name", "spec.maxTrialCount", "spec.parameters[0].feasibleSpace.min"} <= set(
        errors
    )


def test_yaml_syntax_error_is_a_spec_error() -> None:
    errors = errors_of("apiVersion: kubeflow.org/v1beta1\nspec: [unclosed\n")
    assert any("not valid YAML" in m for m in errors.values())


def test_validate_cli_prints_paths_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = experiment_dict(maxTrialCount=0)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "spec.maxTrialCount: must be greater than 0" in err
    assert "Traceback" not in err

    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(experiment_dict()))
    assert main(["validate", str(good)]) == 0
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2


def test_messages_name_the_parameter_and_keep_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = experiment_dict()
    data["spec"]["parameters"][1]["feasibleSpace"]["min"] = "5"  # n: min above max
    data["spec"]["parameters"][0]["parameterType"] = "float"  # x: refused by the model
    assert errors_of(data)["spec.parameters[0].parameterType"].startswith("parameter 'x': ")
    data["spec"]["parameters"][0]["parameterType"] = "double"
    errors = errors_of(data)
    assert errors["spec.parameters[1].feasibleSpace.min"].startswith("parameter 'n': ")
    assert "must not exceed max" in errors["spec.parameters[1].feasibleSpace.min"]
    data["spec"]["trialTemplate"]["trialParameters"][1]["reference"] = "nope"
    message = errors_of(data)["spec.trialTemplate.trialParameters[1].reference"]
    assert message.startswith("trial parameter 'n': 'nope' is neither a parameter")

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "spec.parameters[1].feasibleSpace.min: parameter 'n': " in err


def test_an_unused_search_parameter_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = experiment_dict()
    data["spec"]["parameters"].append(
        {"name": "dropout", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "0.5"}}
    )
    experiment = load_spec(data)  # valid
    assert [str(w) for w in spec_warnings(experiment)] == [
        "spec.parameters[2]: parameter 'dropout' is not used by any trial: "
        "no spec.trialTemplate.trialParameters entry has it as its reference"
    ]
    path = tmp_path / "unused.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "warning: spec.parameters[2]: parameter 'dropout' is not used by any trial" in err
    assert "valid Experiment default/exp" in out
    # Without a trialTemplate, parameters go to whoever asks: nothing to warn about.
    del data["spec"]["trialTemplate"]
    data["spec"]["metricsCollectorSpec"] = {"collector": {"kind": "Push"}}
    assert spec_warnings(load_spec(data)) == []
    assert spec_warnings(load_spec(experiment_dict())) == []
