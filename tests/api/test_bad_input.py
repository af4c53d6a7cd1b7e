"""Bad input is a 4xx with the field at fault, never a 500, and SQLite and PostgreSQL agree.

Each case here answered 500 once (issue 12, item 8). Every test runs on both databases
(``db_url``); the limits themselves live in :mod:`tuner.limits`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import AUTH, V1, TestClient, ask_tell_dict, experiment_dict, make_settings
from tuner.api.app import create_app
from tuner.errors import SpecError
from tuner.limits import MAX_DEPTH, MAX_METRIC_NAME_LENGTH, MAX_STEP
from tuner.spec import load_spec


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(make_settings(tmp_path, db_url=db_url))
    with TestClient(app, headers=AUTH, raise_server_exceptions=False) as c:
        yield c


def _submit(api: TestClient, data: dict[str, Any]) -> Any:
    return api.post(f"{V1}/experiments", json=data)


def _paths(response: Any) -> list[str]:
    return [e["path"] for e in response.json()["errors"]]


@pytest.fixture
def trial(api: TestClient) -> dict[str, Any]:
    """A running ask/tell trial of experiment ``bad`` (its name and token)."""
    assert _submit(api, ask_tell_dict("bad")).status_code == 201
    answer = api.post(f"{V1}/experiments/bad/suggestions", json={"count": 1})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()["trials"][0]
    return found


def _push(api: TestClient, trial: dict[str, Any], body: Any) -> Any:
    return api.post(
        f"{V1}/experiments/bad/trials/{trial['trial']}/observations",
        json=body,
        headers={"Authorization": f"Bearer {trial['token']}"},
    )


def test_deep_json_and_yaml_specs_are_422_with_one_log_line(
    api: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    deep_json = "[" * 100_000 + "]" * 100_000
    deep_yaml = "a:\n" + "".join("  " * i + "- \n" for i in range(1, 200))
    just_too_deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    caplog.set_level(logging.INFO)
    for body, media in (
        (deep_json, "application/json"),
        ("[" * 3_000, "application/yaml"),  # deeper than Python's recursion limit
        (deep_yaml, "application/yaml"),
        (just_too_deep, "application/json"),
    ):
        response = api.post(f"{V1}/experiments", content=body, headers={"content-type": media})
        assert response.status_code == 422, response.text
        assert response.json()["errors"] == [
            {"path": "<document>", "message": f"the document nests deeper than {MAX_DEPTH} levels"}
        ]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_deep_push_body_is_400_saying_why(
    api: TestClient, trial: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = api.post(
        f"{V1}/experiments/bad/trials/{trial['trial']}/observations",
        content="[" * 100_000 + "]" * 100_000,
        headers={"Authorization": f"Bearer {trial['token']}", "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert "nests deeper than" in response.json()["detail"]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_a_deep_spec_file_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("[" * 3_000)
    with pytest.raises(SpecError, match="nests deeper than"):
        load_spec(path)
    with pytest.raises(SpecError, match="nests deeper than"):
        load_spec({"metadata": {"name": "x"}, "spec": _nested(MAX_DEPTH)})


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_huge_offsets_are_422(api: TestClient, trial: dict[str, Any]) -> None:
    for route in ("", "/bad/trials", "/bad/leaderboard"):
        for offset in (2**63, 2**31):
            response = api.get(f"{V1}/experiments{route}", params={"offset": offset})
            assert response.status_code == 422, response.text
            assert _paths(response) == ["query.offset"]
        assert api.get(f"{V1}/experiments{route}", params={"offset": 2**31 - 1}).json() == []


def test_nul_in_names_and_messages_is_422(api: TestClient, trial: dict[str, Any]) -> None:
    name = trial["trial"]
    for url, path in (
        (f"{V1}/experiments/a%00b", "path.name"),
        (f"{V1}/experiments/bad/trials/a%00b", "path.trial"),
        (f"{V1}/experiments/bad/trials/{name}/observations?metric=a%00b", "query.metric"),
        (f"{V1}/experiments/bad/leaderboard?metric=a%00b", "query.metric"),
        (f"{V1}/overview?namespace=a%00b", "query.namespace"),
    ):
        response = api.get(url)
        assert response.status_code == 422, (url, response.text)
        assert _paths(response) == [path]
    headers = {"Authorization": f"Bearer {trial['token']}"}
    done = api.post(
        f"{V1}/experiments/bad/trials/{name}/complete",
        json={"status": "Failed", "message": "a\x00b"},
        headers=headers,
    )
    assert done.status_code == 422
    assert _paths(done) == ["body.message"]
    assert _push(api, trial, {"metrics": {"lo\x00ss": 1.0}}).status_code == 422
    # The trial is untouched: it still finishes, with a message the database can hold.
    done = api.post(
        f"{V1}/experiments/bad/trials/{name}/complete",
        json={"status": "Failed", "message": "a\\x00b"},
        headers=headers,
    )
    assert done.status_code == 200, done.text
    assert done.json()["message"] == "a\\x00b"


def test_steps_stop_at_the_32_bit_limit_on_both_databases(
    api: TestClient, trial: dict[str, Any]
) -> None:
    for step in (MAX_STEP + 1, 2**63):
        response = _push(api, trial, {"step": step, "metrics": {"loss": 1.0}})
        assert response.status_code == 422, response.text
        assert _paths(response) == ["body.step"]
    assert _push(api, trial, {"step": MAX_STEP, "metrics": {"loss": 0.5}}).status_code == 200
    curve = api.get(f"{V1}/experiments/bad/trials/{trial['trial']}/observations").json()
    assert [p["step"] for p in curve["metrics"]["loss"]] == [MAX_STEP]


def test_metric_names_longer_than_the_columns_are_refused_at_validation(api: TestClient) -> None:
    too_long = "m" * (MAX_METRIC_NAME_LENGTH + 1)
    for objective, path in (
        ({"objectiveMetricName": too_long}, "spec.objective.objectiveMetricName"),
        (
            {"objectiveMetricName": "loss", "additionalMetricNames": ["ok", too_long]},
            "spec.objective.additionalMetricNames[1]",
        ),
    ):
        # A StdOut collector would have failed every trial on the name: refused before any runs.
        data = experiment_dict("long", objective={"type": "minimize", **objective})
        response = _submit(api, data)
        assert response.status_code == 422, response.text
        assert path in _paths(response)
    assert api.get(f"{V1}/experiments").json() == []


def test_a_metric_name_of_the_column_width_is_stored(api: TestClient) -> None:
    name = "m" * MAX_METRIC_NAME_LENGTH
    data = ask_tell_dict("wide", objective={"type": "minimize", "objectiveMetricName": name})
    assert _submit(api, data).status_code == 201
    trial = api.post(f"{V1}/experiments/wide/suggestions", json={"count": 1}).json()["trials"][0]
    pushed = api.post(
        f"{V1}/experiments/wide/trials/{trial['trial']}/observations",
        json={"metrics": {name: 0.25}},
        headers={"Authorization": f"Bearer {trial['token']}"},
    )
    assert pushed.status_code == 200, pushed.text
    assert pushed.json()["ignored"] == []
    stored = api.get(f"{V1}/experiments/wide/trials/{trial['trial']}").json()
    assert stored["metrics"] == {name: 0.25}


@pytest.mark.parametrize(
    ("space", "field", "words"),
    [
        ({"min": "-1e308", "max": "1e308"}, "max", "too large"),
        ({"min": "0", "max": "1", "step": "1e-300"}, "step", "too small"),
    ],
)
def test_spaces_no_suggester_can_use_are_refused_at_validation(
    api: TestClient, space: dict[str, str], field: str, words: str
) -> None:
    parameters = [
        {"name": "x", "parameterType": "double", "feasibleSpace": space},
        {"name": "n", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "3"}},
    ]
    for data in (
        ask_tell_dict("space", parameters=parameters),
        experiment_dict("space", parameters=parameters),  # with a trial template
    ):
        response = _submit(api, data)
        assert response.status_code == 422, response.text
        errors = response.json()["errors"]
        assert [e["path"] for e in errors] == [f"spec.parameters[0].feasibleSpace.{field}"]
        assert words in errors[0]["message"]


def test_a_wide_but_finite_range_is_sampled(api: TestClient) -> None:
    parameters = [
        {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-8e307", "max": "8e307"}}
    ]
    assert _submit(api, ask_tell_dict("wide", parameters=parameters)).status_code == 201
    answer = api.post(f"{V1}/experiments/wide/suggestions", json={"count": 2})
    assert answer.status_code == 200, answer.text
    assert all(abs(t["parameters"]["x"]) <= 8e307 for t in answer.json()["trials"])


def test_a_patch_without_counts_or_with_a_null_parallel_count_is_422(
    api: TestClient, trial: dict[str, Any]
) -> None:
    for body in ({}, {"parallelTrialCount": None}, {"maxTrialCount": 0}):
        response = api.patch(f"{V1}/experiments/bad", json=body)
        assert response.status_code == 422, (body, response.text)
    schema = api.get("/openapi.json").json()["components"]["schemas"]["BudgetUpdate"]
    assert schema["minProperties"] == 1
    parallel = schema["properties"]["parallelTrialCount"]
    assert (parallel["type"], parallel["minimum"]) == ("integer", 1)  # null is not offered


def test_405_names_every_method_of_the_path(client: TestClient) -> None:
    for url, allowed in (
        (f"{V1}/experiments", "GET, HEAD, POST"),
        (f"{V1}/experiments/x", "DELETE, GET, HEAD, PATCH"),
        (f"{V1}/experiments/x/trials/y/observations", "GET, HEAD, POST"),
    ):
        response = client.request("PUT", url)
        assert response.status_code == 405
        assert response.headers["Allow"] == allowed


def test_resuming_a_running_experiment_is_a_conflict(client: TestClient) -> None:
    assert client.post(f"{V1}/experiments", json=ask_tell_dict("busy")).status_code == 201
    response = client.post(f"{V1}/experiments/busy/resume")
    assert response.status_code == 409
    assert "not Stopped" in response.json()["detail"]
