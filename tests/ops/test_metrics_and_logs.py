"""A real `tuner serve --log-format json` runs an experiment (pushed metrics, early stopping):
``/metrics`` is scraped while it runs and after, and its numbers are checked against the
database; the server's log is one JSON event per line with experiment, trial, replica and
request id; a request id comes back in the header and in error bodies."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import push_stopping_spec
from tests.servers import Server, start_server, stop_server
from tests.waiting import wait_for
from tuner.storage import Repository, make_engine
from tuner.trials import TrialState

pytestmark = pytest.mark.timeout(300)
REPLICA = "replica-under-test"
NAME = "scraped"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("ops-metrics")
    running = start_server(
        tmp,
        f"sqlite:///{tmp / 'ops.db'}",
        args=["--log-format", "json", "--replica-id", REPLICA],
        env={"PYTHONUNBUFFERED": "1"},
    )
    yield running
    stop_server(running)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: Server) -> Samples:
    answer = httpx.get(f"{server.url}/metrics", timeout=60)  # no token: open like /healthz
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def phase(server: Server) -> str:
    answer = httpx.get(f"{server.url}/api/v1/experiments/{NAME}", timeout=60)
    return str(answer.json()["status"]["phase"])


def test_metrics_match_the_database_during_and_after_a_run(server: Server) -> None:
    spec = push_stopping_spec(NAME, steps=10)
    answer = httpx.post(
        f"{server.url}/api/v1/experiments",
        content=yaml.safe_dump(spec),
        headers={"Content-Type": "application/yaml"},
        timeout=60,
    )
    assert answer.status_code == 201, answer.text

    # While it runs: one Running experiment, whose lease this replica holds.
    def running_scrape() -> Samples | None:
        samples = scrape(server)
        started = value(samples, "tuner_trials_started_total", namespace="default")
        return samples if started >= 1 and phase(server) == "Running" else None

    during = wait_for(running_scrape, "a scrape while trials run", timeout=120, interval=0.2)
    assert value(during, "katib_experiments_current", namespace="default", status="Running") == 1
    assert value(during, "tuner_leases_held", replica=REPLICA) == 1
    assert ("tuner_write_queue_depth", frozenset()) in during

    wait_for(lambda: phase(server) == "Succeeded", "the experiment's end", timeout=240)
    after = scrape(server)

    repo = Repository(make_engine(server.db_url))
    try:
        record = repo.get_experiment("default", NAME)
        trials = repo.trials(record.id)
        observations = sum(len(repo.observations(record.id, t.name)) for t in trials)
    finally:
        repo.engine.dispose()
    states = Counter(t.state for t in trials)
    assert states[TrialState.EARLY_STOPPED] >= 1, states  # the run exercises every counter

    ns = {"namespace": "default"}
    assert value(after, "katib_experiment_created_total", **ns) == 1
    assert value(after, "katib_experiment_succeeded_total", **ns) == 1
    assert value(after, "katib_experiments_current", status="Succeeded", **ns) == 1
    assert value(after, "tuner_trials_started_total", **ns) == len(trials)
    for state in TrialState:
        if state.finished:
            ended = value(after, "tuner_trials_ended_total", state=state.value, **ns)
            assert ended == states[state], (state, ended, states)
        assert value(after, "katib_trials_current", status=state.value, **ns) == states[state]
    assert value(after, "katib_trial_succeeded_total", **ns) == states[TrialState.SUCCEEDED]
    assert value(after, "katib_trial_failed_total", **ns) == states[TrialState.FAILED]
    assert (
        value(after, "tuner_trials_early_stopped_total", **ns) == states[TrialState.EARLY_STOPPED]
    )
    assert value(after, "tuner_observations_ingested_total") == observations
    assert value(after, "tuner_report_seconds_count") >= len(trials)  # >= one push each
    assert value(after, "tuner_suggestion_seconds_count", mode="controller") >= 1
    assert value(after, "tuner_leases_held", replica=REPLICA) == 0  # released at the end
    assert value(after, "tuner_write_queue_depth") == 0
    assert not any(name.startswith("tuner_kubernetes") for name, _ in after)  # local runner


def events(server: Server) -> list[dict[str, Any]]:
    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a log line that is not one JSON event: {line!r}")
    return parsed


def test_the_log_is_one_json_event_per_line_with_context_fields(server: Server) -> None:
    if phase(server) != "Succeeded":
        test_metrics_match_the_database_during_and_after_a_run(server)
    logged = events(server)
    assert all({"time", "level", "logger", "message"} <= set(e) for e in logged), logged[:3]
    assert all(e.get("replica") == REPLICA for e in logged), logged[:3]
    ours = [e for e in logged if e.get("experiment") == f"default/{NAME}"]
    assert any("ended Succeeded" in e["message"] and "trial" not in e for e in ours), ours
    ended = [e for e in ours if "trial" in e and " ended " in e["message"]]
    assert ended and all(e["trial"] in e["message"] for e in ended), ended


def test_a_request_id_is_echoed_logged_and_in_error_answers(server: Server) -> None:
    given = "ops-req-42"
    answer = httpx.get(
        f"{server.url}/api/v1/experiments/no-such-experiment",
        headers={"X-Request-ID": given},
        timeout=60,
    )
    assert answer.status_code == 404
    assert answer.headers["x-request-id"] == given
    assert answer.json()["request_id"] == given

    made = httpx.get(f"{server.url}/api/v1/experiments", timeout=60)
    assert made.status_code == 200 and len(made.headers["x-request-id"]) >= 16
    odd = "a b <script>"
    unsafe = httpx.get(f"{server.url}/healthz", headers={"X-Request-ID": odd}, timeout=60)
    assert unsafe.headers["x-request-id"] not in (odd, "")  # replaced, never echoed

    def access_line() -> dict[str, Any] | None:
        return next(
            (
                e
                for e in events(server)
                if e["logger"] == "uvicorn.access" and e.get("request_id") == given
            ),
            None,
        )

    line = wait_for(access_line, "the access log line of the request")
    assert "/api/v1/experiments/no-such-experiment" in line["message"] and "404" in line["message"]
