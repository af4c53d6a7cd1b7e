"""The CLI as a user meets it: every command embedded (``--db``) and against a real
``tuner serve`` (``--server``) with the same output; misuse gives one error line, never a
traceback; reading never creates a database; no migrate lock file is left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.helpers import ask_tell_dict, cli_env, command, experiment_dict, run_tuner
from tests.servers import Server, start_server, stop_server
from tests.waiting import wait_for
from tuner.cli import main
from tuner.spec import load_spec
from tuner.storage import Repository, make_engine
from tuner.trials import ExperimentPhase, TrialState

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "parity-token"
DEAD = "http://127.0.0.1:9"  # nothing listens on the discard port


def tuner(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``tuner ARGS`` as a process of this checkout's code, run in ``cwd``."""
    return run_tuner(*args, cwd=cwd, timeout=300)


@dataclass
class Ran:
    """A database holding the finished experiment ``exp``, and a server over it."""

    tmp: Path
    db: str
    server: Server

    def remote(self) -> list[str]:
        return ["--server", self.server.url, "--token-file", str(self.server.token_file)]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    tmp = tmp_path_factory.mktemp("parity")
    spec = tmp / "exp.yaml"
    spec.write_text(yaml.safe_dump(experiment_dict(maxTrialCount=3)))
    db = str(tmp / "runs.db")  # a plain path: SQLite
    # The server's trial logs are under <tmp>/serve: run there so that `logs` finds them too.
    result = tuner(
        "run", str(spec), "--db", db, "--quiet", "--workdir", str(tmp / "serve"), cwd=tmp
    )
    assert result.returncode == 0, result.stderr
    server = start_server(tmp, f"sqlite:///{db}", TOKEN)
    yield Ran(tmp, db, server)
    stop_server(server)


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``tuner.cli.main(args)`` in this process: exit code, stdout, stderr."""
    try:
        code = main(args)
    except SystemExit as e:  # argparse: usage errors, --help, --version
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def no_lock_files(root: Path) -> None:
    assert not list(root.rglob("*.migrate.lock")), "a migrate lock file was left behind"


# -- misuse: one line on stderr, the documented exit code, no traceback ------------------------

MISUSE: list[tuple[str, int]] = [
    ("", 2),
    ("bogus", 2),
    ("run {nofile}", 2),
    ("run {badspec} --db {db}", 2),
    ("run {spec} --db foo://nowhere", 2),
    ("validate {nofile}", 2),
    ("validate {badspec}", 2),
    ("leaderboard nope --db {db}", 2),
    ("leaderboard exp --db {db} --limit 0", 2),
    ("leaderboard exp --db {db} --limit many", 2),
    ("leaderboard exp --db {db} --metric nope", 2),
    ("leaderboard exp --db {missing}", 2),
    ("leaderboard exp --server {dead}", 1),
    ("trials exp --db {db} --state bogus", 2),
    ("trials nope --db {db}", 2),
    ("trials exp --db {missing}", 2),
    ("trials exp --server {dead}", 1),
    ("status nope --db {db}", 2),
    ("status exp --db {missing}", 2),
    ("status exp --db ../nowhere/tuner.db", 2),
    ("status exp --server {dead}", 1),
    ("status exp --server {dead} --token-file {nofile}", 2),
    ("list --db {db} --phase bogus", 2),
    ("list --db {missing}", 2),
    ("list --server {dead}", 1),
    ("stop nope --db {db}", 2),
    ("stop exp --db {missing}", 2),
    ("stop exp --server {dead}", 1),
    ("resume nope --db {db}", 2),
    ("resume exp --db {db}", 2),
    ("resume exp --server {dead}", 1),
    ("delete nope --db {db}", 2),
    ("delete exp --db {missing}", 2),
    ("delete exp --server {dead}", 1),
    ("budget exp --db {db}", 2),
    ("budget exp --db {db} --max-trial-count 0", 2),
    ("budget exp --db {db} --max-failed-trial-count -1", 2),
    ("budget nope --db {db} --max-trial-count 9", 2),
    ("budget exp --server {dead} --max-trial-count 9", 1),
    ("logs exp nope-0000 --db {db}", 2),
    ("logs nope nope-0000 --db {db}", 2),
    ("logs exp exp-0000 --db {db} --workdir {missing}", 2),
    ("logs exp exp-0000 --db {missing}", 2),
    ("logs exp exp-0000 --server {dead}", 1),
    ("submit {spec}", 2),
    ("submit {nofile} --server {dead}", 2),
    ("submit {spec} --server {dead}", 1),
    ("serve --port many", 2),
    ("serve --db foo://nowhere --port 1", 2),
    ("db bogus", 2),
    ("db current --db {missing} --bogus", 2),
]


@pytest.fixture
def misuse_files(tmp_path: Path) -> dict[str, str]:
    db = tmp_path / "misuse.db"
    repo = Repository(make_engine(str(db)))
    repo.create_experiment(load_spec(experiment_dict()))
    repo.engine.dispose()
    (tmp_path / "bad.yaml").write_text("apiVersion: kubeflow.org/v1beta1\nkind: Experiment\n")
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(experiment_dict()))
    return {
        "db": str(db),
        "missing": str(tmp_path / "missing" / "tuner.db"),
        "nofile": str(tmp_path / "nofile.yaml"),
        "badspec": str(tmp_path / "bad.yaml"),
        "spec": str(tmp_path / "exp.yaml"),
        "dead": DEAD,
    }


@pytest.mark.parametrize(("line", "code"), MISUSE, ids=[m[0] or "<none>" for m in MISUSE])
def test_misuse_is_one_error_line_without_traceback(
    line: str,
    code: int,
    misuse_files: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("TUNER_"):
            monkeypatch.delenv(name)
    args = [a.format(**misuse_files) for a in line.split()]
    exit_code, out, err = run_main(args, capsys)
    assert exit_code == code, (out, err)
    first, *more = err.splitlines() or [""]
    assert first.startswith("error: "), err
    if more:  # only an invalid spec lists its problems, one indented line each
        assert first.startswith("error: invalid Experiment spec"), err
        assert all(m.startswith("  ") for m in more), err
    assert "Traceback" not in out + err
    assert not (tmp_path / "missing").exists(), "a reading command created a database"
    assert not (tmp_path.parent / "nowhere").exists()
    no_lock_files(tmp_path)


def test_misuse_in_a_real_process(tmp_path: Path) -> None:
    result = tuner("trials", "x", "--state", "bogus", "--db", "t.db", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "invalid choice: 'bogus'" in result.stderr
    result = tuner("status", "x", "--db", "../data/tuner.db", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"no database at {tmp_path.parent / 'data' / 'tuner.db'}" in result.stderr
    assert not (tmp_path.parent / "data" / "tuner.db").exists()
    version = tuner("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("tuner ")


def test_not_found_names_the_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "named.db"
    make_engine(str(db)).dispose()
    code, _, err = run_main(["status", "nope", "--db", str(db)], capsys)
    assert code == 2 and f"sqlite:///{db}" in err and "not found" in err
    no_lock_files(tmp_path)


# -- the same output from the database and from a server ---------------------------------------

READS = [
    "list",
    "list --json",
    "list --phase Succeeded --json",
    "status exp",
    "status exp --json",
    "leaderboard exp",
    "leaderboard exp --json --limit 2",
    "trials exp",
    "trials exp --json --state Succeeded",
    "logs exp exp-0000",
]


@pytest.mark.parametrize("line", READS)
def test_reads_are_the_same_embedded_and_remote(
    line: str, ran: Ran, capsys: pytest.CaptureFixture[str]
) -> None:
    args = line.split()
    local_args = [*args, "--db", ran.db]
    if args[0] == "logs":
        local_args += ["--workdir", str(ran.tmp / "serve")]
    code, local, err = run_main(local_args, capsys)
    assert code == 0, err
    code, remote, err = run_main([*args, *ran.remote()], capsys)
    assert code == 0, err
    assert local == remote
    assert local.strip()
    if args[0] == "logs":
        assert "loss=" in local
    if "--json" in args and args[0] == "list":
        assert [e["name"] for e in json.loads(local)] == ["exp"]
    no_lock_files(ran.tmp)


def test_changes_are_the_same_embedded_and_remote(
    ran: Ran, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """stop, resume, budget and delete print the same lines on either side (an ask/tell
    experiment, so that no trial runs on either side)."""
    data = ask_tell_dict("changed")
    db = str(tmp_path / "local.db")
    repo = Repository(make_engine(db))
    repo.create_experiment(load_spec(data))
    repo.engine.dispose()
    spec = tmp_path / "changed.yaml"
    spec.write_text(yaml.safe_dump(data))
    code, _, err = run_main(["submit", str(spec), *ran.remote()], capsys)
    assert code == 0, err

    steps = [
        ["stop", "changed"],
        ["stop", "changed"],  # a finished experiment stays as it is
        ["resume", "changed"],
        ["budget", "changed", "--max-trial-count", "9", "--parallel-trial-count", "3"],
        ["status", "changed", "--json"],
        ["stop", "changed"],
        ["delete", "changed"],
    ]
    outputs = []
    for step in steps:
        code, local, err = run_main([*step, "--db", db], capsys)
        assert code == 0, (step, err)
        code, remote, err = run_main([*step, *ran.remote()], capsys)
        assert code == 0, (step, err)
        if step[0] == "resume":  # the embedded side says who will drive it
            local = local.splitlines()[0] + "\n"
        elif step[0] == "status":
            local_doc, remote_doc = json.loads(local), json.loads(remote)
            assert local_doc["phase"] == remote_doc["phase"] == "Running"
            continue
        assert local == remote, step
        outputs.append(remote)
    assert (
        outputs[0]
        == "experiment default/changed: Stopped (ExperimentStopped): stopped by the user\n"
    )
    assert outputs[2].startswith("experiment default/changed: Running (ExperimentRestarting)")
    assert outputs[-1] == "experiment default/changed deleted\n"
    for where in (["--db", db], ran.remote()):
        code, _, err = run_main(["status", "changed", *where], capsys)
        assert code == 2 and "not found" in err
    no_lock_files(tmp_path)


# -- tuner run continues a stopped experiment, and takes a raised budget ------------------------


def test_run_resumes_after_ctrl_c_and_after_a_raised_budget(tmp_path: Path) -> None:
    data = experiment_dict(maxTrialCount=4, parallelTrialCount=2, resumePolicy="LongRunning")
    command(data).extend(["--steps=30", "--sleep=0.1"])
    spec = tmp_path / "slow.yaml"
    spec.write_text(yaml.safe_dump(data))
    db = str(tmp_path / "run.db")
    run_args = ["run", str(spec), "--db", db, "--quiet", "--workdir", str(tmp_path / "work")]
    process = subprocess.Popen(
        [sys.executable, "-m", "tuner.cli", *run_args],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def reported() -> bool:
        if not Path(db).exists():
            return False
        repo = Repository(make_engine(db, must_exist=True))
        try:
            record = repo.get_experiment("default", "exp")
            trials = repo.trials(record.id)
        except Exception:
            return False
        finally:
            repo.engine.dispose()
        return len(trials) == 2 and all(t.steps >= 2 for t in trials)

    try:
        wait_for(reported, "both trials to report", timeout=120)
    except BaseException:
        process.kill()
        process.communicate()
        raise
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err

    # The same spec again: the Stopped experiment continues to its budget.
    again = tuner(*run_args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "resuming experiment exp" in again.stdout
    repo = Repository(make_engine(db))
    record = repo.get_experiment("default", "exp")
    assert record.phase is ExperimentPhase.SUCCEEDED
    states = [t.state for t in repo.trials(record.id)]
    assert states[:2] == [TrialState.KILLED, TrialState.KILLED]
    assert len(states) == 4

    # A raised maxTrialCount in the YAML is a budget edit: one more trial, no --replace.
    data["spec"]["maxTrialCount"] = 5
    spec.write_text(yaml.safe_dump(data))
    more = tuner(*run_args, cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert "budget changed (maxTrialCount 5)" in more.stdout
    record = repo.get_experiment("default", "exp")
    assert record.phase is ExperimentPhase.SUCCEEDED and len(repo.trials(record.id)) == 5

    # Anything else still needs --replace.
    data["spec"]["parameters"][0]["feasibleSpace"]["max"] = "3"
    spec.write_text(yaml.safe_dump(data))
    other = tuner(*run_args, cwd=tmp_path)
    assert other.returncode == 1 and "--replace" in other.stderr
    assert "Traceback" not in other.stderr
    no_lock_files(tmp_path)
    repo.engine.dispose()


def test_run_does_not_continue_a_failed_experiment(tmp_path: Path) -> None:
    """As in Katib, a Failed experiment cannot be continued (whatever its resumePolicy): a
    raised maxFailedTrialCount is refused, and --replace starts over."""
    data = experiment_dict(
        maxTrialCount=3, parallelTrialCount=1, maxFailedTrialCount=0, resumePolicy="LongRunning"
    )
    command(data).append("--fail")
    spec = tmp_path / "failing.yaml"
    spec.write_text(yaml.safe_dump(data))
    run_args = ["run", str(spec), "--db", "fail.db", "--quiet", "--workdir", "work"]
    first = tuner(*run_args, cwd=tmp_path)
    assert first.returncode == 1 and "ExperimentFailed" in first.stdout
    # Katib counts failures as they come: the first one reaches maxFailedTrialCount 0... once
    # there is one.
    assert "trial exp-0000 failed" in first.stdout and "exp-0001" not in first.stdout

    data["spec"]["maxFailedTrialCount"] = 2
    spec.write_text(yaml.safe_dump(data))
    again = tuner(*run_args, cwd=tmp_path)
    assert again.returncode != 0 and "spec.resumePolicy" in again.stderr, again.stderr
    assert "cannot be changed" in again.stderr and "Traceback" not in again.stderr
    repo = Repository(make_engine(str(tmp_path / "fail.db")))
    record = repo.get_experiment("default", "exp")
    assert record.reason == "ExperimentFailed", record
    assert record.experiment.spec.max_failed_trial_count == 0
    assert [t.state for t in repo.trials(record.id)] == [TrialState.FAILED]
    repo.engine.dispose()


def test_embedded_stop_ends_a_running_tuner_run(tmp_path: Path) -> None:
    """`tuner stop --db` changes the database only; the `tuner run` driving the experiment
    sees it at its next pass, kills its trials and exits as stopped."""
    data = experiment_dict(maxTrialCount=4, parallelTrialCount=2)
    command(data).extend(["--steps=200", "--sleep=0.2"])
    spec = tmp_path / "slow.yaml"
    spec.write_text(yaml.safe_dump(data))
    db = str(tmp_path / "run.db")
    process = subprocess.Popen(
        [sys.executable, "-m", "tuner.cli", "run", str(spec), "--db", db, "--quiet"],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def running() -> bool:
            status = tuner("status", "exp", "--db", db, "--json", cwd=tmp_path)
            return (
                status.returncode == 0
                and json.loads(status.stdout)["trialCounts"].get("Running", 0) == 2
            )

        wait_for(running, "two running trials", timeout=120, interval=0.5)
        stop = tuner("stop", "exp", "--db", db, cwd=tmp_path)
        assert stop.returncode == 0, stop.stderr
        assert "Stopped (ExperimentStopped): stopped by the user" in stop.stdout
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    trials = json.loads(tuner("trials", "exp", "--db", db, "--json", cwd=tmp_path).stdout)
    assert [t["status"] for t in trials] == ["Killed", "Killed"]
    no_lock_files(tmp_path)
