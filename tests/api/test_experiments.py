"""The experiments API in process: submission (JSON/YAML), validation errors, auth, budget edits,
listing, stop/delete, and the OpenAPI description."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import (
    API_TOKEN,
    AUTH,
    DATA,
    V1,
    TestClient,
    ask_tell_dict,
    experiment_dict,
    make_settings,
)
from tuner.api.app import create_app
from tuner.errors import SpecError
from tuner.spec import load_spec

Submit = Callable[..., dict[str, Any]]


def errors_of(response: Any) -> list[tuple[str, str]]:
    body = response.json()
    assert set(body) == {"detail", "errors", "request_id"}, body
    return [(e["path"], e["message"]) for e in body["errors"]]


# -- auth -------------------------------------------------------------------------------------


def test_token_required_except_healthz(client: TestClient) -> None:
    anonymous = {"Authorization": ""}
    assert client.get("/healthz", headers=anonymous).json() == {"status": "ok"}

    missing = client.get(f"{V1}/experiments", headers=anonymous)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert "missing API token" in missing.json()["detail"]

    wrong = client.get(f"{V1}/experiments", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    assert wrong.json()["detail"] == "invalid API token"
    assert API_TOKEN not in wrong.text

    not_bearer = client.get(f"{V1}/experiments", headers={"Authorization": f"Basic {API_TOKEN}"})
    assert not_bearer.status_code == 401

    # Checked before anything else: an unknown experiment does not leak as 404.
    assert client.get(f"{V1}/experiments/nothing", headers=anonymous).status_code == 401
    assert client.get(f"{V1}/experiments").status_code == 200


def test_without_a_token_the_api_is_open(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, api_token=None))) as c:
        assert c.get(f"{V1}/experiments").json() == []


# -- submission and validation ----------------------------------------------------------------


def test_submit_json_answers_201_with_spec_and_katib_status(submit: Submit) -> None:
    data = ask_tell_dict("first")
    body = submit(data)
    assert body["apiVersion"] == "kubeflow.org/v1beta1" and body["kind"] == "Experiment"
    assert body["metadata"]["name"] == "first" and body["metadata"]["namespace"] == "default"
    # The spec comes back in the wire form a user writes: camelCase, no nulls.
    assert body["spec"] == load_spec(data).spec.dump()
    status = body["status"]
    assert status["phase"] == "Running"
    assert status["trials"] == 0 and status["currentOptimalTrial"] is None
    assert [c["type"] for c in status["conditions"]] == ["Created", "Running"]
    assert all(c["status"] == "True" for c in status["conditions"])


def test_submit_yaml_with_each_media_type(client: TestClient) -> None:
    for i, media in enumerate(["application/yaml", "application/x-yaml", "text/yaml"]):
        text = yaml.safe_dump(ask_tell_dict(f"yaml-{i}"))
        response = client.post(
            f"{V1}/experiments", content=text, headers={"Content-Type": f"{media}; charset=utf-8"}
        )
        assert response.status_code == 201, response.text
        assert response.json()["metadata"]["name"] == f"yaml-{i}"
    # The Katib example file, as it is.
    response = client.post(
        f"{V1}/experiments",
        content=(DATA / "katib-random.yaml").read_bytes(),
        headers={"Content-Type": "application/yaml"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["metadata"]["namespace"] == "kubeflow"
    client.post(f"{V1}/experiments/random/stop", params={"namespace": "kubeflow"})


def test_invalid_spec_gets_422_with_the_paths_tuner_validate_gives(client: TestClient) -> None:
    data = experiment_dict("bad", parallelTrialCount=0)
    data["spec"]["parameters"][0]["feasibleSpace"] = {"min": "3", "max": "1"}
    data["spec"]["objective"]["typo"] = 1
    with pytest.raises(SpecError) as expected:
        load_spec(data)
    response = client.post(f"{V1}/experiments", json=data)
    assert response.status_code == 422
    assert errors_of(response) == [(e.path, e.message) for e in expected.value.errors]
    assert ("spec.objective.typo", "unknown field") in errors_of(response)
    assert response.json()["detail"].startswith("invalid Experiment spec")

    # The semantic pass, on an otherwise well-formed spec.
    data = experiment_dict("bad", parallelTrialCount=0)
    response = client.post(f"{V1}/experiments", json=data)
    assert response.status_code == 422
    assert ("spec.parallelTrialCount", "must be greater than 0") in errors_of(response)


def test_what_the_runner_cannot_run_is_refused_at_submit(client: TestClient) -> None:
    """Valid for Katib (and tuner validate); the local runner has no sidecar for a Custom
    collector, so the service answers 422 with the reason, and stores nothing."""
    data = experiment_dict("custom")
    data["spec"]["metricsCollectorSpec"] = {
        "collector": {"kind": "Custom", "customCollector": {"name": "c", "image": "i"}}
    }
    load_spec(data)  # a valid spec
    response = client.post(f"{V1}/experiments", json=data)
    assert response.status_code == 422, response.text
    ((path, message),) = errors_of(response)
    assert path == "spec.metricsCollectorSpec.collector.kind"
    assert "local runner" in message and "sidecar" in message
    assert client.get(f"{V1}/experiments/custom").status_code == 404


@pytest.mark.parametrize(
    ("content", "media", "status", "path"),
    [
        (b"{not json", "application/json", 422, "line 1, column 2"),
        (b"a: [1", "application/yaml", 422, "line 1, column 6"),
        (b"- 1\n- 2\n", "application/yaml", 422, "<root>"),
        (b"a: &x [1]\nb: *x\n", "application/yaml", 422, "line 2, column 4"),
        (b"", "application/json", 422, "<document>"),
        (b"\xff\xfe", "application/yaml", 422, "<document>"),
        (b"tests/data/katib-random.yaml", "application/yaml", 422, "<root>"),  # never a path
        (b"<Experiment/>", "application/xml", 415, None),
    ],
)
def test_malformed_bodies_never_500(
    client: TestClient, content: bytes, media: str, status: int, path: str | None
) -> None:
    response = client.post(f"{V1}/experiments", content=content, headers={"Content-Type": media})
    assert response.status_code == status, response.text
    if path is not None:
        assert errors_of(response)[0][0] == path
    else:
        assert "unsupported Content-Type" in response.json()["detail"]


def test_duplicate_name_gets_409(client: TestClient, submit: Submit) -> None:
    submit(ask_tell_dict("twice"))
    response = client.post(f"{V1}/experiments", json=ask_tell_dict("twice"))
    assert response.status_code == 409
    assert response.json()["detail"] == "experiment default/twice already exists"
    # The same name in another namespace is another experiment.
    other = ask_tell_dict("twice")
    other["metadata"]["namespace"] = "other"
    assert submit(other)["metadata"]["namespace"] == "other"


def test_namespace_query_selects_the_namespace(client: TestClient, submit: Submit) -> None:
    data = ask_tell_dict("scoped")
    del data["metadata"]["namespace"]
    assert submit(data, namespace="team-a")["metadata"]["namespace"] == "team-a"
    assert client.get(f"{V1}/experiments/scoped", params={"namespace": "team-a"}).is_success
    missing = client.get(f"{V1}/experiments/scoped")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "experiment default/scoped not found"

    data["metadata"]["namespace"] = "team-b"
    response = client.post(f"{V1}/experiments", json=data, params={"namespace": "team-a"})
    assert response.status_code == 422
    assert errors_of(response)[0][0] == "metadata.namespace"

    bad = client.get(f"{V1}/experiments", params={"namespace": "Not_A_Label"})
    assert bad.status_code == 422
    assert errors_of(bad)[0][0] == "query.namespace"


def test_unknown_experiment_and_trial_get_404(client: TestClient, submit: Submit) -> None:
    for method, path in [
        ("GET", "/experiments/ghost"),
        ("PATCH", "/experiments/ghost"),
        ("POST", "/experiments/ghost/stop"),
        ("DELETE", "/experiments/ghost"),
        ("GET", "/experiments/ghost/trials"),
        ("GET", "/experiments/ghost/leaderboard"),
        ("GET", "/experiments/ghost/events"),
    ]:
        body = {"maxTrialCount": 3} if method == "PATCH" else None
        response = client.request(method, V1 + path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["detail"] == "experiment default/ghost not found"
    submit(ask_tell_dict("here"))
    for suffix in ("", "/observations", "/logs"):
        response = client.get(f"{V1}/experiments/here/trials/here-0042{suffix}")
        assert response.status_code == 404
        assert response.json()["detail"] == "trial here-0042 not found"
    assert client.get(f"{V1}/no/such/route").status_code == 404


# -- listing ----------------------------------------------------------------------------------


def test_list_filters_by_status_and_pages(client: TestClient, submit: Submit) -> None:
    for i in range(5):
        submit(ask_tell_dict(f"exp-{i}"))
    client.post(f"{V1}/experiments/exp-1/stop")
    client.post(f"{V1}/experiments/exp-3/stop")

    names = [e["metadata"]["name"] for e in client.get(f"{V1}/experiments").json()]
    assert sorted(names) == [f"exp-{i}" for i in range(5)]
    stopped = client.get(f"{V1}/experiments", params={"status": "Stopped"}).json()
    assert sorted(e["metadata"]["name"] for e in stopped) == ["exp-1", "exp-3"]
    assert all(e["status"]["phase"] == "Stopped" for e in stopped)

    pages = [
        client.get(f"{V1}/experiments", params={"limit": 2, "offset": offset}).json()
        for offset in (0, 2, 4)
    ]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [e["metadata"]["name"] for p in pages for e in p] == names

    bad = client.get(f"{V1}/experiments", params={"status": "Sleeping", "limit": 0})
    assert bad.status_code == 422
    assert {p for p, _ in errors_of(bad)} == {"query.status", "query.limit"}


# -- budget -----------------------------------------------------------------------------------


def test_patch_edits_the_budget_only_and_validates(client: TestClient, submit: Submit) -> None:
    submit(ask_tell_dict("budget"))
    url = f"{V1}/experiments/budget"

    response = client.patch(url, json={"maxTrialCount": 10, "parallelTrialCount": 4})
    assert response.status_code == 200, response.text
    spec = response.json()["spec"]
    assert (spec["maxTrialCount"], spec["parallelTrialCount"]) == (10, 4)
    assert client.get(url).json()["spec"]["maxTrialCount"] == 10

    # The edited spec goes through the spec's rules, with their field paths.
    response = client.patch(url, json={"parallelTrialCount": 11})
    assert response.status_code == 422
    assert errors_of(response) == [
        ("spec.parallelTrialCount", "should be less than or equal to spec.maxTrialCount")
    ]
    assert client.get(url).json()["spec"]["parallelTrialCount"] == 4  # unchanged

    for body, path in [
        ({"objective": {"type": "maximize"}}, "body.objective"),
        ({"maxTrialCount": "many"}, "body.maxTrialCount"),
        ({}, "body"),
        ({"parallelTrialCount": None}, "body"),
    ]:
        response = client.patch(url, json=body)
        assert response.status_code == 422, body
        assert errors_of(response)[0][0] == path

    # null removes a limit.
    response = client.patch(url, json={"maxFailedTrialCount": None})
    assert response.status_code == 200
    assert "maxFailedTrialCount" not in response.json()["spec"]


# -- stop and delete --------------------------------------------------------------------------


def test_stop_kills_running_trials_and_delete_removes(client: TestClient, submit: Submit) -> None:
    submit(ask_tell_dict("doomed"))
    asked = client.post(f"{V1}/experiments/doomed/suggestions", json={"count": 2}).json()
    assert [t["status"] for t in asked["trials"]] == ["Running", "Running"]

    response = client.post(f"{V1}/experiments/doomed/stop")
    assert response.status_code == 200
    status = response.json()["status"]
    assert status["phase"] == "Stopped" and status["reason"] == "ExperimentStopped"
    assert status["trialCounts"]["Killed"] == 2
    assert status["conditions"][-1]["type"] == "Stopped"
    trials = client.get(f"{V1}/experiments/doomed/trials").json()
    assert {t["status"] for t in trials} == {"Killed"}
    assert {t["conditions"][-1]["reason"] for t in trials} == {"ExperimentStopped"}
    # Stopping again leaves it as it is.
    assert client.post(f"{V1}/experiments/doomed/stop").json()["status"]["phase"] == "Stopped"

    response = client.delete(f"{V1}/experiments/doomed")
    assert response.status_code == 204 and response.content == b""
    assert client.get(f"{V1}/experiments/doomed").status_code == 404
    submit(ask_tell_dict("doomed"))  # the name is free again


def test_stop_and_delete_a_running_controller_experiment(
    client: TestClient, submit: Submit
) -> None:
    data = experiment_dict("slow", maxTrialCount=4, parallelTrialCount=2)
    command = data["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"]
    command[0]["command"] += ["--sleep=30", "--steps=5"]
    submit(data)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        trials = client.get(f"{V1}/experiments/slow/trials").json()
        if len(trials) == 2 and all(t["steps"] >= 1 for t in trials):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the trials never reported a first step")
    log = client.get(f"{V1}/experiments/slow/trials/slow-0000/logs")
    assert log.status_code == 200 and log.headers["content-type"].startswith("text/plain")
    assert "loss=" in log.text

    status = client.post(f"{V1}/experiments/slow/stop").json()["status"]
    assert status["phase"] == "Stopped"
    assert status["trialCounts"]["Killed"] == 2 and status["trials"] == 2
    assert client.delete(f"{V1}/experiments/slow").status_code == 204


def wait_for_phase(client: TestClient, name: str, seconds: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status: dict[str, Any] = client.get(f"{V1}/experiments/{name}").json()["status"]
        if status["phase"] != "Running":
            return status
        time.sleep(0.05)
    pytest.fail(f"experiment {name} is still Running after {seconds}s")


def test_raising_max_trial_count_restarts_the_controller(
    client: TestClient, submit: Submit
) -> None:
    submit(
        experiment_dict(
            "again",
            maxTrialCount=1,
            parallelTrialCount=1,
            maxFailedTrialCount=0,
            resumePolicy="LongRunning",
        )
    )
    status = wait_for_phase(client, "again")
    assert status["phase"] == "Succeeded" and status["trials"] == 1
    response = client.patch(f"{V1}/experiments/again", json={"maxTrialCount": 3})
    assert response.json()["status"]["phase"] == "Running"
    status = wait_for_phase(client, "again")
    assert status["phase"] == "Succeeded" and status["reason"] == "ExperimentMaxTrialsReached"
    assert status["trialCounts"]["Succeeded"] == 3


# -- restart ----------------------------------------------------------------------------------


def test_start_resumes_running_experiments(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    from tuner.storage import Repository, make_engine
    from tuner.trials import ExperimentPhase

    # A server stopped while this experiment was Running, with no trial yet.
    repo = Repository(make_engine(settings.db_url))
    record = repo.create_experiment(load_spec(experiment_dict("resumed", maxTrialCount=2)))
    repo.set_phase(record.id, ExperimentPhase.RUNNING)
    repo.engine.dispose()

    with TestClient(create_app(settings), headers=AUTH) as c:
        status = wait_for_phase(c, "resumed")
        assert status["phase"] == "Succeeded", status
        assert status["trialCounts"]["Succeeded"] == 2


# -- OpenAPI ----------------------------------------------------------------------------------


def test_openapi_describes_every_endpoint_with_typed_models(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operations = {
        (method.upper(), path): op
        for path, item in schema["paths"].items()
        for method, op in item.items()
    }
    assert set(operations) == {
        ("GET", "/healthz"),
        ("POST", "/api/v1/experiments"),
        ("GET", "/api/v1/experiments"),
        ("GET", "/api/v1/experiments/{name}"),
        ("PATCH", "/api/v1/experiments/{name}"),
        ("DELETE", "/api/v1/experiments/{name}"),
        ("POST", "/api/v1/experiments/{name}/stop"),
        ("POST", "/api/v1/experiments/{name}/resume"),
        ("GET", "/api/v1/experiments/{name}/trials"),
        ("GET", "/api/v1/experiments/{name}/trials/{trial}"),
        ("GET", "/api/v1/experiments/{name}/trials/{trial}/observations"),
        ("POST", "/api/v1/experiments/{name}/trials/{trial}/observations"),
        ("POST", "/api/v1/experiments/{name}/trials/{trial}/complete"),
        ("GET", "/api/v1/experiments/{name}/trials/{trial}/logs"),
        ("POST", "/api/v1/experiments/{name}/suggestions"),
        ("GET", "/api/v1/experiments/{name}/suggestions"),
        ("POST", "/api/v1/experiments/{name}/enqueue"),
        ("GET", "/api/v1/experiments/{name}/leaderboard"),
        ("GET", "/api/v1/experiments/{name}/events"),
        # the dashboard's aggregates (tuner/api/routes/plots.py)
        ("GET", "/api/v1/overview"),
        ("GET", "/api/v1/experiments/{name}/plots/history"),
        ("GET", "/api/v1/experiments/{name}/plots/parallel"),
        ("GET", "/api/v1/experiments/{name}/plots/curves"),
        ("GET", "/api/v1/experiments/{name}/plots/importance"),
        ("GET", "/api/v1/experiments/{name}/trials/{trial}/tail"),
        # several objectives (tuner/api/routes/pareto.py)
        ("GET", "/api/v1/experiments/{name}/pareto"),
        ("GET", "/api/v1/experiments/{name}/pareto/plot"),
    }
    components = schema["components"]["schemas"]

    def resolved(ref_holder: dict[str, Any]) -> dict[str, Any]:
        ref = ref_holder.get("$ref") or ref_holder.get("items", {}).get("$ref")
        assert ref, ref_holder
        target: dict[str, Any] = components[ref.rsplit("/", 1)[1]]
        return target

    for (method, path), op in operations.items():
        success = next(v for k, v in op["responses"].items() if k.startswith("2"))
        if method == "DELETE":
            assert "content" not in success or not success["content"]
            continue
        content = success["content"]
        if path.endswith("/events"):
            item = content["text/event-stream"]["itemSchema"]["properties"]["data"]
            assert resolved(item["contentSchema"])["title"] == "EventRead"
        elif path.endswith("/logs"):
            assert content["text/plain"]["schema"]["type"] == "string"
        else:
            assert resolved(content["application/json"]["schema"]), (method, path)
        if path.startswith("/api/"):
            for code in ("401", "403", "422"):
                error = op["responses"][code]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/ErrorRead"}, (method, path, code)
        names = [p["name"] for p in op.get("parameters", [])]
        assert len(names) == len(set(names)), (method, path, names)
        if method in ("POST", "PATCH") and not path.endswith(("/stop", "/resume")):
            body = op["requestBody"]["content"]["application/json"]["schema"]
            assert resolved(body), (method, path)

    submit_body = operations[("POST", "/api/v1/experiments")]["requestBody"]["content"]
    assert set(submit_body) == {"application/json", "application/yaml"}
    experiment = resolved(submit_body["application/json"]["schema"])
    assert set(experiment["required"]) == {"metadata", "spec"}
    assert "ExperimentSpec" in components and "ParameterSpec" in components
    leaderboard = operations[("GET", "/api/v1/experiments/{name}/leaderboard")]
    assert "text/csv" in leaderboard["responses"]["200"]["content"]
    push = operations[("POST", "/api/v1/experiments/{name}/trials/{trial}/observations")]
    assert {"TrialToken"} <= {name for s in push["security"] for name in s}
