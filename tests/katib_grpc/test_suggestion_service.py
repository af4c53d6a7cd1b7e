"""External algorithms over Katib's Suggestion API: a `tuner serve` whose experiment's
algorithm is served by a second process, `tuner suggestion-service` (real gRPC both ways)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import command, experiment_dict, run_tuner
from tests.katib_grpc.services import require_grpc, suggestion_service
from tests.servers import Server, free_port, start_server, stop_server
from tests.waiting import wait_for
from tuner.client import Client
from tuner.storage import Repository, make_engine

require_grpc()

GRID = [
    {"name": "x", "parameterType": "discrete", "feasibleSpace": {"list": ["0.5", "1.5", "-1"]}},
    {"name": "n", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "2"}},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `tuner serve` for the module (each test names its own experiment)."""
    tmp = tmp_path_factory.mktemp("serve")
    running = start_server(tmp, f"sqlite:///{tmp / 'serve.db'}")
    yield running
    stop_server(running)


def served(name: str, address: str, *extra: dict[str, str], **spec: Any) -> dict[str, Any]:
    settings = [{"name": "suggestionServiceAddress", "value": address}, *extra]
    algorithm = {"algorithmName": "remote-grid", "algorithmSettings": settings}
    return experiment_dict(name, algorithm=algorithm, **spec)


def test_an_experiment_runs_on_an_algorithm_served_by_another_tuner(
    server: Server, tmp_path: Path
) -> None:
    with suggestion_service(tmp_path, "grid") as address:
        data = served("remote", address, parameters=GRID, maxTrialCount=6, maxFailedTrialCount=0)
        response = httpx.post(f"{server.url}/api/v1/experiments", json=data)
        assert response.status_code == 201, response.text
        with Client(server.url) as client:
            final = client.wait("remote", timeout=90, poll=0.2, progress=False)
            status = final["status"]
            assert status["phase"] == "Succeeded", status
            assert status["trialCounts"]["Succeeded"] == 6
            trials = client.trials("remote")
    # "remote-grid" is no algorithm of tuner's: the points came over gRPC, the whole grid
    # (3 x 2 points), each once, typed as the space says.
    points = sorted(zip(trials["x"], trials["n"], strict=True))
    assert points == sorted((x, n) for x in (0.5, 1.5, -1.0) for n in (1, 2))
    assert all(isinstance(n, int) for n in trials["n"])
    best = status["currentOptimalTrial"]["parameterAssignments"]
    assert {a["name"]: a["value"] for a in best}["x"] == 0.5


def test_a_bad_setting_is_refused_through_validate_algorithm_settings(
    server: Server, tmp_path: Path
) -> None:
    with suggestion_service(tmp_path, "random") as address:
        bad = {"name": "random_state", "value": "seven"}
        data = served("refused", address, bad, parameters=GRID)
        response = httpx.post(f"{server.url}/api/v1/experiments", json=data)
    assert response.status_code == 422, response.text
    text = response.text
    assert "spec.algorithm.algorithmSettings[0].value" in text
    assert "INVALID_ARGUMENT" in text and "random_state" in text and "seven" in text
    assert httpx.get(f"{server.url}/api/v1/experiments/refused").status_code == 404


def test_a_malformed_address_is_refused_without_a_call(server: Server) -> None:
    data = served("malformed", "no port here", parameters=GRID)
    response = httpx.post(f"{server.url}/api/v1/experiments", json=data)
    assert response.status_code == 422, response.text
    assert "not an address of the form HOST:PORT" in response.text


def test_a_dead_service_is_a_clear_error_after_retries_not_a_hang(server: Server) -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    response = httpx.post(
        f"{server.url}/api/v1/experiments",
        json=served("dead", dead, parameters=GRID),
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 422, response.text
    assert "UNAVAILABLE" in response.text and "after 4 attempts" in response.text
    assert dead in response.text
    assert elapsed < 30


def test_a_service_lost_mid_experiment_fails_it_with_the_reason(
    server: Server, tmp_path: Path
) -> None:
    with suggestion_service(tmp_path, "grid") as address:
        data = served("orphaned", address, parameters=GRID, parallelTrialCount=1)
        command(data).append("--sleep=1")
        response = httpx.post(f"{server.url}/api/v1/experiments", json=data)
        assert response.status_code == 201, response.text
        with Client(server.url) as client:
            wait_for(lambda: len(client.trials("orphaned")) > 0, "the first trial")
    # the service is gone: the next GetSuggestions fails, is retried, and ends the experiment
    with Client(server.url) as client:
        final = client.wait("orphaned", timeout=60, poll=0.2, progress=False)
    status = final["status"]
    assert status["phase"] == "Failed", status
    assert "GetSuggestions" in status["message"] and "after 4 attempts" in status["message"]
    assert address in status["message"] and "'remote-grid'" in status["message"]


def test_tuner_run_uses_a_served_algorithm_too(tmp_path: Path) -> None:
    with suggestion_service(tmp_path, "random") as address:
        seed = {"name": "random_state", "value": "5"}
        data = served("local", address, seed, maxTrialCount=3, maxFailedTrialCount=0)
        spec = tmp_path / "spec.json"
        spec.write_text(json.dumps(data))
        db = f"sqlite:///{tmp_path / 'run.db'}"
        done = run_tuner("run", str(spec), "--db", db, "--workdir", str(tmp_path / "w"))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Succeeded (ExperimentMaxTrialsReached)" in done.stdout
    repo = Repository(make_engine(db))
    trials = repo.trials(repo.get_experiment("default", "local").id)
    assert len(trials) == 3 and len({t.parameters["x"] for t in trials}) == 3
    assert all(-2 <= float(t.parameters["x"]) <= 2 for t in trials)
    repo.engine.dispose()


def test_serve_maps_an_algorithm_name_to_a_service(tmp_path: Path) -> None:
    with suggestion_service(tmp_path, "grid") as address:
        db = f"sqlite:///{tmp_path / 'named.db'}"
        named = start_server(tmp_path, db, args=["--suggestion-service", f"katib-grid={address}"])
        try:
            algorithm = {"algorithmName": "katib-grid"}
            data = experiment_dict("named", algorithm=algorithm, parameters=GRID, maxTrialCount=6)
            response = httpx.post(f"{named.url}/api/v1/experiments", json=data)
            assert response.status_code == 201, response.text
            # the stored spec names the service: any process reading it knows where it is
            stored = response.json()["spec"]["algorithm"]
            assert stored["algorithmSettings"] == [
                {"name": "suggestionServiceAddress", "value": address}
            ]
            with Client(named.url) as client:
                final = client.wait("named", timeout=90, poll=0.2, progress=False)
            assert final["status"]["phase"] == "Succeeded", final["status"]
            assert final["status"]["trialCounts"]["Succeeded"] == 6
        finally:
            stop_server(named)
    listed = run_tuner("list", "--db", db)  # another process, without the table
    assert listed.returncode == 0 and "named" in listed.stdout, listed.stderr


def test_a_malformed_suggestion_service_option_is_a_usage_error() -> None:
    done = run_tuner("serve", "--suggestion-service", "tpe")
    assert done.returncode == 2
    assert "'tpe' is not NAME=HOST:PORT" in done.stderr


def test_a_service_that_never_answers_times_out_per_call(server: Server) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), never speaks HTTP/2
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        timeout = {"name": "suggestionServiceTimeout", "value": "1"}
        started = time.monotonic()
        response = httpx.post(
            f"{server.url}/api/v1/experiments",
            json=served("silent", address, timeout, parameters=GRID),
            timeout=60,
        )
        elapsed = time.monotonic() - started
    assert response.status_code == 422, response.text
    assert "DEADLINE_EXCEEDED" in response.text and "after 4 attempts" in response.text
    assert 4 <= elapsed < 30  # 4 calls of 1 s and the backoff between them
