"""Run each trial as a host process: the primary container's ``command`` + ``args``, no shell.

The process inherits the runner's environment (so an activated virtualenv and ``PATH`` work),
then the container's ``env``, then the ``TUNER_*`` variables. It runs in its own process group
and working directory; stdout and stderr are merged into ``trial.log`` in that directory while
the controller reads them line by line.

A local process cannot be re-attached after the controller restarts (its output pipe is gone),
so :meth:`LocalRunner.attach` kills a survivor and reports the trial as lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from tuner import names
from tuner.errors import RunnerError
from tuner.runners.base import Runner, TrialHandle, TrialOutcome
from tuner.spec import Experiment
from tuner.templates import RenderedTrial
from tuner.trials import Trial

LOG_NAME = "trial.log"


class LocalHandle(TrialHandle):
    def __init__(
        self,
        process: asyncio.subprocess.Process,
        log_path: Path,
        grace: float,
        metrics_path: Path | None = None,
    ) -> None:
        self._process = process
        self._log_path = log_path
        self._grace = grace
        self.metrics_path = metrics_path

    @property
    def ref(self) -> str:
        return f"pid:{self._process.pid}"

    async def lines(self) -> AsyncIterator[str]:
        stream = self._process.stdout
        assert stream is not None
        with self._log_path.open("ab") as log:
            while True:
                try:
                    raw = await stream.readline()
                except ValueError:  # a line over the stream limit: take what is buffered
                    raw = await stream.read(1 << 16)
                if not raw:
                    return
                log.write(raw)
                log.flush()
                yield raw.decode("utf-8", errors="replace").rstrip("\r\n")

    async def wait(self) -> TrialOutcome:
        code = await self._process.wait()
        if code == 0:
            return TrialOutcome(True, "Completed", "exit code 0", 0)
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            return TrialOutcome(False, "Signal", f"killed by signal {name}", code)
        return TrialOutcome(False, "Error", f"exit code {code}", code)

    async def kill(self) -> None:
        """SIGTERM the process group, then SIGKILL it after the grace period."""
        if self._process.returncode is not None:
            return
        _signal_group(self._process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self._process.wait(), self._grace)
        except TimeoutError:
            _signal_group(self._process.pid, signal.SIGKILL)
            await self._process.wait()


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
    """

    detached = False  # trial processes die with their pipes: a stopping controller kills them

    def __init__(
        self,
        workdir: Path,
        cwd: Path | None = None,
        base_env: Mapping[str, str] | None = None,
        kill_grace: float = 0.5,
    ) -> None:
        self.workdir = workdir
        self.cwd = cwd or Path.cwd()
        self._base_env = dict(os.environ if base_env is None else base_env)
        self._grace = kill_grace

    def trial_dir(self, experiment: Experiment, trial_name: str) -> Path:
        return self.workdir / experiment.namespace / experiment.name / trial_name

    def log_path(self, experiment: Experiment, trial_name: str) -> Path:
        return self.trial_dir(experiment, trial_name) / LOG_NAME

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
            **self._base_env,
            **rendered.env,
            **env,
            names.ENV_TRIAL_DIR: str(directory),
            "PYTHONUNBUFFERED": "1",
        }
        argv, metrics_path = _private_metrics_file(rendered, full_env, directory)
        program = shutil.which(argv[0], path=full_env.get("PATH"))
        if program is None:
            raise RunnerError(f"command not found: {rendered.argv[0]!r}")
        log_path = directory / LOG_NAME
        log_path.write_bytes(b"")
        try:
            process = await asyncio.create_subprocess_exec(
                program,
                *argv[1:],
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.cwd,
                env=full_env,
                start_new_session=True,
                limit=1 << 20,
            )
        except OSError as e:
            raise RunnerError(f"cannot start {rendered.argv[0]!r}: {e.strerror or e}") from e
        return LocalHandle(process, log_path, self._grace, metrics_path)

    async def attach(self, experiment: Experiment, trial: Trial) -> None:
        """A local trial from before a restart is lost; stop its process if it survived."""
        ref = trial.runner_ref or ""
        if ref.startswith("pid:"):
            pid = int(ref[4:])
            if _is_trial_process(pid, trial.name):
                _signal_group(pid, signal.SIGKILL)
        return None


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
    private.unlink(missing_ok=True)
    return argv, private


def _is_trial_process(pid: int, trial_name: str) -> bool:
    """Whether ``pid`` still runs this trial (a reused pid must not be killed)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{names.ENV_TRIAL}={trial_name}".encode() in environ.split(b"\0")
