"""The runner plug point: how a rendered trial becomes a running process or Job.

:class:`Runner` and :class:`TrialHandle` are abstract base classes: a runner implements the
abstract methods and overrides only the hooks it needs; the defaults are safe no-ops, so the
controller and the service call every member directly, and mypy checks every call.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tuner.spec import Experiment
from tuner.templates import RenderedTrial
from tuner.trials import Trial


@dataclass(frozen=True)
class TrialOutcome:
    """How a trial's process or Job ended, as far as the runner can tell."""

    succeeded: bool
    reason: str  # Completed, Error, OOMKilled, Signal, DeadlineExceeded, ...
    message: str = ""
    exit_code: int | None = None


class TrialHandle(ABC):
    """One running trial, as its runner sees it."""

    metrics_path: Path | None = None
    """Where this trial writes a File collector's metrics file or a TensorFlowEvent collector's
    event directory, when the controller can read it."""

    @property
    def process_start(self) -> int | None:
        """The start time of the trial's process, stored with :attr:`ref` so that a reused
        pid is not taken for it after a restart (``None``: the runner needs none)."""
        return None

    async def metrics_host(self) -> str | None:
        """Where the controller reaches this trial's Prometheus endpoint now (``None``: not yet).
        Local trials share the host's network."""
        return "127.0.0.1"

    async def collector_problem(self) -> str | None:
        """Why a collector running beside the trial (a Kubernetes sidecar) could not collect
        its metrics, once the trial has ended (``None``: none, or no such collector)."""
        return None

    @property
    def offset(self) -> int | None:
        """Where the lines read so far end in the trial's log, stored so that a re-adopted
        trial's output is read on from there (``None``: not resumable this way)."""
        return None

    @property
    @abstractmethod
    def ref(self) -> str:
        """A stable reference stored on the trial (pid, Job name) for re-attaching."""

    @abstractmethod
    def lines(self) -> AsyncIterator[str]:
        """Output lines of the process or primary container, until it ends."""

    @abstractmethod
    async def wait(self) -> TrialOutcome:
        """Wait until the trial ends and say how."""

    @abstractmethod
    async def kill(self) -> None:
        """End the trial now (idempotent)."""


class Runner(ABC):
    """Starts trials and finds them again."""

    detached: bool = False
    """Whether trials outlive this process (Kubernetes Jobs; local trials of ``tuner serve``). A
    stopping controller then leaves them running for its successor to attach to, instead of
    killing them."""

    @abstractmethod
    async def start(
        self, experiment: Experiment, trial: Trial, rendered: RenderedTrial, env: dict[str, str]
    ) -> TrialHandle:
        """Launch a trial. ``env`` holds the ``TUNER_*`` variables the trial needs."""

    @abstractmethod
    async def attach(self, experiment: Experiment, trial: Trial) -> TrialHandle | None:
        """Find a trial that was running before a restart; ``None`` when it is lost.

        A trial that ended meanwhile is found too when the runner knows how it ended: its
        handle's :meth:`TrialHandle.wait` says so."""

    def check(self, experiment: Experiment) -> None:  # noqa: B027 - a hook: accept by default
        """Raise :class:`~tuner.errors.SpecError` for a spec this runner cannot run.

        Called at submit time, so that an API client gets a 422 instead of failed trials.
        """

    async def prepare(self, experiment: Experiment) -> Experiment:
        """The experiment as this runner will run it, checked against the world it runs in
        (Kubernetes: a ConfigMap template read in, the trial kind served by the cluster).

        Called at submit time before :meth:`check`; raises :class:`~tuner.errors.SpecError`.
        """
        return experiment

    async def reap(self, experiment: Experiment, trial: Trial) -> list[int]:
        """Kill whatever is left of a trial that nobody follows any more (a lost trial's
        children); returns what was killed (pids). Default: nothing to do."""
        return []

    async def cleanup(self, experiment: Experiment) -> None:  # noqa: B027 - a hook
        """Remove what the runner keeps of a deleted experiment (Kubernetes: its Jobs)."""

    def log_path(self, experiment: Experiment, trial_name: str) -> Path | None:
        """The file holding a trial's output on this machine, or ``None`` when there is none."""
        return None
