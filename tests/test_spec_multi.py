"""spec.objectives and spec.constraints: what is accepted, what is refused (with the path)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.helpers import experiment_dict
from tests.pareto_support import two_objective_dict
from tuner.constraints import Constraint
from tuner.errors import SpecError
from tuner.space import Direction, Objective
from tuner.spec import load_spec


def errors_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        load_spec(data)
    return {e.path: e.message for e in info.value.errors}


def test_a_katib_spec_dumps_byte_for_byte_as_written() -> None:
    data = experiment_dict("katib")
    experiment = load_spec(copy.deepcopy(data))
    # As before the extensions: the objective as written (plus Katib's empty strategy list).
    assert experiment.dump()["spec"]["objective"] == {
        **data["spec"]["objective"],
        "metricStrategies": [],
    }
    assert not {"objectives", "constraints", "additionalMetricNames"} & set(
        experiment.dump()["spec"]
    )


def test_objectives_fill_in_katibs_objective_and_reach_the_study() -> None:
    data = two_objective_dict(
        "multi",
        objectives=[
            {"objectiveMetricName": "f1", "type": "minimize"},
            {"objectiveMetricName": "f2", "type": "maximize"},
        ],
        additionalMetricNames=["other"],
        constraints=[{"metricName": "size", "max": 1.5}],
    )
    experiment = load_spec(data)
    assert experiment.spec.objective.dump() == {
        "type": "minimize",
        "objectiveMetricName": "f1",
        "additionalMetricNames": ["f2", "other", "size"],
        "metricStrategies": [
            {"name": "f2", "value": "max"},
            {"name": "size", "value": "latest"},
        ],
    }
    study = experiment.spec.study
    assert study.objectives == (Objective("f1"), Objective("f2", Direction.MAXIMIZE))
    assert study.constraints == (Constraint("size", max=1.5),)
    assert study.multi_objective
    # The dumped spec (with the filled-in objective) loads again to the same spec.
    again = load_spec(experiment.dump())
    assert again.dump() == experiment.dump()


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (
            {"objective": {"type": "minimize", "objectiveMetricName": "f1"}},
            "spec.objective",
            "either spec.objective",
        ),
        (
            {"objectives": [{"objectiveMetricName": "f1", "type": "minimize"}]},
            "spec.objectives",
            "two or more",
        ),
        (
            {"algorithm": {"algorithmName": "cmaes"}},
            "spec.algorithm.algorithmName",
            "single objective",
        ),
        (
            {"earlyStopping": {"algorithmName": "medianstop"}},
            "spec.earlyStopping",
            "several objectives",
        ),
        (
            {"constraints": [{"metricName": "size", "max": 1, "min": 0}]},
            "spec.constraints[0]",
            "exactly one of max and min",
        ),
        (
            {
                "objectives": [
                    {"objectiveMetricName": "f1", "type": "minimize"},
                    {"objectiveMetricName": "f1", "type": "maximize"},
                ]
            },
            "spec.objectives[1].objectiveMetricName",
            "duplicate",
        ),
    ],
)
def test_bad_multi_objective_specs_name_the_field(
    change: dict[str, Any], path: str, words: str
) -> None:
    data = two_objective_dict("multi")
    data["spec"].update(change)
    errors = errors_of(data)
    assert path in errors, errors
    assert words in errors[path]


def test_goal_is_not_defined_for_several_objectives() -> None:
    data = two_objective_dict("multi")
    data["spec"]["objectives"][0]["goal"] = 0.1
    assert any("goal" in p for p in errors_of(data))


def test_multi_objective_algorithms_need_several_objectives() -> None:
    data = experiment_dict("single", algorithm={"algorithmName": "nsga2"})
    assert "two or more" in errors_of(data)["spec.algorithm.algorithmName"]


def test_single_objective_constraints_must_name_a_metric_of_the_objective() -> None:
    data = experiment_dict("single", constraints=[{"metricName": "size", "max": 1}])
    assert (
        "not one of the experiment's metrics" in errors_of(data)["spec.constraints[0].metricName"]
    )
    ok = experiment_dict("single", constraints=[{"metricName": "accuracy", "min": 0.5}])
    assert load_spec(ok).spec.study.constraints == (Constraint("accuracy", min=0.5),)


def test_additional_metric_names_belong_to_objectives() -> None:
    data = experiment_dict("single", additionalMetricNames=["x"])
    assert "only with spec.objectives" in errors_of(data)["spec.additionalMetricNames"]
