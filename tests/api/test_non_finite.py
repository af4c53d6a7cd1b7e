"""Non-finite metric values: stored as reported, never ranked best, shown the same everywhere.

A trial may report NaN or +-Infinity (a diverged loss). The value is kept (NaN as NULL, which
SQLite needs), the trial is never ``currentOptimalTrial`` nor ahead of a finite value in the
leaderboard, and JSON, CSV and the dashboard show ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import AUTH, V1, TestClient, ask_tell_dict, make_settings
from tuner.api.app import create_app


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tmp_path, db_url=db_url)), headers=AUTH) as c:
        yield c


def _run_trials(api: TestClient, name: str, pushes: list[list[str]]) -> list[str]:
    """One Succeeded trial per list of raw JSON ``loss`` values pushed (steps 0, 1, ...)."""
    data = ask_tell_dict(name, maxTrialCount=len(pushes), parallelTrialCount=len(pushes))
    assert api.post(f"{V1}/experiments", json=data).status_code == 201
    answer = api.post(f"{V1}/experiments/{name}/suggestions", json={"count": len(pushes)})
    trials = answer.json()["trials"]
    for trial, values in zip(trials, pushes, strict=True):
        headers = {"Authorization": f"Bearer {trial['token']}", "content-type": "application/json"}
        url = f"{V1}/experiments/{name}/trials/{trial['trial']}"
        for step, raw in enumerate(values):
            body = f'{{"step": {step}, "metrics": {{"loss": {raw}, "accuracy": {raw}}}}}'
            assert api.post(f"{url}/observations", content=body, headers=headers).status_code == 200
        done = api.post(f"{url}/complete", json={"status": "Succeeded"}, headers=headers)
        assert done.status_code == 200, done.text
    return [t["trial"] for t in trials]


def test_non_finite_objectives_are_never_the_best_and_show_as_strings(api: TestClient) -> None:
    # minimize: -Infinity would win a plain ORDER BY; 0.3 then -Infinity keeps 0.3 (min).
    names = _run_trials(
        api, "nf", [["-Infinity"], ["NaN"], ["0.5"], ["Infinity"], ["0.3", "-Infinity"]]
    )
    status = api.get(f"{V1}/experiments/nf").json()["status"]
    assert status["currentOptimalTrial"]["bestTrialName"] == names[4]
    assert {"name": "loss", "value": 0.3} in status["currentOptimalTrial"]["observation"]["metrics"]

    rows = api.get(f"{V1}/experiments/nf/leaderboard").json()
    assert [(r["trial"], r["objective"]) for r in rows] == [
        (names[4], 0.3),
        (names[2], 0.5),
        (names[0], "-Infinity"),
        (names[1], "NaN"),
        (names[3], "Infinity"),
    ]
    # accuracy's strategy is min too (the objective's direction): the same rule per metric.
    assert [r["metrics"]["accuracy"] for r in rows] == [0.3, 0.5, "-Infinity", "NaN", "Infinity"]

    by_accuracy = api.get(f"{V1}/experiments/nf/leaderboard", params={"metric": "accuracy"})
    assert [r["trial"] for r in by_accuracy.json()] == [r["trial"] for r in rows]

    # Paging crosses from the ranked values to the others without losing or repeating a row.
    pages = [
        api.get(f"{V1}/experiments/nf/leaderboard", params={"limit": 2, "offset": k}).json()
        for k in (0, 2, 4)
    ]
    assert [r["trial"] for page in pages for r in page] == [r["trial"] for r in rows]
    tail = api.get(f"{V1}/experiments/nf/leaderboard", params={"offset": 3}).json()
    assert [r["trial"] for r in tail] == [names[1], names[3]]

    text = api.get(f"{V1}/experiments/nf/leaderboard", headers={"Accept": "text/csv"}).text
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["objective"] for r in table] == ["0.3", "0.5", "-Infinity", "NaN", "Infinity"]

    trial = api.get(f"{V1}/experiments/nf/trials/{names[3]}").json()
    assert (trial["objective"], trial["metrics"]["loss"]) == ("Infinity", "Infinity")
    curve = api.get(f"{V1}/experiments/nf/trials/{names[4]}/observations").json()
    assert [p["value"] for p in curve["metrics"]["loss"]] == [0.3, "-Infinity"]

    overview = api.get(f"{V1}/overview").json()
    assert overview[0]["best"] == 0.3


def test_only_non_finite_objectives_leave_no_optimal_trial(api: TestClient) -> None:
    _run_trials(api, "nothing", [["Infinity"], ["NaN"]])
    status = api.get(f"{V1}/experiments/nothing").json()["status"]
    assert status["currentOptimalTrial"] is None
    rows = api.get(f"{V1}/experiments/nothing/leaderboard").json()
    assert [r["objective"] for r in rows] == ["Infinity", "NaN"]


def test_the_schema_names_the_strings(api: TestClient) -> None:
    schemas: dict[str, Any] = api.get("/openapi.json").json()["components"]["schemas"]
    objective = schemas["LeaderboardRowRead"]["properties"]["objective"]
    assert {"enum": ["NaN", "Infinity", "-Infinity"], "type": "string"} in objective["anyOf"]
