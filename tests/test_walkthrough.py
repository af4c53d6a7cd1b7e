"""The README's walkthrough, run as written.

Each fenced block of the section "Walkthrough: your own script" follows an HTML comment
``<!-- walkthrough: NAME -->``: NAME is a file the user writes (``train.py``, ``spec.yaml``,
...) or a step the user runs (``run``, ``inspect``, ``push``, ``serve``, ``notebook``,
``notebook-restarted``). The test writes the files into an empty directory and runs the steps
there as a user would: shell lines through ``bash`` with the venv's ``tuner`` first on
``PATH`` (and this checkout on ``PYTHONPATH``), a real SIGINT for the Ctrl-C, a real
``tuner serve``, and the two notebook blocks as two Python processes (a real restart).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.servers import ROOT, Server, start_server, stop_server
from tests.waiting import wait_for
from tuner.client import Client
from tuner.storage import Repository, make_engine

README = ROOT / "README.md"
BLOCK = re.compile(r"<!-- walkthrough: (\S+) -->\n```\w*\n(.*?)```", re.DOTALL)
FILES = ("train.py", "spec.yaml", "train_push.py")
SERVE_URL = "http://127.0.0.1:8000"  # what the README's notebook blocks name
TIMEOUT = 180.0  # per step, for a loaded 2-core machine


def walkthrough_blocks() -> dict[str, str]:
    blocks = dict(BLOCK.findall(README.read_text()))
    assert set(blocks) >= {*FILES, "run", "inspect", "push", "serve", "notebook"}, blocks
    return blocks


def shell_lines(block: str) -> list[str]:
    """The commands of a shell block: continuations joined, comments and blanks left out."""
    joined = block.replace("\\\n", " ")
    lines = (re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def user_env() -> dict[str, str]:
    """The user's shell with the venv activated: no TUNER_* settings, this checkout's code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")}
    env["PYTHONPATH"] = str(ROOT)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def sh(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", line],
        cwd=cwd,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def trials_json(name: str, cwd: Path) -> list[dict[str, Any]]:
    result = sh(f"tuner trials {name} --json", cwd)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    blocks = walkthrough_blocks()
    work = tmp_path / "project"
    work.mkdir()
    for name in FILES:
        (work / name).write_text(blocks[name])

    interrupted_run(blocks, work)
    inspected_failure(blocks, work)
    pushed_run(blocks, work)
    server = start_server(tmp_path, f"sqlite:///{work / 'tuner.db'}")
    try:
        asked_and_told(blocks, work, server)
    finally:
        stop_server(server)


def interrupted_run(blocks: dict[str, str], work: Path) -> None:
    """`tuner run`, Ctrl-C after the first loss is in, `tuner run` again: resumed, no repeats."""
    first, again = shell_lines(blocks["run"])
    assert first == again == "tuner run spec.yaml"
    out = work.parent / "run-1.out"
    with out.open("w") as sink:
        run = subprocess.Popen(
            ["bash", "-c", f"exec {first}"],
            cwd=work,
            env=user_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: any("loss=" in log.read_text() for log in work.glob(".tuner/*/*/*/trial.log")),
            "the first trial's first loss line",
            timeout=TIMEOUT,
        )
        run.send_signal(signal.SIGINT)  # Ctrl-C
        code = run.wait(TIMEOUT)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(10)
    assert code == 130, out.read_text()
    before = trials_json("walk", work)
    assert any(t["status"] == "Killed" for t in before), before

    resumed = sh(again, work)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Succeeded (ExperimentMaxTrialsReached)" in resumed.stdout
    after = trials_json("walk", work)
    by_name = {t["trial"]: t for t in after}
    assert len(by_name) == len(after) == 6  # maxTrialCount, Killed ones included
    for trial in before:  # kept as they were: nothing re-run, nothing replaced
        kept = by_name[trial["trial"]]
        assert kept["parameters"] == trial["parameters"]
        if trial["status"] == "Killed":
            assert kept["status"] == "Killed", kept
    points = [t["parameters"]["lr"] for t in after]
    assert len(set(points)) == len(points), points
    assert len(after) > len(before)


def inspected_failure(blocks: dict[str, str], work: Path) -> None:
    """The failed trial the README names is the one that failed, with its stderr line."""
    listing, logs = shell_lines(blocks["inspect"])
    assert listing == "tuner trials walk --state Failed"
    failed = sh(listing, work)
    assert failed.returncode == 0, failed.stderr
    assert "walk-0003" in failed.stdout and "Failed" in failed.stdout, failed.stdout
    assert "diverged at epoch 1: lr=0.89" in failed.stdout, failed.stdout

    assert logs == "tuner logs walk walk-0003"
    log = sh(logs, work)
    assert log.returncode == 0, log.stderr
    assert "epoch=0 loss=" in log.stdout
    assert "diverged at epoch 1" in log.stdout


def pushed_run(blocks: dict[str, str], work: Path) -> None:
    """`push.yaml` made by the README's command runs with `tuner.report()`: the trials that
    do not diverge Succeed with one observation per epoch."""
    lines = shell_lines(blocks["push"])
    assert lines[-1] == "tuner run push.yaml"
    for line in lines[:-1]:
        made = sh(line, work)
        assert made.returncode == 0, made.stderr
    assert "kind: Push" in (work / "push.yaml").read_text()
    result = sh(lines[-1], work)
    assert result.returncode == 0, result.stdout + result.stderr

    repo = Repository(make_engine(f"sqlite:///{work / 'tuner.db'}"))
    record = repo.get_experiment("default", "walk-push")
    trials = repo.trials(record.id)
    assert len(trials) == 6
    for trial in trials:
        lr = float(trial.parameters["lr"])
        if lr > 0.8:
            assert trial.state.value == "Failed", (trial.name, trial.state, trial.message)
            continue
        assert trial.state.value == "Succeeded", (trial.name, trial.state, trial.message)
        steps = [o.step for o in repo.observations(record.id, trial.name, "loss")]
        assert steps == [0, 1, 2, 3], (trial.name, steps)
        assert trial.objective is not None
        assert abs(trial.objective - ((lr - 0.1) ** 2 + 1 / 4)) < 1e-6


def asked_and_told(blocks: dict[str, str], work: Path, server: Server) -> None:
    """The notebook asks, restarts (a second process, a new Client), tells what is open by
    name and goes on to the end: every asked trial ends told."""
    assert shell_lines(blocks["serve"]) == ["tuner serve"]
    asked = notebook(blocks["notebook"], work, server, "notebook-1.py")
    asked_names = re.findall(r"^(walk-asktell-\d+) ", asked, re.MULTILINE)
    assert len(asked_names) == 2, asked

    with Client(server.url) as client:
        assert sorted(t.name for t in client.open_trials("walk-asktell")) == sorted(asked_names)
        notebook(blocks["notebook-restarted"], work, server, "notebook-2.py")
        assert client.open_trials("walk-asktell") == []
        experiment = wait_for(
            lambda: (e := client.get("walk-asktell"))["status"]["phase"] == "Succeeded" and e,
            "walk-asktell to succeed",
            timeout=TIMEOUT,
        )
        assert experiment["status"]["reason"] == "ExperimentMaxTrialsReached"
        rows = client.trial_rows("walk-asktell")
    assert len(rows) == 6
    assert {r["status"] for r in rows} == {"Succeeded"}, rows
    assert set(asked_names) <= {r["trial"] for r in rows}


def notebook(code: str, work: Path, server: Server, name: str) -> str:
    assert SERVE_URL in code
    script = work.parent / name
    script.write_text(code.replace(SERVE_URL, server.url))
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=work,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
