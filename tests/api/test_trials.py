"""Trials through the API in process: ask/tell, pushes with trial tokens, completion, the
leaderboard (JSON, CSV, paging, filters) and the trial views."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import API_TOKEN, SECRET, V1, TestClient, ask_tell_dict
from tuner.tokens import derive_trial_token

Submit = Callable[..., dict[str, Any]]


def ask(client: TestClient, name: str, count: int) -> dict[str, Any]:
    response = client.post(f"{V1}/experiments/{name}/suggestions", json={"count": count})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def push(
    client: TestClient,
    name: str,
    trial: str,
    token: str | None,
    metrics: dict[str, float],
    step: int | None = None,
    header: str = "Authorization",
) -> Any:
    headers = {"Authorization": ""}
    if token is not None:
        headers[header] = f"Bearer {token}" if header == "Authorization" else token
    return client.post(
        f"{V1}/experiments/{name}/trials/{trial}/observations",
        json={"step": step, "metrics": metrics},
        headers=headers,
    )


def complete(
    client: TestClient, name: str, trial: dict[str, Any], metrics: dict[str, float], **body: Any
) -> Any:
    return client.post(
        f"{V1}/experiments/{name}/trials/{trial['trial']}/complete",
        json={"status": "Succeeded", "metrics": metrics, **body},
        headers={"Authorization": "", "X-Tuner-Trial-Token": trial["token"]},
    )


def test_suggestions_respect_parallel_and_max_trial_count(
    client: TestClient, submit: Submit
) -> None:
    submit(ask_tell_dict("budget", parallelTrialCount=2, maxTrialCount=3))
    first = ask(client, "budget", 5)
    assert [t["trial"] for t in first["trials"]] == ["budget-0000", "budget-0001"]
    assert first["message"] == (
        "created 2 of 5: parallelTrialCount (2) trials are running; complete some first"
    )
    for t in first["trials"]:
        assert t["status"] == "Running" and set(t["parameters"]) == {"x", "n"}
        assert -2 <= t["parameters"]["x"] <= 2 and t["parameters"]["n"] in (1, 2, 3)
        uid = client.app.state.service.repo.get_experiment("default", "budget").uid
        assert t["token"] == derive_trial_token(SECRET, uid, t["trial"])
        assert [c["type"] for c in t["conditions"]] == ["Created", "Running"]

    full = ask(client, "budget", 1)
    assert full["trials"] == [] and full["phase"] == "Running"
    assert full["message"] == (
        "no room for new trials: parallelTrialCount (2) trials are running; complete some first"
    )

    assert complete(client, "budget", first["trials"][0], {"loss": 0.5}).status_code == 200
    third = ask(client, "budget", 5)
    assert [t["trial"] for t in third["trials"]] == ["budget-0002"]
    assert third["message"] == "created 1 of 5: maxTrialCount (3) trials exist"
    assert ask(client, "budget", 1)["trials"] == []

    for t in [first["trials"][1], third["trials"][0]]:
        assert complete(client, "budget", t, {"loss": 1.0}).status_code == 200
    done = ask(client, "budget", 1)
    assert done["trials"] == [] and done["phase"] == "Succeeded"
    status = client.get(f"{V1}/experiments/budget").json()["status"]
    assert status["reason"] == "ExperimentMaxTrialsReached"
    assert status["currentOptimalTrial"]["bestTrialName"] == "budget-0000"


def test_trial_tokens_are_per_trial(client: TestClient, submit: Submit) -> None:
    submit(ask_tell_dict("tokens"))
    a, b = ask(client, "tokens", 2)["trials"]

    missing = push(client, "tokens", a["trial"], None, {"loss": 1.0})
    assert missing.status_code == 401
    assert "missing trial token" in missing.json()["detail"]

    wrong = push(client, "tokens", a["trial"], b["token"], {"loss": 1.0})
    assert wrong.status_code == 403
    assert wrong.json()["detail"] == (
        f"invalid token for trial {a['trial']}: a trial may only report for itself"
    )
    assert b["token"] not in wrong.text
    forged = push(
        client, "tokens", a["trial"], "0" * 64, {"loss": 1.0}, header="X-Tuner-Trial-Token"
    )
    assert forged.status_code == 403
    # A trial token opens nothing else.
    other = client.get(f"{V1}/experiments", headers={"Authorization": f"Bearer {a['token']}"})
    assert other.status_code == 403

    assert push(client, "tokens", a["trial"], a["token"], {"loss": 1.0}).status_code == 200
    via_header = push(
        client, "tokens", a["trial"], a["token"], {"loss": 0.9}, header="X-Tuner-Trial-Token"
    )
    assert via_header.status_code == 200
    # The API token may act for any trial.
    assert push(client, "tokens", b["trial"], API_TOKEN, {"loss": 2.0}).status_code == 200
    # Complete needs the token too.
    response = client.post(
        f"{V1}/experiments/tokens/trials/{a['trial']}/complete",
        json={"status": "Succeeded"},
        headers={"Authorization": f"Bearer {b['token']}"},
    )
    assert response.status_code == 403


def test_push_steps_idempotence_and_should_stop(client: TestClient, submit: Submit) -> None:
    submit(ask_tell_dict("steps"))
    (t,) = ask(client, "steps", 1)["trials"]
    name, token = t["trial"], t["token"]

    def values(metric: str) -> list[tuple[int, float | None]]:
        url = f"{V1}/experiments/steps/trials/{name}/observations"
        curves = client.get(url, params={"metric": metric}).json()["metrics"]
        return [(p["step"], p["value"]) for p in curves.get(metric, [])]

    assert push(client, "steps", name, token, {"loss": 3.0}).json() == {
        "should_stop": False,
        "ignored": [],
    }
    push(client, "steps", name, token, {"loss": 2.0, "accuracy": 0.5})
    push(client, "steps", name, token, {"loss": 1.5}, step=7)
    push(client, "steps", name, token, {"loss": 1.0})  # after an explicit step: 8
    assert values("loss") == [(0, 3.0), (1, 2.0), (7, 1.5), (8, 1.0)]
    assert values("accuracy") == [(0, 0.5)]  # each metric counts its own steps

    # A retried push of a step is ignored, not stored twice.
    retry = push(client, "steps", name, token, {"loss": 99.0}, step=7)
    assert retry.status_code == 200
    assert values("loss") == [(0, 3.0), (1, 2.0), (7, 1.5), (8, 1.0)]

    ignored = push(client, "steps", name, token, {"lr": 0.1, "loss": 0.9}, step=9)
    assert ignored.json() == {"should_stop": False, "ignored": ["lr"]}

    for body in ({"metrics": {}}, {"step": -1, "metrics": {"loss": 1}}, {"metrics": {"loss": "x"}}):
        response = client.post(
            f"{V1}/experiments/steps/trials/{name}/observations",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 422, body

    trial = client.get(f"{V1}/experiments/steps/trials/{name}").json()
    assert trial["objective"] == 0.9 and trial["steps"] == 5
    assert trial["metrics"] == {"accuracy": 0.5, "loss": 0.9}

    complete(client, "steps", t, {"loss": 0.8})
    # A finished trial is told to stop and its late values are not stored.
    late = push(client, "steps", name, token, {"loss": 0.1}, step=20)
    assert late.json()["should_stop"] is True
    assert (20, 0.1) not in values("loss")


def test_complete_stores_final_metrics_and_sets_the_state(
    client: TestClient, submit: Submit
) -> None:
    submit(ask_tell_dict("finish", maxTrialCount=4, maxFailedTrialCount=3, parallelTrialCount=4))
    good, silent, broken, spare = ask(client, "finish", 4)["trials"]
    push(client, "finish", good["trial"], good["token"], {"loss": 2.0}, step=4)

    response = complete(client, "finish", good, {"loss": 0.25, "accuracy": 0.8})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "Succeeded" and body["objective"] == 0.25
    assert body["conditions"][-1]["type"] == "Succeeded"
    curve = client.get(f"{V1}/experiments/finish/trials/{good['trial']}/observations").json()
    assert [(p["step"], p["value"]) for p in curve["metrics"]["loss"]] == [(4, 2.0), (5, 0.25)]
    assert [p["step"] for p in curve["metrics"]["accuracy"]] == [5]

    body = complete(client, "finish", silent, {"accuracy": 0.9}).json()
    assert body["status"] == "MetricsUnavailable"
    assert body["reason"] == "the trial succeeded but never reported `loss`"

    body = complete(client, "finish", broken, {}, status="Failed", message="CUDA OOM").json()
    assert body["status"] == "Failed" and body["reason"] == "CUDA OOM"

    again = complete(client, "finish", good, {"loss": 0.1})
    assert again.status_code == 409
    assert again.json()["detail"] == f"trial {good['trial']} has already finished (Succeeded)"

    unknown = complete(client, "finish", spare, {"los": 0.1})
    assert unknown.status_code == 422
    assert unknown.json()["errors"] == [
        {"path": "metrics.los", "message": "not a metric of the objective (loss, accuracy)"}
    ]
    bad_status = complete(client, "finish", spare, {}, status="Done")
    assert bad_status.status_code == 422


def test_goal_reached_ends_and_kills_the_rest(client: TestClient, submit: Submit) -> None:
    data = ask_tell_dict("goal", parallelTrialCount=3, maxTrialCount=10)
    data["spec"]["objective"]["goal"] = 0.1
    submit(data)
    a, b, c = ask(client, "goal", 3)["trials"]
    complete(client, "goal", a, {"loss": 0.5})
    assert client.get(f"{V1}/experiments/goal").json()["status"]["phase"] == "Running"
    complete(client, "goal", b, {"loss": 0.05})
    status = client.get(f"{V1}/experiments/goal").json()["status"]
    assert status["phase"] == "Succeeded" and status["reason"] == "ExperimentGoalReached"
    killed = client.get(f"{V1}/experiments/goal/trials/{c['trial']}").json()
    assert killed["status"] == "Killed"
    assert push(client, "goal", c["trial"], c["token"], {"loss": 1.0}).json()["should_stop"]


def test_raising_max_trial_count_resumes_a_finished_experiment(
    client: TestClient, submit: Submit
) -> None:
    submit(
        ask_tell_dict(
            "more",
            parallelTrialCount=1,
            maxTrialCount=1,
            maxFailedTrialCount=0,
            resumePolicy="LongRunning",
        )
    )
    (t,) = ask(client, "more", 1)["trials"]
    complete(client, "more", t, {"loss": 1.0})
    assert client.get(f"{V1}/experiments/more").json()["status"]["phase"] == "Succeeded"

    # As in Katib, an edit must leave maxTrialCount above the number of trials.
    response = client.patch(f"{V1}/experiments/more", json={"parallelTrialCount": 1})
    assert response.status_code == 422, response.text
    assert "spec.maxTrialCount" in response.text
    assert client.get(f"{V1}/experiments/more").json()["status"]["phase"] == "Succeeded"

    response = client.patch(f"{V1}/experiments/more", json={"maxTrialCount": 2})
    status = response.json()["status"]
    assert status["phase"] == "Running"
    assert status["message"] == "maxTrialCount raised from 1 to 2"
    (second,) = ask(client, "more", 1)["trials"]
    assert second["trial"] == "more-0001"
    complete(client, "more", second, {"loss": 0.5})
    status = client.get(f"{V1}/experiments/more").json()["status"]
    assert status["phase"] == "Succeeded" and status["trialCounts"]["Succeeded"] == 2


def test_resume_policy_never_keeps_a_finished_experiment_finished(
    client: TestClient, submit: Submit
) -> None:
    """Katib's default resumePolicy, Never: a finished experiment cannot be continued."""
    submit(ask_tell_dict("never", parallelTrialCount=1, maxTrialCount=1, maxFailedTrialCount=0))
    (t,) = ask(client, "never", 1)["trials"]
    complete(client, "never", t, {"loss": 1.0})
    response = client.patch(f"{V1}/experiments/never", json={"maxTrialCount": 2})
    assert response.status_code == 422, response.text
    assert "spec.resumePolicy" in response.text and "LongRunning" in response.text
    status = client.get(f"{V1}/experiments/never").json()["status"]
    assert status["phase"] == "Succeeded" and status["reason"] == "ExperimentMaxTrialsReached"
    assert client.get(f"{V1}/experiments/never").json()["spec"]["maxTrialCount"] == 1


def test_exhausted_search_space_ends_the_experiment(client: TestClient, submit: Submit) -> None:
    data = ask_tell_dict(
        "grid",
        algorithm={"algorithmName": "grid"},
        maxTrialCount=10,
        parameters=[
            {"name": "c", "parameterType": "categorical", "feasibleSpace": {"list": ["a", "b"]}}
        ],
    )
    submit(data)
    trials = ask(client, "grid", 2)["trials"]
    assert sorted(t["parameters"]["c"] for t in trials) == ["a", "b"]
    waiting = ask(client, "grid", 1)
    assert waiting["trials"] == [] and waiting["phase"] == "Running"
    for t in trials:
        complete(client, "grid", t, {"loss": 1.0})
    done = ask(client, "grid", 1)
    assert done["trials"] == [] and done["phase"] == "Succeeded"
    status = client.get(f"{V1}/experiments/grid").json()["status"]
    assert status["reason"] == "ExperimentSuggestionEndReached"


def test_suggestions_need_an_ask_tell_experiment(client: TestClient, submit: Submit) -> None:
    from tests.helpers import experiment_dict

    submit(
        experiment_dict("templated", maxTrialCount=1, parallelTrialCount=1, maxFailedTrialCount=0)
    )
    response = client.post(f"{V1}/experiments/templated/suggestions", json={"count": 1})
    assert response.status_code == 400
    assert "has a trialTemplate" in response.json()["detail"]
    assert (
        client.post(f"{V1}/experiments/templated/suggestions", json={"count": 0}).status_code == 422
    )
    client.post(f"{V1}/experiments/templated/stop")


# -- reading trials and the leaderboard -------------------------------------------------------


@pytest.fixture
def finished(client: TestClient, submit: Submit) -> list[dict[str, Any]]:
    """An ask/tell experiment "board" with 6 trials: 4 succeeded, 1 failed, 1 running."""
    submit(ask_tell_dict("board", parallelTrialCount=6, maxTrialCount=8, maxFailedTrialCount=3))
    trials = ask(client, "board", 6)["trials"]
    losses = [0.4, 0.1, 0.3, 0.2]
    for t, loss in zip(trials[:4], losses, strict=True):
        assert complete(client, "board", t, {"loss": loss, "accuracy": 1 - loss}).is_success
    complete(client, "board", trials[4], {}, status="Failed")
    push(client, "board", trials[5]["trial"], trials[5]["token"], {"loss": 0.05})
    return trials


def test_leaderboard_orders_best_first_with_paging_and_filters(
    client: TestClient, finished: list[dict[str, Any]]
) -> None:
    url = f"{V1}/experiments/board/leaderboard"
    # By default only trials that finished with their metrics are ranked.
    ranked = client.get(url).json()
    assert [r["objective"] for r in ranked] == [0.1, 0.2, 0.3, 0.4]
    rows = client.get(url, params={"status": "all"}).json()
    # The running trial has the best loss so far; trials without the objective come last.
    assert [r["objective"] for r in rows] == [0.05, 0.1, 0.2, 0.3, 0.4, None]
    assert [r["trial"] for r in rows[:2]] == ["board-0005", "board-0001"]
    assert set(rows[1]) == {
        "trial",
        "status",
        "parameters",
        "objective",
        "metrics",
        "steps",
        "reason",
    }
    assert rows[-1]["status"] == "Failed" and rows[-1]["reason"]

    succeeded = client.get(url, params={"status": ["Succeeded"]}).json()
    assert [r["objective"] for r in succeeded] == [0.1, 0.2, 0.3, 0.4]
    both = client.get(url, params={"status": ["Succeeded", "Failed"]}).json()
    assert len(both) == 5
    assert client.get(url, params={"status": "succeeded,Failed"}).json() == both

    pages = [
        client.get(url, params={"limit": 2, "offset": o, "status": "all"}).json() for o in (0, 2, 4)
    ]
    assert [r["trial"] for p in pages for r in p] == [r["trial"] for r in rows]

    # By another metric, in that metric's direction (accuracy follows the objective: min).
    by_accuracy = client.get(url, params={"metric": "accuracy", "status": "Succeeded"}).json()
    assert [r["metrics"]["accuracy"] for r in by_accuracy] == pytest.approx([0.6, 0.7, 0.8, 0.9])
    unknown = client.get(url, params={"metric": "nope"})
    assert unknown.status_code == 400
    assert unknown.json()["detail"] == (
        "unknown metric 'nope': the experiment's metrics are loss, accuracy"
    )
    sleeping = client.get(url, params={"status": "Sleeping"})
    assert sleeping.status_code == 400
    assert "unknown trial state 'Sleeping'" in sleeping.json()["detail"]
    assert "Succeeded" in sleeping.json()["detail"]


def test_leaderboard_as_csv(client: TestClient, finished: list[dict[str, Any]]) -> None:
    url = f"{V1}/experiments/board/leaderboard"
    response = client.get(url, params={"status": "Succeeded"}, headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    records = list(csv.DictReader(io.StringIO(response.text)))
    header = response.text.splitlines()[0].split(",")
    assert header == [
        "trial",
        "status",
        "objective",
        "x",
        "n",
        "loss",
        "accuracy",
        "steps",
        "reason",
    ]
    json_rows = client.get(url, params={"status": "Succeeded"}).json()
    assert [r["trial"] for r in records] == [r["trial"] for r in json_rows]
    for record, row in zip(records, json_rows, strict=True):
        assert float(record["x"]) == row["parameters"]["x"]
        assert int(record["n"]) == row["parameters"]["n"]
        assert float(record["loss"]) == row["metrics"]["loss"] == float(record["objective"])
        assert record["reason"] == ""


def test_trials_list_state_filter_paging_and_views(
    client: TestClient, finished: list[dict[str, Any]]
) -> None:
    url = f"{V1}/experiments/board/trials"
    trials = client.get(url).json()
    assert [t["number"] for t in trials] == list(range(6))
    assert [t["status"] for t in trials] == ["Succeeded"] * 4 + ["Failed", "Running"]
    running = client.get(url, params={"state": "Running"}).json()
    assert [t["trial"] for t in running] == ["board-0005"]
    both = client.get(url, params={"state": ["Running", "Failed"]}).json()
    assert [t["trial"] for t in both] == ["board-0004", "board-0005"]
    page = client.get(url, params={"limit": 2, "offset": 3}).json()
    assert [t["number"] for t in page] == [3, 4]

    one = client.get(f"{url}/board-0001").json()
    assert one["parameters"] == finished[1]["parameters"]
    assert one["metrics"] == {"accuracy": 0.9, "loss": 0.1}
    assert [c["type"] for c in one["conditions"]] == ["Created", "Running", "Succeeded"]
    assert [c["status"] for c in one["conditions"]] == ["True", "False", "True"]
    assert one["createdAt"] and one["startedAt"] and one["finishedAt"]
    assert "token" not in one

    logs = client.get(f"{url}/board-0001/logs")
    assert logs.status_code == 404
    assert "does not run on this server" in logs.json()["detail"]
