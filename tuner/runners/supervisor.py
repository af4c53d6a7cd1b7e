"""The supervisor of one local trial: ``/bin/sh supervise.sh STATUS PIDFILE DIR COMMAND...``.

It is a POSIX shell script (dash on Debian, where a start costs about 1 ms of CPU; a Python
supervisor cost 15 ms, as much again as a trivial trial). In the session the local runner made
for it, with stdout and stderr on the trial's log, it:

* writes ``<pid> <start time>`` to ``PIDFILE`` before the command runs: the record that the
  command is (about to be) running, which a restarted controller finds even when the trial's
  Running state never reached the database. It is one ``write`` to a new file, which a reader
  finds empty or whole (the size grows after the bytes are in); a rename would cost an ``mv``
  process, as much CPU as the rest of the script. An empty file (the reader came between the
  creation and the write, or the writer died there, before the command could run) is read
  by :func:`read_pid`, which then looks for the supervisor by its environment;
* runs the command in the foreground in the directory ``DIR``, stdin on ``/dev/null``, stdout
  and stderr on the log; a command that cannot be found or run (or a ``DIR`` that cannot be
  entered) ends with 127 or 126 and the shell's message in the log;
* survives the SIGTERM and SIGINT the runner sends to the whole process group (a trap with a
  handler: the command keeps their default action, where ``trap ''`` would have it ignore them)
  and records the command's death instead. A signal that comes before the command is started
  is recorded and the command does not run. One that comes while the command is being started
  (between the shell's fork and the command's exec, a millisecond or more on a busy host) is
  caught by the shell's handler in the new process and lost, which a shell cannot prevent (the
  Python supervisor's ``posix_spawn`` reset the handlers with signals blocked). The command then
  runs on, and :meth:`LocalHandle.kill <tuner.runners.local.LocalHandle.kill>` SIGKILLs the
  group after its grace period: the trial still stops, as killed by SIGKILL;
* writes the exit code to ``STATUS``, ``-N`` for a command killed by signal N. The shell reports
  that death as 128+N, so a command that *exits* with a code from 129 to 192 reads as killed by
  a signal too (Kubernetes' runtimes report both as 128+N). The file is written in one
  ``write`` before the supervisor ends, and the runner reads it only once the supervisor has
  ended: it is whole, or absent (the supervisor was killed first). So a trial that ends while no
  controller watches (the controller was killed) still has a known ending for the next one;
* then SIGKILLs its process group, itself included: the trial ends when its command does, as a
  Pod ends with its container, and whatever the command left running (a ``sleep 300 &``, a
  worker) goes with it. What moved to a process group of its own but stayed in the session
  is killed by the runner (:class:`SessionSweeper`): scanning ``/proc`` in the shell would cost
  ten times the rest.

The file holds no stderr tail any more (keeping one would cost a process per trial): as with
Kubernetes' ``FallbackToLogsOnError``, the runner takes the end of the trial's log instead
(:func:`log_tail`). A status file with a tail after the code (written by the Python supervisor
of an earlier version) is still read as it was.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tuner.processes import kill_sessions, process_start_time, processes_with, session_id

SCRIPT = Path(__file__).with_name("supervise.sh")
SHELL = "/bin/sh"
TAIL_LINES = 5
TAIL_BYTES = 2000
SWEEP_SPACING = 0.5
"""Seconds at least between two scans of ``/proc`` for what ended trials left in their sessions."""


def argv(status_path: Path, pid_path: Path, cwd: Path) -> list[str]:
    """The supervisor's command line, to which the trial's own is appended."""
    return [SHELL, str(SCRIPT), str(status_path), str(pid_path), str(cwd.absolute())]


def tail_text(data: bytes) -> str:
    """The last :data:`TAIL_LINES` non-empty lines of ``data``, at most :data:`TAIL_BYTES`."""
    text = data[-TAIL_BYTES * 2 :].decode("utf-8", errors="replace")
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-TAIL_LINES:])[-TAIL_BYTES:]


def log_tail(path: Path) -> str:
    """:func:`tail_text` of the end of the log at ``path`` ("" when it cannot be read)."""
    try:
        with path.open("rb") as log:
            size = log.seek(0, 2)
            log.seek(max(0, size - TAIL_BYTES * 2))
            return tail_text(log.read())
    except OSError:
        return ""


class SessionSweeper:
    """Kills what ended trials left in their sessions outside their process group.

    The supervisor kills its process group; a process that moved to a group of its own (a
    ``setpgid``) is only found by a scan of ``/proc``, a few milliseconds. The sessions of the
    trials that end are queued, and one scan in a thread, at most every
    :data:`SWEEP_SPACING` seconds, kills the members of all of them (with the trial's
    ``TUNER_TRIAL`` in their environment, so that a reused session id is never taken for it).
    """

    def __init__(self, spacing: float = SWEEP_SPACING) -> None:
        self._spacing = spacing
        self._pending: dict[int, bytes] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, session: int, marker: bytes) -> None:
        """Queue ``session`` for the next scan (started now unless one is under way)."""
        self._pending[session] = marker
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            await asyncio.to_thread(kill_sessions, batch)
            await asyncio.sleep(self._spacing)


def read_pid(path: Path, marker: bytes) -> tuple[int, int] | None:
    """The supervisor's pid and start time from its ``pid`` file at ``path``, or ``None`` when
    its command never started.

    An empty file is being written, or its writer died before it wrote and thus before the
    command ran: the live session leader whose environment holds ``marker`` (the trial's
    ``TUNER_TRIAL``) is the supervisor; when there is none, the file is read again, in case the
    supervisor wrote it and ended meanwhile."""
    recorded = _parse_pid_file(path)
    if recorded is not None or not path.exists():
        return recorded
    for pid in processes_with([marker]):
        start = process_start_time(pid)
        if session_id(pid) == pid and start is not None:
            return pid, start
    return _parse_pid_file(path)


def _parse_pid_file(path: Path) -> tuple[int, int] | None:
    try:
        pid, start = path.read_text(encoding="ascii").split()
        return int(pid), int(start)
    except (OSError, ValueError):
        return None
