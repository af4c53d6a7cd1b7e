"""The `tuner` command as a person runs it: a real process, real trials, real Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import DATA, experiment_dict
from tests.test_controller import command
from tuner.storage import Repository, make_engine
from tuner.trials import ExperimentPhase, TrialState

ROOT = Path(__file__).resolve().parent.parent


def tuner(*args: str, cwd: Path = ROOT, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuner.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        **kw,
    )


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


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
    assert missing.returncode == 1 and "not found" in missing.stderr


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
        env=_env(),
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
