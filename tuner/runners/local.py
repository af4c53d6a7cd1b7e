"""Run each trial as a host process: the primary container's ``command`` + ``args``, no shell.

The process inherits the runner's environment (so an activated virtualenv and ``PATH`` work)
less the server's ``TUNER_*`` settings (:mod:`tuner.trial_env`), then the container's ``env``,
then the trial's ``TUNER_*`` variables. It runs in a session of its own and in its working
directory, under a small shell supervisor (:mod:`tuner.runners.supervisor`) that writes its exit
status to ``exit_status``. Its stdout and stderr go to ``trial.log`` in that directory (whose
last lines a failed trial's message quotes), not to a pipe of the controller, which reads the
file as it grows. So a trial outlives a controller that dies (``kill -9``), and the next one
re-adopts it: the stored pid and process start time (from ``/proc/<pid>/stat``, so a reused pid is
never mistaken for it) say whether it still runs, the stored log offset says where reading goes
on, and the status file says how it ended while nobody watched.

Before the command starts, the runner writes an ``intent`` file (which stored trial this is) and
the supervisor its ``pid`` file. A controller killed between the start and the saving of the
Running state thus leaves a trial that the next one re-adopts (:meth:`LocalRunner.attach` of a
Created trial) instead of starting it a second time.

Stopping a trial signals its whole process group, so that its children end with it; and when a
trial ends, whatever it left behind (``sleep 300 &``) is killed too: in its process group by the
supervisor, elsewhere in its session by the runner
(:class:`~tuner.runners.supervisor.SessionSweeper`, :func:`tuner.processes.kill_session`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Mapping
from functools import partial
from pathlib import Path

from tuner import collectors, names, trial_env
from tuner.errors import FieldError, RunnerError, SpecError
from tuner.processes import kill_session, process_start_time
from tuner.runners import supervisor
from tuner.runners.base import Runner, TrialHandle, TrialOutcome
from tuner.runners.checkpoints import private_checkpoint
from tuner.runners.spawn import Child, spawn
from tuner.runners.support import COLLECTOR_PATH, unsupported
from tuner.spec import CollectorKind, Experiment
from tuner.templates import RenderedTrial
from tuner.trials import Trial

LOG_NAME = "trial.log"
STATUS_NAME = "exit_status"
PID_NAME = "pid"
"""``<pid> <start time>`` of the trial's supervisor, written by it before the command starts."""
INTENT_NAME = "intent"
"""Which stored trial the directory's process belongs to (:func:`intent_key`), written before
the start: a directory left by a deleted experiment of the same name is not taken for it."""
POLL_INTERVAL = 0.1
"""Seconds between looks at a log that has no new output."""
CHUNK = 1 << 16
MAX_LINE = 1 << 20
"""A line longer than this is cut into pieces (as a stream reader's limit would)."""


class LocalHandle(TrialHandle):
    """A trial process, started here or re-adopted from an earlier controller.

    Args:
        pid: the supervisor's pid, which is also the id of the trial's session and group.
        start: its start time in clock ticks since boot (``None``: unknown).
        directory: the trial's directory (log and status file).
        offset: where in the log reading starts (the bytes already consumed).
        process: the child process when this controller started it.
    """

    def __init__(
        self,
        pid: int,
        start: int | None,
        directory: Path,
        grace: float,
        *,
        offset: int = 0,
        process: Child | None = None,
        metrics_path: Path | None = None,
        trial_name: str = "",
        sweeper: supervisor.SessionSweeper | None = None,
    ) -> None:
        self._pid = pid
        self._marker = f"{names.ENV_TRIAL}={trial_name}".encode()
        self._start = start
        self._directory = directory
        self._grace = grace
        self._offset = offset
        self._process = process
        self._exit: asyncio.Future[int] | None = None
        self._sweeper = sweeper
        self.metrics_path = metrics_path

    @property
    def ref(self) -> str:
        return f"pid:{self._pid}"

    @property
    def process_start(self) -> int | None:
        return self._start

    @property
    def offset(self) -> int | None:
        return self._offset

    @property
    def log_path(self) -> Path:
        return self._directory / LOG_NAME

    def alive(self) -> bool:
        if self._process is not None:
            return self._process.returncode is None
        return self._start is not None and process_start_time(self._pid) == self._start

    async def lines(self) -> AsyncIterator[str]:
        """The log's lines from the stored offset on, until the process has ended."""
        with self.log_path.open("rb") as log:
            log.seek(self._offset)
            pending = b""
            ended = False
            while True:
                chunk = log.read(CHUNK)
                if chunk:
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    if len(pending) > MAX_LINE:
                        complete.append(pending)
                        pending = b""
                    for raw in complete:
                        self._offset += len(raw) + 1
                        yield raw.decode("utf-8", errors="replace").rstrip("\r")
                    continue
                if ended:
                    if pending:
                        self._offset += len(pending)
                        yield pending.decode("utf-8", errors="replace").rstrip("\r")
                    return
                if not self.alive():
                    ended = True  # one more read: what it wrote just before it ended
                    continue
                await self._pause()

    async def _pause(self) -> None:
        """Wait for more output: :data:`POLL_INTERVAL` at most, less when a child of ours ends
        (so a short trial is not held up by the poll)."""
        if self._process is None:
            await asyncio.sleep(POLL_INTERVAL)
            return
        if self._exit is None:  # one waiter for the handle's life, shielded from the timeouts
            self._exit = asyncio.ensure_future(self._process.wait())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._exit), POLL_INTERVAL)

    async def wait(self) -> TrialOutcome:
        if self._process is not None:
            await self._process.wait()
        else:
            while self.alive():
                await asyncio.sleep(POLL_INTERVAL)
        status = read_status(self._directory / STATUS_NAME)
        if status is None:  # the supervisor did not end its session: do it here
            await asyncio.to_thread(self.reap)
        elif self._sweeper is not None:  # what left the supervisor's process group
            self._sweeper.add(self._pid, self._marker)
        if status is not None:
            code, tail = status
        elif self._process is not None and self._process.returncode is not None:
            code, tail = self._process.returncode, ""  # the supervisor itself was killed
        else:
            return TrialOutcome(
                False,
                "TrialLost",
                "the trial's process ended while no controller watched it and left no exit "
                f"status (log: {self.log_path})",
            )
        if code != 0 and not tail:  # the end of the log stands for the end of stderr
            tail = supervisor.log_tail(self.log_path)
        return outcome(code, tail, self.log_path)

    def reap(self) -> list[int]:
        """Kill what the trial left running in its session; returns those pids. (It scans
        ``/proc``: tens of milliseconds on a busy host, so callers run it in a thread.)"""
        return kill_session(self._pid, self._marker)

    async def kill(self) -> None:
        """SIGTERM the process group, then SIGKILL it after the grace period, and then
        whatever is left in the trial's session."""
        if not self.alive():
            await asyncio.to_thread(self.reap)
            return
        _signal_group(self._pid, signal.SIGTERM)
        deadline = time.monotonic() + self._grace
        while self.alive() and time.monotonic() < deadline:
            await asyncio.sleep(min(POLL_INTERVAL, self._grace))
        if self.alive():
            _signal_group(self._pid, signal.SIGKILL)
        if self._process is not None:
            await self._process.wait()
        else:
            while self.alive():
                await asyncio.sleep(POLL_INTERVAL)
        await asyncio.to_thread(self.reap)  # what left the process group, as a daemon does


def outcome(code: int, stderr_tail: str, log_path: Path) -> TrialOutcome:
    """How an exit status reads: the code or signal, the log's path, the end of stderr (or of the
    log, which holds it)."""
    if code == 0:
        return TrialOutcome(True, "Completed", "exit code 0", 0)
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        reason, summary = "Signal", f"killed by signal {name}"
    else:
        reason, summary = "Error", f"exit code {code}"
    message = f"{summary} (log: {log_path})"
    if stderr_tail:
        message += "\n" + stderr_tail
    return TrialOutcome(False, reason, message, code)


def read_status(path: Path) -> tuple[int, str] | None:
    """The exit code the supervisor wrote, and the stderr tail after it that an earlier
    version's supervisor wrote ("" now: the runner reads the log's end), or ``None``."""
    try:
        code, _, tail = path.read_text(encoding="utf-8", errors="replace").partition("\n")
        return int(code), tail
    except (OSError, ValueError):
        return None


def intent_key(trial: Trial) -> str:
    """What the ``intent`` file of a trial's directory holds: its name and creation time."""
    created = trial.created_at.isoformat() if trial.created_at is not None else ""
    return f"{trial.name} {created}"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class LocalRunner(Runner):
    """Runs trials as host processes.

    Args:
        workdir: trial directories (logs, metrics files) go to
            ``workdir/<namespace>/<experiment>/<trial>/``; a trial finds its own in
            ``TUNER_TRIAL_DIR``.
        cwd: where trial commands run, by default the current directory, so that a spec's
            ``python3 train.py`` works as it does by hand.
        base_env: the environment trials inherit (default: this process's).
        kill_grace: seconds between SIGTERM and SIGKILL when a trial is stopped.
        detached: whether a stopping controller leaves the trials running for the next one to
            re-adopt (``tuner serve``) instead of killing them (``tuner run``'s Ctrl-C).
    """

    def __init__(
        self,
        workdir: Path,
        cwd: Path | None = None,
        base_env: Mapping[str, str] | None = None,
        kill_grace: float = 0.5,
        *,
        detached: bool = False,
    ) -> None:
        self.workdir = workdir
        self.cwd = cwd or Path.cwd()
        self._base_env = dict(os.environ if base_env is None else base_env)
        self._grace = kill_grace
        self.detached = detached
        self._sweeper = supervisor.SessionSweeper()

    COLLECTORS = frozenset(
        {
            CollectorKind.STDOUT,
            CollectorKind.FILE,
            CollectorKind.PUSH,
            CollectorKind.NONE,
            CollectorKind.TF_EVENT,
            CollectorKind.PROMETHEUS,
        }
    )
    """The collector kinds this runner reads metrics with."""

    def trial_dir(self, experiment: Experiment, trial_name: str) -> Path:
        return self.workdir / experiment.namespace / experiment.name / trial_name

    def log_path(self, experiment: Experiment, trial_name: str) -> Path:
        return self.trial_dir(experiment, trial_name) / LOG_NAME

    def check(self, experiment: Experiment) -> None:
        """Refuse what a host process cannot do: a ConfigMap template, a trial kind without a
        primary container (Argo, Tekton), a collector that needs a sidecar (Custom) or a
        reader this runner does not have. A distributed job runs its primary replica only."""
        errors = unsupported(experiment, runner="local", collectors=self.COLLECTORS, processes=True)
        problem = collectors.local_support(experiment.spec)
        if problem is not None:  # says more than the generic refusal of the collector kind
            errors = [e for e in errors if e.path != COLLECTOR_PATH]
            errors.append(FieldError(COLLECTOR_PATH, problem))
        if errors:
            raise SpecError(errors)

    async def start(
        self, experiment: Experiment, trial: Trial, rendered: RenderedTrial, env: dict[str, str]
    ) -> LocalHandle:
        if not rendered.argv:
            raise RunnerError(
                f"the primary container {rendered.container_name!r} has no command or args to run"
            )
        directory = self.trial_dir(experiment, trial.name)
        directory.mkdir(parents=True, exist_ok=True)
        full_env = {
            **trial_env.inherited(self._base_env),  # none of the server's TUNER_* settings
            **rendered.env,
            **env,
            names.ENV_TRIAL_DIR: str(directory),
            "PYTHONUNBUFFERED": "1",
        }
        argv, metrics_path = _private_metrics_file(rendered, full_env, directory)
        argv = private_checkpoint(
            experiment, trial, argv, full_env, rendered.env, partial(self.trial_dir, experiment)
        )
        program = shutil.which(argv[0], path=full_env.get("PATH"))
        if program is None:
            raise RunnerError(f"command not found: {rendered.argv[0]!r}")
        status_path = directory / STATUS_NAME
        status_path.unlink(missing_ok=True)
        pid_path = directory / PID_NAME
        pid_path.unlink(missing_ok=True)
        _write_atomically(directory / INTENT_NAME, intent_key(trial))
        log = os.open(
            directory / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644
        )
        try:
            process = spawn(
                [*supervisor.argv(status_path, pid_path, self.cwd), program, *argv[1:]],
                full_env,
                stdout=log,
            )
        except OSError as e:
            raise RunnerError(f"cannot start {rendered.argv[0]!r}: {e.strerror or e}") from e
        finally:
            os.close(log)
        start = process_start_time(process.pid)
        return LocalHandle(
            process.pid,
            start,
            directory,
            self._grace,
            process=process,
            metrics_path=metrics_path,
            trial_name=trial.name,
            sweeper=self._sweeper,
        )

    async def attach(self, experiment: Experiment, trial: Trial) -> LocalHandle | None:
        """Re-adopt a trial started by an earlier controller, alive or ended meanwhile.

        ``None`` when nothing of it is left to follow (no pid or no log). A process that is
        gone without an exit status ends as ``TrialLost`` once its log is read.

        A trial without a stored pid (still Created: its controller died between the start
        and the saving of the Running state) is found by its directory's ``intent`` and
        ``pid`` files; ``None`` when its command never started, so it can be started now.
        """
        ref = trial.runner_ref or ""
        directory = self.trial_dir(experiment, trial.name)
        if not (directory / LOG_NAME).exists():
            return None
        if ref.startswith("pid:"):
            pid = int(ref[4:])
            start = trial.process_start
            if start is None and _is_trial_process(pid, trial.name):
                start = process_start_time(pid)  # stored before start times were: trust env
        else:
            if _read_text(directory / INTENT_NAME) != intent_key(trial):
                return None
            marker = f"{names.ENV_TRIAL}={trial.name}".encode()
            recorded = await asyncio.to_thread(supervisor.read_pid, directory / PID_NAME, marker)
            if recorded is None:
                return None
            pid, start = recorded
        metrics = directory / "metrics"
        files = sorted(metrics.iterdir()) if metrics.is_dir() else []
        return LocalHandle(
            pid,
            start,
            directory,
            self._grace,
            offset=trial.log_offset,
            metrics_path=files[0] if len(files) == 1 else None,
            trial_name=trial.name,
            sweeper=self._sweeper,
        )

    async def reap(self, experiment: Experiment, trial: Trial) -> list[int]:
        """Kill what is left of a trial that is not followed any more (its session)."""
        ref = trial.runner_ref or ""
        marker = f"{names.ENV_TRIAL}={trial.name}".encode()
        if ref.startswith("pid:"):
            session = int(ref[4:])
        else:
            path = self.trial_dir(experiment, trial.name) / PID_NAME
            recorded = await asyncio.to_thread(supervisor.read_pid, path, marker)
            if recorded is None:
                return []
            session = recorded[0]
        return await asyncio.to_thread(kill_session, session, marker)


def _private_metrics_file(
    rendered: RenderedTrial, env: dict[str, str], directory: Path
) -> tuple[list[str], Path | None]:
    """Give each trial its own copy of the File collector's path.

    In a cluster every Pod has its own filesystem; on one host, parallel trials would share
    ``/var/log/katib/metrics.log``. Where the path appears in the arguments or environment (as
    in Katib's examples), it is replaced by a path inside the trial's directory. A path the
    script hard-codes is read where it is.
    """
    if rendered.metrics_file is None:
        return list(rendered.argv), None
    original = rendered.metrics_file
    private = directory / "metrics" / Path(original).name
    argv = [a.replace(original, str(private)) for a in rendered.argv]
    replaced = argv != rendered.argv
    for key, value in list(env.items()):
        if key in rendered.env and original in value:
            env[key] = value.replace(original, str(private))
            replaced = True
    if not replaced:
        return argv, Path(original)
    private.parent.mkdir(parents=True, exist_ok=True)
    if private.is_dir():  # a TensorFlowEvent directory of an earlier run of this trial
        shutil.rmtree(private)
    private.unlink(missing_ok=True)
    return argv, private


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _is_trial_process(pid: int, trial_name: str) -> bool:
    """Whether ``pid`` still runs this trial (a reused pid must not be killed)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{names.ENV_TRIAL}={trial_name}".encode() in environ.split(b"\0")
