"""Plain value types shared by the controller, the algorithms and the stopping rules.

They carry no database or framework types, so that ``algorithms/`` and the rules stay pure
functions of the trial history.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

ParamValue = int | float | str


class TrialState(StrEnum):
    """Katib's trial conditions."""

    CREATED = "Created"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    EARLY_STOPPED = "EarlyStopped"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    KILLED = "Killed"

    @property
    def finished(self) -> bool:
        return self not in (TrialState.CREATED, TrialState.RUNNING)

    @property
    def completed(self) -> bool:
        """Finished with a usable objective (Katib counts both toward the optimum)."""
        return self in (TrialState.SUCCEEDED, TrialState.EARLY_STOPPED)


ACTIVE_STATES = (TrialState.CREATED, TrialState.RUNNING)
RANKED_STATES = (TrialState.SUCCEEDED, TrialState.EARLY_STOPPED)
"""The states the leaderboard and the best trial count by default: finished with metrics."""


class ExperimentPhase(StrEnum):
    CREATED = "Created"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"

    @property
    def finished(self) -> bool:
        return self in (ExperimentPhase.SUCCEEDED, ExperimentPhase.FAILED, ExperimentPhase.STOPPED)


@dataclass(frozen=True)
class Observation:
    """One reported value of one metric at one step."""

    metric: str
    step: int
    value: float
    time: datetime | None = None

    @property
    def finite(self) -> bool:
        return math.isfinite(self.value)


@dataclass
class Trial:
    """A trial as the algorithms, rules and views see it.

    ``objective`` and ``metrics`` are the values under the spec's metric strategies
    (min, max or latest). ``curve`` is the objective metric's (step, value) series, filled
    only where a caller asked for it (early stopping, plots).
    """

    name: str
    number: int
    parameters: dict[str, ParamValue]
    state: TrialState = TrialState.CREATED
    objective: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    attrs: dict[str, object] = field(default_factory=dict)
    reason: str | None = None
    message: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    steps: int = 0
    curve: tuple[tuple[int, float], ...] = ()
    runner_ref: str | None = None
    process_start: int | None = None
    """The start time of the trial's process (local runner), to tell it from a reused pid."""
    log_offset: int = 0
    """The bytes of the trial's log whose observations are stored (local runner)."""
    log_steps: dict[str, int] = field(default_factory=dict)
    """The metrics parser's next step per metric at :attr:`log_offset`."""

    def with_curve(self, curve: Mapping[int, float]) -> Trial:
        self.curve = tuple(sorted(curve.items()))
        return self
