"""End to end: a real `tuner serve` process, trials that push with `tuner.report`, the Python
client (wait, leaderboard, ask/tell), SSE over the network and the CLI's --server mode."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.helpers import ask_tell_dict, push_spec
from tests.servers import Server, start_server, stop_server
from tuner import cli
from tuner.client import Client
from tuner.errors import Forbidden, NotFound, SpecError, Unauthorized

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "serve-test-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("serve")
    # Access logs included (log level info): the token must not appear in them.
    running = start_server(
        tmp, f"sqlite:///{tmp / 'serve.db'}", TOKEN, args=["--log-level", "info"]
    )
    yield running
    stop_server(running)
    assert TOKEN not in running.log.read_text(), "the API token leaked into the server log"


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, TOKEN) as c:
        yield c


def test_yaml_spec_with_pushing_trials_runs_to_succeeded(
    server: Server, client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    response = httpx.post(
        f"{server.url}/api/v1/experiments",
        content=push_spec("pushed"),
        headers={"Content-Type": "application/yaml", "Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"]["phase"] == "Running"

    bar = io.StringIO()
    final = client.wait("pushed", timeout=60, poll=0.2, file=bar)
    status = final["status"]
    assert status["phase"] == "Succeeded", status
    assert status["reason"] == "ExperimentMaxTrialsReached"
    assert status["trialCounts"]["Succeeded"] == 6 and status["trials"] == 6
    assert status["currentOptimalTrial"]["parameterAssignments"] == [{"name": "x", "value": 0.5}]
    assert "6/6" in bar.getvalue()

    # Every trial pushed 3 steps; the objective is its last (true) value, (x - 0.5)**2.
    board = client.leaderboard("pushed", limit=10)
    assert list(board.columns) == [
        "trial", "status", "objective", "x", "loss", "accuracy", "steps", "reason",
    ]  # fmt: skip
    assert len(board) == 6
    assert list(board["objective"]) == sorted(board["objective"])
    assert list(board["x"]) == [0.5, 0.0, 1.0, -0.5, 1.5, 2.0]  # ties by trial number
    for _, row in board.iterrows():
        assert row["objective"] == pytest.approx((row["x"] - 0.5) ** 2)
        # accuracy's strategy follows the objective (min): its first, lowest value.
        assert row["accuracy"] == pytest.approx(1 / (1 + row["loss"] + 0.2))
        assert row["steps"] == 3 and row["status"] == "Succeeded"

    top2 = client.leaderboard("pushed", limit=2, offset=1)
    assert list(top2["trial"]) == list(board["trial"][1:3])

    csv_text = httpx.get(
        f"{server.url}/api/v1/experiments/pushed/leaderboard",
        headers={"Accept": "text/csv", "Authorization": f"Bearer {TOKEN}"},
    ).text
    records = list(csv.DictReader(io.StringIO(csv_text)))
    assert [r["trial"] for r in records] == list(board["trial"])
    assert [float(r["x"]) for r in records] == list(board["x"])

    trial = board["trial"][0]
    curve = client.observations("pushed", trial, metric="loss")
    assert list(curve["step"]) == [0, 1, 2]
    assert list(curve["value"]) == pytest.approx([0.2, 0.1, 0.0])
    assert "pushed step 2" in client.logs("pushed", trial)
    trials = client.trials("pushed")
    assert len(trials) == 6 and list(trials["number"]) == list(range(6))
    assert trials["finishedAt"].notna().all()

    # The CLI against the server prints what it prints from the database.
    for command in (
        ["leaderboard", "pushed", "--json"],
        ["status", "pushed", "--json"],
        ["trials", "pushed", "--json"],
        ["leaderboard", "pushed"],
    ):
        remote_args = ["--server", server.url, "--token-file", str(server.token_file)]
        assert cli.main([*command, *remote_args]) == 0
        remote = capsys.readouterr().out
        assert cli.main([*command, "--db", server.db_url]) == 0
        local = capsys.readouterr().out
        assert remote == local, command
        if command == ["leaderboard", "pushed", "--json"]:
            assert [r["trial"] for r in json.loads(local)] == list(board["trial"])


def test_ask_tell_loop_with_the_client_completes(server: Server, client: Client) -> None:
    data = ask_tell_dict("notebook", parallelTrialCount=2, maxTrialCount=5, maxFailedTrialCount=1)
    created = client.submit(data)
    assert created["status"]["phase"] == "Running"

    events: list[tuple[str, dict[str, Any]]] = []
    connected = threading.Event()

    def listen() -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        url = f"{server.url}/api/v1/experiments/notebook/events"
        with httpx.stream("GET", url, headers=headers, timeout=30) as response:
            kind = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((kind, json.loads(line.removeprefix("data: "))))
                    connected.set()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(10)

    told = 0
    rounds = 0
    while trials := client.ask("notebook", count=3):
        rounds += 1
        assert len(trials) <= 2  # parallelTrialCount
        for trial in trials:
            x, n = trial.parameters["x"], trial.parameters["n"]
            for step in range(n):
                assert client.report("notebook", trial, {"loss": (x - 0.5) ** 2 + step}) is False
            client.tell("notebook", trial.name, {"loss": (x - 0.5) ** 2, "accuracy": 0.5})
            told += 1
    assert told == 5 and rounds == 3

    final = client.wait("notebook", progress=False, timeout=10)
    assert final["status"]["phase"] == "Succeeded"
    assert final["status"]["reason"] == "ExperimentMaxTrialsReached"
    board = client.leaderboard("notebook")
    assert len(board) == 5 and list(board["objective"]) == sorted(board["objective"])
    assert list(board["loss"]) == list(board["objective"])

    listener.join(10)
    assert not listener.is_alive()
    assert events[-1][0] == "experiment" and events[-1][1]["state"] == "Succeeded"
    assert sum(1 for k, d in events if k == "trial" and d["state"] == "Succeeded") == 5


def test_client_errors_carry_the_server_message(server: Server, client: Client) -> None:
    with pytest.raises(NotFound, match="experiment default/ghost not found"):
        client.get("ghost")
    bad = ask_tell_dict("bad", parallelTrialCount=0)
    with pytest.raises(SpecError) as invalid:
        client.submit(bad)
    assert [e.path for e in invalid.value.errors] == ["spec.parallelTrialCount"]
    with pytest.raises(Unauthorized), Client(server.url, token="") as anonymous:
        anonymous.list()
    with pytest.raises(Forbidden, match="invalid API token"), Client(server.url, "x") as wrong:
        wrong.list()
    client.submit(ask_tell_dict("dup"))
    with pytest.raises(Exception, match="already exists") as duplicate:
        client.submit(ask_tell_dict("dup"))
    assert type(duplicate.value).__name__ == "Conflict"
    client.delete("dup")
    assert [e["metadata"]["name"] for e in client.list(status="Running")].count("dup") == 0


def test_serve_refuses_an_open_port_without_a_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TUNER_API_TOKEN", raising=False)
    assert cli.main(["serve", "--host", "0.0.0.0", "--port", "1", "--no-token"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "refusing to listen on 0.0.0.0 without an API token" in err
    assert "run code on this host" in err and "--no-token" in err
    assert cli.is_loopback("127.0.0.1") and cli.is_loopback("::1") and cli.is_loopback("localhost")
    assert not cli.is_loopback("0.0.0.0") and not cli.is_loopback("example.com")


def test_cli_submit(
    server: Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TUNER_API_TOKEN", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # no default token file
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(ask_tell_dict("from-cli")))
    remote = ["--server", server.url, "--token-file", str(server.token_file)]
    assert cli.main(["submit", str(spec), *remote]) == 0
    assert capsys.readouterr().out == "experiment default/from-cli submitted: Running\n"

    bad = ask_tell_dict("bad-cli", maxTrialCount=0)
    spec.write_text(yaml.safe_dump(bad))
    assert cli.main(["submit", str(spec), *remote]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "spec.maxTrialCount: must be greater than 0" in err

    assert cli.main(["status", "from-cli", *remote[:2]]) == cli.EXIT_FAILED  # no token
    assert "missing API token" in capsys.readouterr().err
