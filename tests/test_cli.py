"""The `tuner` command as a person runs it: a real process, real trials, real Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from tests.helpers import DATA, cli_env, command, experiment_dict, run_tuner
from tuner.cli import commands, main
from tuner.cli.parser import build_parser
from tuner.cli.source import (
    ExperimentInfo,
    ExperimentStatus,
    LocalSource,
    RemoteSource,
    TrialRow,
    open_source,
)
from tuner.storage import Repository, make_engine
from tuner.trials import ExperimentPhase, TrialState

ROOT = Path(__file__).resolve().parent.parent


tuner = run_tuner


def test_run_then_query_leaderboard_trials_status(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    result = tuner(
        "run",
        str(DATA / "katib-random.yaml"),
        "--db",
        db,
        "--quiet",
        "--workdir",
        str(tmp_path / "work"),
    )
    assert result.returncode == 0, result.stderr
    assert "Succeeded (ExperimentMaxTrialsReached)" in result.stdout

    board = tuner("leaderboard", "random", "-n", "kubeflow", "--db", db, "--json", "--limit", "5")
    rows = json.loads(board.stdout)
    assert len(rows) == 5
    assert set(rows[0]) >= {"trial", "status", "parameters", "objective", "metrics"}
    assert isinstance(rows[0]["parameters"]["num-layers"], int)
    assert isinstance(rows[0]["parameters"]["lr"], float)
    objectives = [r["objective"] for r in rows]
    assert objectives == sorted(objectives, reverse=True)
    assert rows[0]["metrics"]["Validation-accuracy"] == rows[0]["objective"]

    trials = json.loads(tuner("trials", "random", "-n", "kubeflow", "--db", db, "--json").stdout)
    assert [t["trial"] for t in trials] == [f"random-{i:04d}" for i in range(12)]

    status = json.loads(tuner("status", "random", "-n", "kubeflow", "--db", db, "--json").stdout)
    assert status["phase"] == "Succeeded"
    assert status["trialCounts"]["Succeeded"] == 12
    assert status["currentOptimalTrial"]["bestTrialName"] == rows[0]["trial"]

    # Running the same spec again finds it finished and changes nothing.
    again = tuner("run", str(DATA / "katib-random.yaml"), "--db", db, "--quiet")
    assert again.returncode == 0 and "already finished" in again.stdout

    missing = tuner("leaderboard", "nope", "--db", db)
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_ctrl_c_kills_trials_and_keeps_observations(tmp_path: Path) -> None:
    data = experiment_dict(maxTrialCount=4, parallelTrialCount=2)
    command(data).extend(["--steps=100", "--sleep=0.2"])
    spec = tmp_path / "slow.yaml"
    spec.write_text(yaml.safe_dump(data))
    db_path = tmp_path / "cli.db"
    db = f"sqlite:///{db_path}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tuner.cli",
            "run",
            str(spec),
            "--db",
            db,
            "--quiet",
            "--workdir",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    repo = Repository(make_engine(db))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait (bounded) until both trials have reported
        try:
            record = repo.get_experiment("default", "exp")
            trials = repo.trials(record.id)
        except Exception:
            trials = []
        if len(trials) == 2 and all(t.steps >= 2 for t in trials):
            break
        time.sleep(0.1)
    else:
        process.kill()
        raise AssertionError("trials never reported")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    record = repo.get_experiment("default", "exp")
    assert record.phase is ExperimentPhase.STOPPED
    trials = repo.trials(record.id)
    assert [t.state for t in trials] == [TrialState.KILLED, TrialState.KILLED]
    for t in trials:
        observations = repo.observations(record.id, t.name, "loss")
        assert len(observations) == t.steps >= 2  # nothing recorded was lost
        pid = int((t.runner_ref or "pid:0").removeprefix("pid:"))
        assert (
            not Path(f"/proc/{pid}").exists()
            or "Z (zombie)" in Path(f"/proc/{pid}/status").read_text()
        )
    assert "Stopped" in out


# -- one source, local or remote --------------------------------------------------------------

ROWS = [
    TrialRow(
        "exp-0001", "Succeeded", {"x": 0.125, "n": 2}, 0.5, {"accuracy": 0.75, "loss": 0.5}, 3, None
    ),
    TrialRow(
        "exp-0000",
        "EarlyStopped",
        {"x": -1.0, "n": 1},
        2.0,
        {"accuracy": None, "loss": 2.0},
        1,
        "worse than the median",
        message="worse than the median",
    ),
]
STATUS = {
    "phase": "Running",
    "reason": None,
    "message": None,
    "trials": 3,
    "trialCounts": {"Created": 0, "Running": 1, "Succeeded": 1, "EarlyStopped": 1},
    "currentOptimalTrial": {
        "bestTrialName": "exp-0001",
        "parameterAssignments": [{"name": "x", "value": 0.125}, {"name": "n", "value": 2}],
        "observation": {
            "metrics": [{"name": "accuracy", "value": 0.75}, {"name": "loss", "value": 0.5}]
        },
    },
    "totalSteps": 4,
}


class FakeSource:
    """An ExperimentSource with fixed answers; records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.closed = False

    def experiment(self, name: str) -> ExperimentInfo:
        self.calls.append(("experiment", name))
        return ExperimentInfo("default", name, ["x", "n"], ["loss", "accuracy"])

    def leaderboard(
        self, name: str, *, limit: int, metric: str | None, states: Sequence[str] = ()
    ) -> list[TrialRow]:
        self.calls.append(("leaderboard", name, str(limit), str(metric), *states))
        return ROWS[:limit]

    def trials(self, name: str, *, state: str | None) -> list[TrialRow]:
        self.calls.append(("trials", name, str(state)))
        return ROWS

    def status(self, name: str) -> ExperimentStatus:
        self.calls.append(("status", name))
        return ExperimentStatus.from_json(STATUS)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeSource:
    source = FakeSource()
    monkeypatch.setattr(commands, "open_source", lambda args: source)
    return source


def test_the_source_is_chosen_once_from_the_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TUNER_SERVER", raising=False)
    token = tmp_path / "token"
    token.write_text("secret\n")
    parser = build_parser()
    remote = parser.parse_args(
        ["status", "e", "-n", "team", "--server", "http://h:1", "--token-file", str(token)]
    )
    with closing(open_source(remote)) as source:
        assert isinstance(source, RemoteSource)
        assert source.client.namespace == "team"
        assert source.client.url == "http://h:1"
    make_engine(f"sqlite:///{tmp_path / 'x.db'}").dispose()  # readers never create one
    local = parser.parse_args(["trials", "e", "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    with closing(open_source(local)) as source:
        assert isinstance(source, LocalSource)
        assert source.namespace == "default"


def test_rows_keep_the_leaderboard_shape() -> None:
    row = {
        "trial": "t",
        "status": "Failed",
        "parameters": {"b": 1, "a": "x"},
        "objective": None,
        "metrics": {},
        "steps": 0,
        "reason": "exit code 1",
    }
    api_trial = {"number": 4, **row, "message": "exit code 1", "createdAt": "..."}
    assert TrialRow.from_json(row).to_json() == row
    assert list(TrialRow.from_json(api_trial).to_json().items()) == list(row.items())
    status = ExperimentStatus.from_json(STATUS)
    assert status.document is STATUS
    assert status.optimal is not None
    assert status.optimal.parameters == [("x", 0.125), ("n", 2)]
    assert status.optimal.metrics == [("accuracy", 0.75), ("loss", 0.5)]


def test_leaderboard_renders_rows_of_any_source(
    fake: FakeSource, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["leaderboard", "exp", "--limit", "5", "--metric", "accuracy"]) == 0
    assert fake.calls == [("experiment", "exp"), ("leaderboard", "exp", "5", "accuracy")]
    assert fake.closed
    assert capsys.readouterr().out == LEADERBOARD
    assert main(["leaderboard", "exp", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [r.to_json() for r in ROWS]


def test_trials_render_rows_of_any_source(
    fake: FakeSource, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["trials", "exp", "--state", "Succeeded"]) == 0
    assert fake.calls == [("trials", "exp", "Succeeded")]
    assert capsys.readouterr().out == TRIALS
    assert main(["trials", "exp", "--json"]) == 0
    out = capsys.readouterr().out
    assert out == json.dumps([r.to_json() for r in ROWS], indent=2) + "\n"


def test_status_renders_the_status_of_any_source(
    fake: FakeSource, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "exp", "-n", "team"]) == 0
    assert capsys.readouterr().out == (
        "team/exp: Running\n"
        "trials: 3 (Running 1, Succeeded 1, EarlyStopped 1)\n"
        "steps: totalSteps 4\n"
        "optimal trial: exp-0001 (x=0.125, n=2) -> accuracy=0.75, loss=0.5\n"
    )
    assert main(["status", "exp", "--json"]) == 0
    assert capsys.readouterr().out == json.dumps(STATUS, indent=2) + "\n"


# What the commands printed before they read through a source (piped: 200 columns).
LEADERBOARD = (  # fmt: skip
    "                      Leaderboard: default/exp                       \n"
    "┏━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━━┳━━━━━━━┳━━━┳━━━━━━┳━━━━━━━━━━┳━━━━━━━┓\n"
    "┃ # ┃ trial    ┃ status       ┃     x ┃ n ┃ loss ┃ accuracy ┃ steps ┃\n"
    "┡━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━╇━━━╇━━━━━━╇━━━━━━━━━━╇━━━━━━━┩\n"
    "│ 1 │ exp-0001 │ Succeeded    │ 0.125 │ 2 │  0.5 │     0.75 │     3 │\n"
    "│ 2 │ exp-0000 │ EarlyStopped │    -1 │ 1 │    2 │        - │     1 │\n"
    "└───┴──────────┴──────────────┴───────┴───┴──────┴──────────┴───────┘\n"
)
TRIALS = (  # fmt: skip
    "                                 Trials: default/exp                                 \n"
    "┏━━━━━━━━━━┳━━━━━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━┓\n"
    "┃ trial    ┃ status       ┃ parameters  ┃ objective ┃ steps ┃ message               ┃\n"
    "┡━━━━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━┩\n"
    "│ exp-0001 │ Succeeded    │ x=0.125 n=2 │ 0.5       │ 3     │                       │\n"
    "│ exp-0000 │ EarlyStopped │ x=-1 n=1    │ 2         │ 1     │ worse than the median │\n"
    "└──────────┴──────────────┴─────────────┴───────────┴───────┴───────────────────────┘\n"
)
