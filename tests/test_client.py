"""tuner.client against a scripted transport: requests it sends, errors and DataFrames it makes.

The client against a real server is tested end to end in tests/api/test_serve.py.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.helpers import DATA, experiment_dict
from tuner.client import Client, TrialAssignment
from tuner.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    SpecError,
    TunerError,
    Unauthorized,
)
from tuner.spec import load_spec

Handler = Callable[[httpx.Request], httpx.Response]

SPEC = experiment_dict("exp")["spec"]
ROWS = [
    {
        "trial": "exp-0001",
        "status": "Succeeded",
        "parameters": {"x": 0.5, "n": 2},
        "objective": 0.1,
        "metrics": {"accuracy": 0.9, "loss": 0.1},
        "steps": 2,
        "reason": None,
    },
    {
        "trial": "exp-0000",
        "status": "Failed",
        "parameters": {"x": 1.5, "n": 1},
        "objective": None,
        "metrics": {},
        "steps": 0,
        "reason": "exit code 3",
    },
]


class Recorder:
    def __init__(self, routes: dict[tuple[str, str], Any]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes[(request.method, request.url.path)]
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)


def client_for(routes: dict[tuple[str, str], Any], **kw: Any) -> tuple[Client, Recorder]:
    recorder = Recorder(routes)
    return Client(
        "http://tuner:8000/", "tok", transport=httpx.MockTransport(recorder), **kw
    ), recorder


def experiment(phase: str = "Running", counts: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "exp", "namespace": "default"},
        "spec": SPEC,
        "status": {"phase": phase, "trialCounts": counts or {}, "currentOptimalTrial": None},
    }


def test_requests_carry_token_namespace_and_paths() -> None:
    client, rec = client_for({("GET", "/api/v1/experiments/exp"): experiment()}, namespace="ns")
    client.get("exp")
    (request,) = rec.requests
    assert request.headers["Authorization"] == "Bearer tok"
    assert str(request.url) == "http://tuner:8000/api/v1/experiments/exp?namespace=ns"


def test_token_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNER_API_TOKEN", "from-env")
    rec = Recorder({("GET", "/api/v1/experiments"): []})
    Client("http://tuner", transport=httpx.MockTransport(rec)).list()
    assert rec.requests[0].headers["Authorization"] == "Bearer from-env"
    rec.requests.clear()
    Client("http://tuner", token="", transport=httpx.MockTransport(rec)).list()
    assert "Authorization" not in rec.requests[0].headers


def test_submit_sends_paths_and_text_as_yaml_and_mappings_as_json() -> None:
    client, rec = client_for({("POST", "/api/v1/experiments"): experiment()})
    client.submit(DATA / "katib-random.yaml")
    client.submit(str(DATA / "katib-random.yaml"))
    client.submit((DATA / "katib-random.yaml").read_text())
    client.submit(experiment_dict("exp"))
    client.submit(load_spec(experiment_dict("exp")), namespace="team")
    yaml_bytes = (DATA / "katib-random.yaml").read_bytes()
    for request in rec.requests[:3]:
        assert request.headers["Content-Type"] == "application/yaml"
        assert request.content == yaml_bytes
        assert "namespace" not in request.url.params  # the spec's own namespace applies
    assert json.loads(rec.requests[3].content) == experiment_dict("exp")
    assert rec.requests[4].url.params["namespace"] == "team"
    assert json.loads(rec.requests[4].content) == load_spec(experiment_dict("exp")).dump()


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (500, TunerError),
    ],
)
def test_errors_are_typed_and_carry_the_message(status: int, cls: type[TunerError]) -> None:
    answer = httpx.Response(status, json={"detail": "the server says why", "errors": []})
    client, _ = client_for({("GET", "/api/v1/experiments/exp"): answer})
    with pytest.raises(cls) as error:
        client.get("exp")
    assert type(error.value) is cls
    expected = "server error 500: the server says why" if status == 500 else "the server says why"
    assert error.value.message == expected


def test_422_becomes_a_spec_error_with_field_paths() -> None:
    answer = httpx.Response(
        422,
        json={
            "detail": "invalid Experiment spec (1 error(s)):\n  - spec.maxTrialCount: bad",
            "errors": [{"path": "spec.maxTrialCount", "message": "bad"}],
        },
    )
    client, _ = client_for({("POST", "/api/v1/experiments"): answer})
    with pytest.raises(SpecError) as error:
        client.submit(experiment_dict("exp"))
    assert [(e.path, e.message) for e in error.value.errors] == [("spec.maxTrialCount", "bad")]
    assert error.value.message.startswith("invalid Experiment spec")


def test_unreachable_server_is_a_tuner_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = Client("http://tuner:1", transport=httpx.MockTransport(refuse))
    with pytest.raises(TunerError, match="cannot reach the tuner server at http://tuner:1"):
        client.get("exp")


def test_leaderboard_is_a_dataframe_with_a_column_per_parameter_and_metric() -> None:
    client, rec = client_for(
        {
            ("GET", "/api/v1/experiments/exp"): experiment(),
            ("GET", "/api/v1/experiments/exp/leaderboard"): ROWS,
        }
    )
    board = client.leaderboard("exp", limit=5, metric="accuracy", status=["Succeeded", "Failed"])
    assert list(board.columns) == [
        "trial", "status", "objective", "x", "n", "loss", "accuracy", "steps", "reason",
    ]  # fmt: skip
    assert list(board["trial"]) == ["exp-0001", "exp-0000"]
    assert board["loss"][0] == 0.1 and board["accuracy"][0] == 0.9
    assert board["reason"][1] == "exit code 3"
    params = rec.requests[-1].url.params
    assert params.get_list("status") == ["Succeeded", "Failed"]
    assert (params["limit"], params["metric"], params["offset"]) == ("5", "accuracy", "0")


def test_name_clashes_get_a_prefix() -> None:
    from tuner.api.tabular import flatten_rows

    rows = [
        {
            "trial": "t",
            "status": "Succeeded",
            "parameters": {"steps": 3, "loss": 1},
            "objective": 0.5,
            "metrics": {"loss": 0.5},
            "steps": 1,
            "reason": None,
        }
    ]
    columns, records = flatten_rows(rows, ["steps", "loss"], ["loss"])
    assert columns == [
        "trial", "status", "objective", "parameters.steps", "loss", "metrics.loss", "steps",
        "reason",
    ]  # fmt: skip
    assert records[0]["parameters.steps"] == 3 and records[0]["steps"] == 1
    assert records[0]["loss"] == 1 and records[0]["metrics.loss"] == 0.5


def test_trials_pages_through_everything() -> None:
    stamp = "2030-01-01T00:00:00+00:00"
    extra = {"message": None, "conditions": [], "createdAt": stamp, "startedAt": None}
    trials = [{**row, **extra, "number": i, "finishedAt": None} for i, row in enumerate(ROWS * 3)][
        :5
    ]
    offsets = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/trials"):
            offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
            offsets.append(offset)
            return httpx.Response(200, json=trials[offset : offset + limit])
        return httpx.Response(200, json=experiment())

    client = Client("http://tuner", transport=httpx.MockTransport(handler))
    assert [t["number"] for t in client.trial_rows("exp", page=2)] == [0, 1, 2, 3, 4]
    assert offsets == [0, 2, 4]
    frame = client.trials("exp")
    assert list(frame["number"]) == [0, 1, 2, 3, 4]
    assert isinstance(frame["createdAt"].dtype, pd.DatetimeTZDtype)
    assert frame["finishedAt"].isna().all()


def test_ask_remembers_tokens_for_report_and_tell() -> None:
    suggested = {
        "trials": [{**ROWS[0], "trial": "exp-0002", "token": "t2"}],
        "phase": "Running",
        "message": None,
    }
    client, rec = client_for(
        {
            ("POST", "/api/v1/experiments/exp/suggestions"): suggested,
            ("POST", "/api/v1/experiments/exp/trials/exp-0002/observations"): {
                "should_stop": True,
                "ignored": [],
            },
            ("POST", "/api/v1/experiments/exp/trials/exp-0002/complete"): ROWS[0],
        }
    )
    (trial,) = client.ask("exp", count=3)
    assert trial == TrialAssignment("exp", "exp-0002", {"x": 0.5, "n": 2}, "t2")
    assert json.loads(rec.requests[0].content) == {"count": 3}
    assert client.report("exp", trial, {"loss": 0.2}, step=1) is True
    client.tell("exp", "exp-0002", {"loss": 0.1})  # by name: the remembered token
    client.tell("exp", trial, failed=True, message="diverged")
    for request in rec.requests[1:]:
        assert request.headers["X-Tuner-Trial-Token"] == "t2"
        assert request.headers["Authorization"] == "Bearer tok"
    assert json.loads(rec.requests[1].content) == {"step": 1, "metrics": {"loss": 0.2}}
    assert json.loads(rec.requests[2].content) == {"status": "Succeeded", "metrics": {"loss": 0.1}}
    assert json.loads(rec.requests[3].content) == {
        "status": "Failed",
        "metrics": {},
        "message": "diverged",
    }


def test_wait_polls_until_finished_and_shows_progress() -> None:
    answers = iter(
        [
            experiment("Running", {"Running": 2}),
            experiment("Running", {"Succeeded": 2, "Running": 1}),
            experiment("Succeeded", {"Succeeded": 4}),
        ]
    )
    client, _ = client_for({})
    client._http = httpx.Client(
        base_url="http://tuner",
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json=next(answers))),
    )
    bar = io.StringIO()
    final = client.wait("exp", poll=0.001, file=bar)
    assert final["status"]["phase"] == "Succeeded"
    assert "4/4" in bar.getvalue()


def test_wait_times_out() -> None:
    client, _ = client_for({("GET", "/api/v1/experiments/exp"): experiment("Running")})
    with pytest.raises(TimeoutError, match="still Running"):
        client.wait("exp", progress=False, timeout=0.05, poll=0.01)


def test_edit_budget_sends_only_the_given_fields() -> None:
    client, rec = client_for({("PATCH", "/api/v1/experiments/exp"): experiment()})
    client.edit_budget("exp", max_trial_count=10)
    assert json.loads(rec.requests[0].content) == {"maxTrialCount": 10}
