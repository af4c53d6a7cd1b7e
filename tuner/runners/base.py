"""The runner plug point: how a rendered trial becomes a running process or Job."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

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


class TrialHandle(Protocol):
    @property
    def ref(self) -> str:
        """A stable reference stored on the trial (pid, Job name) for re-attaching."""
        ...

    def lines(self) -> AsyncIterator[str]:
        """Output lines of the process or primary container, until it ends."""
        ...

    async def wait(self) -> TrialOutcome: ...

    async def kill(self) -> None: ...


class Runner(Protocol):
    """Starts trials and finds them again.

    A runner whose trials outlive its process (Kubernetes Jobs) sets ``detached = True``: a
    stopping controller then leaves them running for its successor to attach to, instead of
    killing them.

    Two optional methods, looked up with ``getattr`` by the service:

    * ``check(experiment) -> None`` raises :class:`~tuner.errors.SpecError` for a spec this
      runner cannot run (called at submit time, so the client gets a 422);
    * ``async cleanup(experiment) -> None`` removes what the runner keeps of a deleted
      experiment (the Kubernetes runner: its remaining Jobs).
    """

    detached: bool

    async def start(
        self, experiment: Experiment, trial: Trial, rendered: RenderedTrial, env: dict[str, str]
    ) -> TrialHandle:
        """Launch a trial. ``env`` holds the ``TUNER_*`` variables the trial needs."""
        ...

    async def attach(self, experiment: Experiment, trial: Trial) -> TrialHandle | None:
        """Find a trial that was running before a restart; ``None`` when it is lost."""
        ...
