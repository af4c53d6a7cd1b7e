"""tuner's own .proto speaks Katib's wire format: messages tuner builds parse with the Katib
SDK's generated ``katib_api_pb2`` (in its own venv) to the same fields, and back."""

from __future__ import annotations

import json

from tests.katib_grpc.services import require_grpc
from tests.katib_sdk import run_sdk
from tuner.space import (
    AlgorithmChoice,
    Direction,
    Objective,
    ParameterKind,
    SearchSpace,
    Study,
    parse_parameter,
)
from tuner.trials import Trial, TrialState

require_grpc()

from tuner.katib_grpc.convert import (  # noqa: E402  (after the skip above)
    experiment_message,
    objective_spec,
    study_of_message,
    trial_message,
    trials_of_message,
)
from tuner.katib_grpc.protos import api  # noqa: E402

STUDY = Study(
    space=SearchSpace(
        (
            parse_parameter(
                "lr",
                ParameterKind.DOUBLE,
                minimum="0.001",
                maximum="0.1",
                distribution="logUniform",
            ),
            parse_parameter("layers", ParameterKind.INT, minimum="1", maximum="9", step="2"),
            parse_parameter("batch", ParameterKind.DISCRETE, values=["16", "32"]),
            parse_parameter("opt", ParameterKind.CATEGORICAL, values=["sgd", "adam"]),
        )
    ),
    objective=Objective("loss", Direction.MAXIMIZE, additional_metrics=("acc",)),
    algorithm=AlgorithmChoice("tpe", {"random_state": "4"}),
    parallel_trial_count=3,
)
TRIALS = [
    Trial(
        name="exp-0000",
        number=0,
        parameters={"lr": 0.01, "layers": 3, "batch": 32, "opt": "adam"},
        state=TrialState.SUCCEEDED,
        objective=0.25,
        metrics={"loss": 0.25, "acc": 0.9},
    ),
    Trial(
        name="exp-0001",
        number=1,
        parameters={"lr": 0.002, "layers": 9, "batch": 16, "opt": "sgd"},
        state=TrialState.RUNNING,
    ),
]


def request_bytes() -> bytes:
    m, _ = api()
    objective = objective_spec(m, STUDY.objective)
    request = m.GetSuggestionsRequest(
        experiment=experiment_message(m, "exp", STUDY, dict(STUDY.algorithm.settings), 20),
        trials=[trial_message(m, t, objective) for t in TRIALS],
        current_request_number=2,
        total_request_number=4,
    )
    data: bytes = request.SerializeToString()
    return data


def test_a_suggestion_request_reads_the_same_with_katibs_own_generated_code() -> None:
    script = f"""
import json
from google.protobuf.json_format import MessageToDict
from kubeflow.katib import katib_api_pb2 as katib
request = katib.GetSuggestionsRequest.FromString(bytes.fromhex({request_bytes().hex()!r}))
print(json.dumps(MessageToDict(request)))
"""
    katib = json.loads(run_sdk(script).stdout.strip().splitlines()[-1])
    spec = katib["experiment"]["spec"]
    assert katib["experiment"]["name"] == "exp"
    assert spec["objective"] == {
        "type": "MAXIMIZE",
        "objectiveMetricName": "loss",
        "additionalMetricNames": ["acc"],
    }
    assert spec["algorithm"] == {
        "algorithmName": "tpe",
        "algorithmSettings": [{"name": "random_state", "value": "4"}],
    }
    assert spec["parallelTrialCount"] == 3 and spec["maxTrialCount"] == 20
    params = {p["name"]: p for p in spec["parameterSpecs"]["parameters"]}
    assert params["lr"]["parameterType"] == "DOUBLE"
    assert params["lr"]["feasibleSpace"] == {
        "min": "0.001",
        "max": "0.1",
        "distribution": "LOG_UNIFORM",
    }
    assert params["layers"]["feasibleSpace"]["step"] == "2"
    assert params["batch"]["feasibleSpace"]["list"] == ["16", "32"]
    assert params["opt"]["parameterType"] == "CATEGORICAL"
    first, second = katib["trials"]
    assert first["name"] == "exp-0000"
    assert first["status"]["condition"] == "SUCCEEDED"
    assert first["status"]["observation"]["metrics"] == [
        {"name": "loss", "value": "0.25"},
        {"name": "acc", "value": "0.9"},
    ]
    assert first["spec"]["parameterAssignments"]["assignments"][0] == {
        "name": "lr",
        "value": "0.01",
    }
    assert second["status"]["condition"] == "RUNNING"
    assert katib["currentRequestNumber"] == 2 and katib["totalRequestNumber"] == 4


def test_the_study_and_trials_survive_the_round_trip() -> None:
    m, _ = api()
    request = m.GetSuggestionsRequest.FromString(request_bytes())
    study = study_of_message(m, request.experiment)
    assert study.space == STUDY.space
    assert study.objective == STUDY.objective
    assert study.algorithm == STUDY.algorithm
    trials = trials_of_message(m, study, request.trials)
    assert [t.parameters for t in trials] == [t.parameters for t in TRIALS]
    assert [t.state for t in trials] == [TrialState.SUCCEEDED, TrialState.RUNNING]
    assert trials[0].objective == 0.25 and trials[0].metrics == {"loss": 0.25, "acc": 0.9}
