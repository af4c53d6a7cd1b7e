"""Several objectives and constraints through a real `tuner serve`: the /pareto answer is
exactly the non-dominated set of the stored trials; infeasible trials rank last."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.pareto_support import non_dominated, two_objective_dict
from tests.servers import Server, start_server, stop_server
from tuner.client import Client

TOKEN = "pareto-test-token"
CONSTRAINTS = [{"metricName": "size", "max": 1.0}]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("pareto")
    running = start_server(tmp, f"sqlite:///{tmp / 'pareto.db'}", TOKEN)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, TOKEN) as c:
        yield c


def _run(client: Client, name: str, **extra: object) -> None:
    client.submit(two_objective_dict(name, "nsga2", {"population_size": "4"}, **extra))
    final = client.wait(name, timeout=90, poll=0.2)
    assert final["status"]["phase"] == "Succeeded", final["status"]


def test_pareto_over_rest_is_the_non_dominated_set(server: Server, client: Client) -> None:
    _run(client, "multi")
    trials = client.trial_rows("multi")
    assert len(trials) == 12
    expected = non_dominated(trials)
    assert expected

    auth = {"Authorization": f"Bearer {TOKEN}"}
    answer = httpx.get(f"{server.url}/api/v1/experiments/multi/pareto", headers=auth)
    assert answer.status_code == 200, answer.text
    rows = answer.json()
    assert {r["trial"] for r in rows} == expected and len(rows) == len(expected)
    board = httpx.get(f"{server.url}/api/v1/experiments/multi/leaderboard", headers=auth).json()
    assert set(rows[0]) == set(board[0])  # the leaderboard's row shape

    frame = client.pareto("multi")
    assert set(frame["trial"]) == expected
    assert {"x", "y", "f1", "f2"} <= set(frame.columns)

    optimal = client.get("multi")["status"]["currentOptimalTrial"]
    assert {o["bestTrialName"] for o in optimal} == expected

    plot = httpx.get(f"{server.url}/api/v1/experiments/multi/pareto/plot", headers=auth).json()
    assert [o["metric"] for o in plot["objectives"]] == ["f1", "f2"]
    assert {p["trial"] for p in plot["points"] if p["front"]} == expected
    volumes = [h["value"] for h in plot["hypervolume"]]
    assert volumes == sorted(volumes) and volumes[-1] > 0


def test_constraints_keep_infeasible_trials_off_the_front_and_last(client: Client) -> None:
    _run(client, "limited", constraints=CONSTRAINTS)
    trials = client.trial_rows("limited")
    feasible = {t["trial"] for t in trials if t["metrics"]["size"] <= 1.0}
    assert feasible and feasible != {t["trial"] for t in trials}  # both kinds ran

    expected = non_dominated(trials, constraints=CONSTRAINTS)
    assert {r["trial"] for r in client.pareto_rows("limited")} == expected
    assert expected <= feasible

    board = client.leaderboard_rows("limited", limit=100)
    kinds = [r["trial"] in feasible for r in board]
    assert kinds == sorted(kinds, reverse=True)  # every feasible trial before any other


def test_pareto_of_an_unknown_experiment_is_404(server: Server) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    answer = httpx.get(f"{server.url}/api/v1/experiments/nope/pareto", headers=auth)
    assert answer.status_code == 404


def test_a_single_objective_experiment_keeps_katibs_status(client: Client, tmp_path: Path) -> None:
    data = two_objective_dict("single", "random", trials=4)
    del data["spec"]["objectives"]
    data["spec"]["objective"] = {"type": "minimize", "objectiveMetricName": "f1"}
    client.submit(data)
    final = client.wait("single", timeout=90, poll=0.2)
    optimal = final["status"]["currentOptimalTrial"]
    assert isinstance(optimal, dict) and optimal["bestTrialName"]
    assert final["spec"]["objective"] == {
        "type": "minimize",
        "objectiveMetricName": "f1",
        "additionalMetricNames": [],
        "metricStrategies": [],
    }
    assert "objectives" not in final["spec"]
