"""The shell supervisor of a local trial (tuner/runners/supervise.sh), run as the local runner
runs it: in a session of its own, stdout and stderr on the log (real processes)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tuner.processes import process_start_time
from tuner.runners import supervisor
from tuner.runners.spawn import spawn

MARKER = "TUNER_TRIAL=supervised"


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def supervise(tmp_path: Path, *command: str) -> subprocess.Popen[bytes]:
    with (tmp_path / "trial.log").open("ab") as log:
        return subprocess.Popen(
            [*supervisor.argv(tmp_path / "exit_status", tmp_path / "pid", tmp_path), *command],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env=dict(os.environ, TUNER_TRIAL="supervised"),
        )


def python(code: str) -> list[str]:
    return [sys.executable, "-S", "-c", code]


def status(tmp_path: Path) -> str:
    return (tmp_path / "exit_status").read_text()


def test_pid_file_before_the_command_then_the_status_and_the_log(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    code = (
        "import os, sys, time\n"
        "print('to stdout', flush=True); print('to stderr', file=sys.stderr, flush=True)\n"
        f"while not os.path.exists({str(gate)!r}): time.sleep(0.01)\n"
        "sys.exit(3)"
    )
    process = supervise(tmp_path, *python(code))
    wait_for(lambda: "to stderr" in (tmp_path / "trial.log").read_text(), "the command's output")
    # The command runs, so the pid file is whole: the supervisor's pid and start time.
    assert (tmp_path / "pid").read_text() == f"{process.pid} {process_start_time(process.pid)}\n"
    assert not (tmp_path / "exit_status").exists()
    gate.touch()
    process.wait(20)
    assert status(tmp_path) == "3\n"
    assert supervisor.log_tail(tmp_path / "trial.log") == "to stdout\nto stderr"


def test_the_groups_sigterm_kills_the_command_and_is_recorded(tmp_path: Path) -> None:
    log = tmp_path / "trial.log"
    for sig in (signal.SIGTERM, signal.SIGINT):
        log.write_text("")
        process = supervise(tmp_path, "/bin/sh", "-c", "echo started; exec sleep 30")
        wait_for(lambda: "started" in log.read_text(), "the command's start")
        os.killpg(process.pid, sig)
        process.wait(20)
        assert status(tmp_path) == f"{-sig}\n"


def test_a_command_that_cannot_be_found_ends_127_with_a_message(tmp_path: Path) -> None:
    supervise(tmp_path, str(tmp_path / "no-such-program")).wait(20)
    assert status(tmp_path) == "127\n"
    assert "no-such-program: not found" in supervisor.log_tail(tmp_path / "trial.log")


def test_what_the_command_left_in_its_group_is_killed_and_the_rest_of_its_session_swept(
    tmp_path: Path,
) -> None:
    """A child left in the group dies with the supervisor; one that moved to a process group of
    its own is killed by the runner's sweeper."""
    code = (
        "import os, subprocess, sys\n"
        "stay = subprocess.Popen(['/bin/sleep', '300'])\n"
        "moved = subprocess.Popen(['/bin/sleep', '300'], process_group=0)\n"
        f"open({str(tmp_path / 'children')!r}, 'w').write(f'{{stay.pid}} {{moved.pid}}')\n"
    )
    process = supervise(tmp_path, *python(code))
    process.wait(20)
    assert status(tmp_path) == "0\n"
    stay, moved = (int(p) for p in (tmp_path / "children").read_text().split())
    wait_for(lambda: process_start_time(stay) is None, "the child in the group to die")
    assert process_start_time(moved) is not None  # outside the group: the sweeper's

    async def sweep() -> None:
        sweeper = supervisor.SessionSweeper(spacing=0.01)
        sweeper.add(process.pid, MARKER.encode())
        deadline = time.monotonic() + 20
        while process_start_time(moved) is not None:
            assert time.monotonic() < deadline, "the sweeper did not kill the moved child"
            await asyncio.sleep(0.02)

    asyncio.run(sweep())


def test_an_empty_pid_file_is_read_from_the_live_supervisor(tmp_path: Path) -> None:
    """A reader that comes between the creation of the pid file and its write finds the
    supervisor by its environment; with no supervisor, the command never ran."""
    path = tmp_path / "pid"
    path.write_text("")
    name = f"empty-pid-{os.getpid()}"  # no other test's process has it
    marker = f"TUNER_TRIAL={name}".encode()
    assert supervisor.read_pid(path, marker) is None
    leader = subprocess.Popen(
        ["/bin/sleep", "30"], start_new_session=True, env=dict(os.environ, TUNER_TRIAL=name)
    )
    try:
        wait_for(lambda: process_start_time(leader.pid) is not None, "the process")
        wait_for(lambda: supervisor.read_pid(path, marker) is not None, "the environment")
        assert supervisor.read_pid(path, marker) == (leader.pid, process_start_time(leader.pid))
    finally:
        leader.kill()
        leader.wait()


def test_spawned_supervisor_runs_in_its_directory_with_default_signals(tmp_path: Path) -> None:
    """``posix_spawn`` cannot change directory: the supervisor does. SIGPIPE, which Python
    ignores, has its default action again in the command (a shell cannot undo an inherited
    SIG_IGN: it would outlive the `kill`)."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    command = ["/bin/sh", "-c", "pwd; kill -PIPE $$; echo survived"]

    async def run() -> tuple[int, int]:
        log = os.open(tmp_path / "trial.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            argv = supervisor.argv(tmp_path / "exit_status", tmp_path / "pid", workdir)
            child = spawn([*argv, *command], dict(os.environ), stdout=log)
        finally:
            os.close(log)
        return child.pid, await asyncio.wait_for(child.wait(), 20)

    pid, returncode = asyncio.run(run())
    assert returncode == -signal.SIGKILL  # the supervisor ends its own process group
    assert process_start_time(pid) is None  # reaped
    assert (tmp_path / "trial.log").read_text() == f"{workdir}\n"
    assert status(tmp_path) == f"{-signal.SIGPIPE}\n"
