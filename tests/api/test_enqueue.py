"""Enqueued points over REST (in-process app) and through the Client (a real `tuner serve`),
and warm starts refused over REST with their field path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import V1, TestClient, ask_tell_dict, run_tuner
from tests.servers import start_server, stop_server
from tuner.client import Client
from tuner.errors import SpecError


def test_enqueued_points_come_first_and_bad_points_are_4xx(
    client: TestClient, submit: Callable[..., dict[str, Any]]
) -> None:
    submit(ask_tell_dict("queued", parallelTrialCount=3, maxTrialCount=6))
    url = f"{V1}/experiments/queued/enqueue"
    bad = client.post(url, json={"points": [{"x": 0.5, "n": 1}, {"x": 5, "n": "two"}]})
    assert bad.status_code == 422, bad.text
    paths = {e["path"] for e in bad.json()["errors"]}
    assert paths == {"points[1].x", "points[1].n"}
    assert client.post(url, json={"points": []}).status_code == 422
    assert client.post(url, json={"point": {"x": 1}}).status_code == 422
    assert client.post(f"{V1}/experiments/nope/enqueue", json={"points": []}).status_code in (
        404,
        422,
    )

    good = client.post(url, json={"points": [{"x": 0.25, "n": 3}, {"x": -0.5, "n": 1}]})
    assert good.status_code == 200, good.text
    assert good.json() == {"enqueued": 2, "pending": 2}
    asked = client.post(f"{V1}/experiments/queued/suggestions", json={"count": 3}).json()
    params = [t["parameters"] for t in asked["trials"]]
    assert params[:2] == [{"x": 0.25, "n": 3}, {"x": -0.5, "n": 1}]
    assert len(params) == 3  # the third is the algorithm's
    again = client.post(url, json={"points": [{"x": 1.5, "n": 2}]}).json()
    assert again == {"enqueued": 3, "pending": 1}


def test_scheduled_algorithms_refuse_enqueued_points(
    client: TestClient, submit: Callable[..., dict[str, Any]]
) -> None:
    data = ask_tell_dict("bands", parallelTrialCount=9, maxTrialCount=20)
    data["spec"]["algorithm"] = {
        "algorithmName": "hyperband",
        "algorithmSettings": [
            {"name": "resource_name", "value": "n"},
            {"name": "r_l", "value": "9"},
            {"name": "eta", "value": "3"},
        ],
    }
    data["spec"]["parameters"][1]["feasibleSpace"] = {"min": "1", "max": "9"}
    submit(data)
    response = client.post(f"{V1}/experiments/bands/enqueue", json={"points": [{"x": 0}]})
    assert response.status_code == 400, response.text
    assert "hyperband does not take enqueued points" in response.text


def test_warm_start_from_an_incompatible_experiment_is_422(
    client: TestClient, submit: Callable[..., dict[str, Any]]
) -> None:
    submit(ask_tell_dict("source"))
    narrow = ask_tell_dict("target", warmStartFrom="missing")
    response = client.post(f"{V1}/experiments", json=narrow)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["path"] == "spec.warmStartFrom"
    as_int = ask_tell_dict("target", warmStartFrom="source")
    as_int["spec"]["parameters"][0]["parameterType"] = "int"
    response = client.post(f"{V1}/experiments", json=as_int)
    assert response.status_code == 422, response.text
    assert "parameter 'x' is double in experiment source and int here" in response.text


def test_client_enqueue_against_a_real_server(tmp_path: Path) -> None:
    server = start_server(tmp_path, f"sqlite:///{tmp_path / 'enqueue.db'}")
    try:
        with Client(server.url) as client:
            _enqueue_and_ask(client)
            # The CLI, through the server and on the database: the same points, the same output.
            point = '{"x": 0.0, "n": 1}'
            remote = run_tuner("enqueue", "nb", "--point", point, "--server", server.url)
            assert remote.returncode == 0, remote.stderr
            assert remote.stdout == "experiment default/nb: 1 enqueued, 1 pending\n"
            local = run_tuner("enqueue", "nb", "--point", point, "--db", server.db_url)
            assert local.stdout == "experiment default/nb: 1 enqueued, 2 pending\n"
            bad = run_tuner("enqueue", "nb", "--point", '{"x": "a"}', "--db", server.db_url)
            assert bad.returncode == 2 and "points[0].x" in bad.stderr, bad.stderr
            for trial in client.open_trials("nb"):  # a free slot for each point
                client.tell("nb", trial, {"loss": 1.0})
            assert [t.parameters for t in client.ask("nb", 2)] == [{"x": 0.0, "n": 1}] * 2
    finally:
        stop_server(server)


def _enqueue_and_ask(client: Client) -> None:
    client.submit(ask_tell_dict("nb", parallelTrialCount=2, maxTrialCount=4))
    assert client.enqueue("nb", {"x": 1.0, "n": 2}) == {"enqueued": 1, "pending": 1}
    with pytest.raises(SpecError) as e:
        client.enqueue("nb", [{"x": 9.0, "n": 2}])
    assert [error.path for error in e.value.errors] == ["points[0].x"]
    first = client.ask("nb")[0]
    assert first.parameters == {"x": 1.0, "n": 2}
    client.tell("nb", first, {"loss": 0.5, "accuracy": 0.9})
    assert client.enqueue("nb", {"x": -1.0, "n": 1})["pending"] == 1
    assert client.ask("nb")[0].parameters == {"x": -1.0, "n": 1}
