"""Right answers, as a newcomer meets them: real `tuner run`, real trials, a real `tuner serve`.

A trial that prints a great value and then crashes is not crowned; a misspelt objective name
says what the trials printed and ends the experiment Failed once the failed budget is reached;
an unknown metric or state is a usage error; `tuner status` reads the same from the database
and from a server.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.helpers import DATA
from tests.servers import Server, start_server, stop_server
from tests.test_cli import tuner
from tuner.client import Client
from tuner.templates import job_trial_template

TOKEN = "right-answers-token"


def scored_spec(
    name: str, *, objective: str = "score", printed: str = "score", **spec: Any
) -> dict[str, Any]:
    """Trials x = 0..3 in grid order (minimize); trial x=0 prints `score=0.0001` then exits 1."""
    body: dict[str, Any] = {
        "objective": {"type": "minimize", "objectiveMetricName": objective},
        "algorithm": {"algorithmName": "grid"},
        "parallelTrialCount": 1,
        "maxTrialCount": 4,
        "maxFailedTrialCount": 3,
        "parameters": [
            {"name": "x", "parameterType": "int", "feasibleSpace": {"min": "0", "max": "3"}}
        ],
        "trialTemplate": job_trial_template(
            [
                sys.executable,
                str(DATA / "scored.py"),
                "--x=${trialParameters.x}",
                f"--name={printed}",
            ],
            ["x"],
        ),
    }
    body.update(spec)
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": body,
    }


@dataclass
class Ran:
    db: str
    run: Any  # the CompletedProcess of `tuner run`
    tmp: Path


def run_spec(tmp: Path, data: dict[str, Any], *extra: str) -> Ran:
    spec = tmp / f"{data['metadata']['name']}.yaml"
    spec.write_text(yaml.safe_dump(data))
    db = f"sqlite:///{tmp / 'answers.db'}"
    result = tuner("run", str(spec), "--db", db, "--workdir", str(tmp / "work"), *extra)
    return Ran(db, result, tmp)


@pytest.fixture(scope="module")
def crashy(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    """`tuner run` (with its progress bar) of the crashing spec; it succeeds: 1 of 3 failed."""
    tmp = tmp_path_factory.mktemp("answers")
    ran = run_spec(tmp, scored_spec("crashy"))
    assert ran.run.returncode == 0, ran.run.stdout + ran.run.stderr
    return ran


@pytest.fixture(scope="module")
def server(crashy: Ran) -> Iterator[Server]:
    running = start_server(crashy.tmp, crashy.db, TOKEN)
    yield running
    stop_server(running)


def board(ran: Ran, *args: str) -> list[dict[str, Any]]:
    result = tuner("leaderboard", "crashy", "--db", ran.db, "--json", *args)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_the_leaderboard_does_not_crown_a_crashed_trial(crashy: Ran) -> None:
    rows = board(crashy)
    assert [(r["parameters"]["x"], r["status"]) for r in rows] == [
        (1, "Succeeded"),
        (2, "Succeeded"),
        (3, "Succeeded"),
    ]
    # The progress bar's "best" and the table `tuner run` printed agree with it.
    # (The crashed trial's own failure line quotes its log's end, its "score=0.0001" too.)
    out = crashy.run.stdout
    table = out[out.index("Leaderboard") :]
    assert "best score=0.3" in out and "best score=0.0001" not in out and "0.0001" not in table
    status = json.loads(tuner("status", "crashy", "--db", crashy.db, "--json").stdout)
    assert status["currentOptimalTrial"]["bestTrialName"] == rows[0]["trial"]


def test_other_states_appear_on_request(crashy: Ran) -> None:
    failed = board(crashy, "--state", "Failed")
    assert len(failed) == 1
    assert failed[0]["parameters"]["x"] == 0
    assert failed[0]["objective"] == 0.0001  # what it printed before crashing is kept
    assert failed[0]["reason"]
    everything = board(crashy, "--state", "failed,Succeeded")
    assert [r["parameters"]["x"] for r in everything] == [0, 1, 2, 3]  # one order everywhere
    assert board(crashy, "--state", "Succeeded", "--state", "Failed") == everything
    assert board(crashy, "--state", "all") == everything


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--metric", "nope"], ["unknown metric 'nope'", "score"]),
        (["--state", "Crashed"], ["unknown trial state 'Crashed'", "Succeeded", "all"]),
    ],
)
def test_unknown_metric_or_state_is_a_usage_error(
    crashy: Ran, args: list[str], words: list[str]
) -> None:
    result = tuner("leaderboard", "crashy", "--db", crashy.db, *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr


def test_a_misspelt_objective_says_what_was_printed_and_fails_the_experiment(
    tmp_path: Path,
) -> None:
    data = scored_spec("misspelt", objective="Score", maxTrialCount=4, maxFailedTrialCount=2)
    data["spec"]["parameters"][0]["feasibleSpace"]["min"] = "1"  # no crashing trial
    ran = run_spec(tmp_path, data, "--quiet")
    assert ran.run.returncode == 1, ran.run.stdout + ran.run.stderr
    out = ran.run.stdout
    assert "Failed (ExperimentFailed)" in out
    assert "2 trials failed (2 MetricsUnavailable), reaching maxFailedTrialCount 2" in out
    assert "lines looked like `score=" in out  # the reason, printed by `tuner run`
    trials = json.loads(tuner("trials", "misspelt", "--db", ran.db, "--json").stdout)
    assert [t["status"] for t in trials] == ["MetricsUnavailable"] * 2
    assert trials[0]["reason"] == (
        "the trial succeeded but never reported `Score`; lines looked like "
        "`score=0.30000000000000004` (names not in the spec's objective)"
    )
    status = json.loads(tuner("status", "misspelt", "--db", ran.db, "--json").stdout)
    assert status["phase"] == "Failed"


def test_status_reads_the_same_locally_and_through_a_server(crashy: Ran, server: Server) -> None:
    local = tuner("status", "crashy", "--db", crashy.db)
    remote = tuner(
        "status", "crashy", "--server", server.url, "--token-file", str(server.token_file)
    )
    assert local.returncode == 0 and remote.returncode == 0, local.stderr + remote.stderr
    assert local.stdout == remote.stdout
    assert "steps: totalSteps 4, stepsWithoutStopping 4" in local.stdout
    assert "-> score=0.3\n" in local.stdout  # 6 significant digits, not 0.30000000000000004
    assert "0.30000000000000004" not in local.stdout

    local_json = json.loads(tuner("status", "crashy", "--db", crashy.db, "--json").stdout)
    remote_json = json.loads(
        tuner(
            "status", "crashy", "--json", "--server", server.url,
            "--token-file", str(server.token_file),
        ).stdout
    )  # fmt: skip
    assert local_json == remote_json


def test_the_api_and_client_rank_like_the_cli(crashy: Ran, server: Server) -> None:
    cli_rows = board(crashy)
    remote = tuner(
        "leaderboard", "crashy", "--json", "--server", server.url,
        "--token-file", str(server.token_file),
    )  # fmt: skip
    assert json.loads(remote.stdout) == cli_rows
    url = f"{server.url}/api/v1/experiments/crashy/leaderboard"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(url, headers=headers).json() == cli_rows
    as_csv = httpx.get(url, headers={**headers, "Accept": "text/csv"}).text
    assert [r["trial"] for r in csv.DictReader(io.StringIO(as_csv))] == [
        r["trial"] for r in cli_rows
    ]
    every = board(crashy, "--state", "all")
    for status in (["Failed,Succeeded"], ["Failed", "Succeeded"], ["all"]):
        rows = httpx.get(url, headers=headers, params={"status": status}).json()
        assert rows == every
    with Client(server.url, TOKEN) as client:
        frame = client.leaderboard("crashy")
        assert list(frame["trial"]) == [r["trial"] for r in cli_rows]
        assert list(client.leaderboard("crashy", status="Failed")["status"]) == ["Failed"]

    remote_failed = tuner(
        "leaderboard", "crashy", "--json", "--state", "Failed", "--server", server.url,
        "--token-file", str(server.token_file),
    )  # fmt: skip
    assert json.loads(remote_failed.stdout) == board(crashy, "--state", "Failed")
    remote_nope = tuner(
        "leaderboard", "crashy", "--metric", "nope", "--server", server.url,
        "--token-file", str(server.token_file),
    )  # fmt: skip
    assert remote_nope.returncode == 2
    assert "unknown metric 'nope'" in remote_nope.stderr and "score" in remote_nope.stderr

    for params, word in (({"metric": "nope"}, "score"), ({"status": "Crashed"}, "Succeeded")):
        answer = httpx.get(url, headers=headers, params=params)
        assert answer.status_code == 400
        assert word in answer.text
