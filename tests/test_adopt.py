"""Local trials outlive a killed ``tuner run`` and are re-adopted by the next one (real processes).

The trial script below is driven by gate files the test creates, so the test decides when a
trial goes on or ends, and waits for states by bounded polling.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers import experiment_dict
from tests.waiting import wait_for
from tuner.runners.local import process_start_time
from tuner.storage import Repository, make_engine
from tuner.templates import job_trial_template
from tuner.trials import Trial, TrialState

ROOT = Path(__file__).resolve().parent.parent

TRIAL = """
import argparse, pathlib, sys, time
parser = argparse.ArgumentParser()
parser.add_argument("--mode")
parser.add_argument("--gates")
args = parser.parse_args()
gates = pathlib.Path(args.gates)

def wait_gate(name):
    deadline = time.monotonic() + 300
    while not (gates / name).exists():
        if time.monotonic() > deadline:
            sys.exit(99)
        time.sleep(0.05)

if args.mode == "long":
    for i in range(5):  # spread over more than a second: the log position gets saved
        print(f"loss={10 - i}", flush=True)
        time.sleep(0.3)
    wait_gate("long")
    for i in range(5, 10):
        print(f"loss={10 - i}", flush=True)
elif args.mode == "ends":
    print("loss=7", flush=True)
    print("loss=6", flush=True)
    wait_gate("ends")
    print("first line of stderr", file=sys.stderr)
    print("bad thing happened", file=sys.stderr)
    sys.exit(7)
else:
    print("loss=5", flush=True)
    wait_gate("never")
"""


def spec(tmp_path: Path) -> Path:
    script = tmp_path / "gated.py"
    script.write_text(TRIAL)
    data = experiment_dict(
        maxTrialCount=3,
        parallelTrialCount=3,
        maxFailedTrialCount=2,  # fails at 2 (Katib reaches): the lost trial must not be one
        algorithm={"algorithmName": "grid"},
        parameters=[
            {
                "name": "mode",
                "parameterType": "categorical",
                "feasibleSpace": {"list": ["long", "ends", "vanish"]},
            }
        ],
        trialTemplate=job_trial_template(
            [
                sys.executable,
                str(script),
                "--mode=${trialParameters.mode}",
                f"--gates={tmp_path / 'gates'}",
            ],
            ["mode"],
        ),
    )
    (tmp_path / "gates").mkdir()
    path = tmp_path / "gated.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def start_run(path: Path, db: str, workdir: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = ["run", str(path), "--db", db, "--quiet", "--workdir", str(workdir)]
    return subprocess.Popen(
        [sys.executable, "-m", "tuner.cli", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def trials_by_mode(repo: Repository) -> dict[str, Trial]:
    try:
        record = repo.get_experiment("default", "exp")
    except Exception:
        return {}
    return {str(t.parameters["mode"]): t for t in repo.trials(record.id)}


def pid_of(trial: Trial) -> int:
    assert trial.runner_ref is not None
    return int(trial.runner_ref.removeprefix("pid:"))


def test_kill_9_of_run_then_run_again_re_adopts_trials(tmp_path: Path) -> None:
    path = spec(tmp_path)
    db = f"sqlite:///{tmp_path / 'tuner.db'}"
    workdir = tmp_path / "work"
    repo = Repository(make_engine(db))
    gates = tmp_path / "gates"

    first = start_run(path, db, workdir)

    def all_reported() -> dict[str, Trial] | None:
        trials = trials_by_mode(repo)
        ready = (
            len(trials) == 3
            and trials["long"].steps >= 5
            and trials["long"].log_offset > 0
            and trials["ends"].steps >= 2
            and trials["vanish"].steps >= 1
        )
        return trials if ready else None

    try:
        trials = wait_for(all_reported, "the three trials to report")
    finally:
        first.kill()  # kill -9: no handler runs, the controller just vanishes
        first.communicate(timeout=60)
    assert all(t.state is TrialState.RUNNING for t in trials.values())

    # While nothing watches: one trial ends with an error, one vanishes with its supervisor.
    (gates / "ends").touch()
    ends_dir = workdir / "default" / "exp" / trials["ends"].name
    wait_for(lambda: (ends_dir / "exit_status").exists(), "the exit status file")
    vanish_pid = pid_of(trials["vanish"])
    os.killpg(vanish_pid, signal.SIGKILL)
    wait_for(lambda: process_start_time(vanish_pid) is None, "the vanished trial to be gone")
    long_pid = pid_of(trials["long"])
    assert process_start_time(long_pid) == trials["long"].process_start  # it survived

    second = start_run(path, db, workdir)
    try:
        wait_for(
            lambda: trials_by_mode(repo)["ends"].state is TrialState.FAILED,
            "the restarted controller to record the ended trial",
        )
        (gates / "long").touch()
        out, err = second.communicate(timeout=120)
    finally:
        if second.poll() is None:
            second.kill()
            second.communicate()
    assert second.returncode == 0, out + err
    assert "resuming experiment exp" in out
    assert "Succeeded (ExperimentMaxTrialsReached)" in out, out

    trials = trials_by_mode(repo)
    long = trials["long"]
    assert long.state is TrialState.SUCCEEDED, long.message
    record = repo.get_experiment("default", "exp")
    observations = repo.observations(record.id, long.name, "loss")
    # Every line once, at the step it had before the restart: none lost, none repeated.
    assert [(o.step, o.value) for o in observations] == [(i, 10.0 - i) for i in range(10)]

    ends = trials["ends"]
    log = ends_dir / "trial.log"
    assert ends.state is TrialState.FAILED and ends.reason == "TrialFailed. Job reason: Error"
    # The message ends with the log's last lines (its stdout, then its stderr), as Kubernetes'
    # FallbackToLogsOnError reads them.
    tail = "loss=7\nloss=6\nfirst line of stderr\nbad thing happened"
    assert ends.message == f"exit code 7 (log: {log})\n{tail}"
    assert f"trial {ends.name} failed: exit code 7 (log: {log})" in out

    vanish = trials["vanish"]
    assert vanish.state is TrialState.FAILED and vanish.reason == "TrialLost"

    # `tuner trials` shows the failing trial's log tail and log path in its message column.
    listed = subprocess.run(
        [sys.executable, "-m", "tuner.cli", "trials", "exp", "--db", db],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="400"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert f"exit code 7 (log: {log})" in listed.stdout
    assert "bad thing happened" in listed.stdout


def test_sigterm_of_serve_leaves_local_trials_for_the_next_start(tmp_path: Path) -> None:
    import httpx

    from tests.servers import start_server, stop_server

    path = spec(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["spec"]["maxTrialCount"] = 1
    data["spec"]["maxFailedTrialCount"] = 1
    data["spec"]["parallelTrialCount"] = 1
    data["spec"]["parameters"][0]["feasibleSpace"]["list"] = ["long"]
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    repo = Repository(make_engine(db))
    server = start_server(tmp_path, db)
    try:
        response = httpx.post(f"{server.url}/api/v1/experiments", json=data, timeout=30)
        assert response.status_code == 201, response.text
        trial = wait_for(
            lambda: (t := trials_by_mode(repo).get("long")) and t.steps >= 5 and t,
            "the trial to report",
        )
    finally:
        stop_server(server)  # SIGTERM: a graceful stop
    pid = pid_of(trial)
    assert process_start_time(pid) == trial.process_start  # still running
    assert trials_by_mode(repo)["long"].state is TrialState.RUNNING

    again = start_server(tmp_path, db)
    try:
        (tmp_path / "gates" / "long").touch()
        finished = wait_for(
            lambda: (t := trials_by_mode(repo)["long"]).state.finished and t, "the trial to end"
        )
    finally:
        stop_server(again)
    assert finished.state is TrialState.SUCCEEDED, finished.message
    record = repo.get_experiment("default", "exp")
    observations = repo.observations(record.id, finished.name, "loss")
    assert [(o.step, o.value) for o in observations] == [(i, 10.0 - i) for i in range(10)]


def test_stopping_a_trial_ends_its_children(tmp_path: Path) -> None:
    """Ctrl-C of `tuner run` kills its trials, their own child processes included."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, pathlib, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        "out = pathlib.Path(os.environ['TUNER_TRIAL_DIR']) / 'child.pid'\n"
        "out.write_text(str(child.pid))\n"
        "print('loss=1', flush=True)\n"
        "time.sleep(300)\n"
    )
    data = experiment_dict(
        maxTrialCount=1,
        parallelTrialCount=1,
        maxFailedTrialCount=0,
        trialTemplate=job_trial_template(
            [sys.executable, str(script), "${trialParameters.x}"], ["x"]
        ),
        parameters=[
            {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
        ],
    )
    path = tmp_path / "parent.yaml"
    path.write_text(yaml.safe_dump(data))
    workdir = tmp_path / "work"
    run = start_run(path, f"sqlite:///{tmp_path / 'tuner.db'}", workdir)
    try:
        pid_file = wait_for(
            lambda: next(workdir.glob("default/exp/*/child.pid"), None), "the trial's child"
        )
        child = int(wait_for(pid_file.read_text, "the child's pid"))
        assert process_start_time(child) is not None
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
        run.communicate()
    wait_for(lambda: process_start_time(child) is None, "the trial's child to end")


def test_a_reused_pid_is_not_taken_for_the_trial(tmp_path: Path) -> None:
    """A stored pid now running something else (another start time) is not adopted or killed."""
    import asyncio

    from tuner.runners.local import LocalRunner
    from tuner.spec import load_spec

    experiment = load_spec(experiment_dict())
    runner = LocalRunner(tmp_path / "work")
    trial_dir = runner.trial_dir(experiment, "exp-0000")
    trial_dir.mkdir(parents=True)
    (trial_dir / "trial.log").write_text("loss=1\n")
    stranger = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True
    )
    try:
        start = process_start_time(stranger.pid)
        assert start is not None
        trial = Trial(
            "exp-0000",
            0,
            {"x": 0.0, "n": 1},
            TrialState.RUNNING,
            runner_ref=f"pid:{stranger.pid}",
            process_start=start - 1,  # the trial's process started at another time
        )

        async def follow() -> tuple[list[str], str, bool]:
            handle = await runner.attach(experiment, trial)
            assert handle is not None
            lines = [line async for line in handle.lines()]
            await handle.kill()
            outcome = await handle.wait()
            return lines, outcome.reason, outcome.succeeded

        lines, reason, succeeded = asyncio.run(follow())
        assert lines == ["loss=1"] and reason == "TrialLost" and not succeeded
        assert stranger.poll() is None  # the stranger was not signalled
    finally:
        stranger.kill()
        stranger.wait()
