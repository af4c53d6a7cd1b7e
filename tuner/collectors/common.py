"""What every collector shares: Katib's default filter, timestamps, values, step counting.

A collector turns what a trial prints, writes or serves into :class:`Observation` values. Steps
are a function of the trial's output alone, so that collecting the same output again (after a
controller restart) yields the same ``(metric, step)`` keys and storage deduplicates them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

from tuner.trials import Observation

DEFAULT_FILTER = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
"""Katib's default metrics filter (``pkg/metricscollector/v1beta1/common/const.go``)."""

STEP_KEYS = ("step", "global_step", "epoch")
"""Keys that give the step of a line's observations, in order of preference."""

UNKNOWN_SAMPLES = 5
"""How many metric-looking names outside the spec a collector remembers."""

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class MetricsParser(Protocol):
    """Turns one line of trial output into observations; keeps per-trial state (step counters)."""

    def parse(self, line: str) -> list[Observation]: ...

    @property
    def unknown(self) -> list[str]: ...

    @property
    def problem(self) -> str | None: ...


class PolledCollector(Protocol):
    """A collector the controller polls while the trial runs, and once more when it has ended.

    ``problem`` is set when the trial's metrics cannot be trusted (a metrics file that was never
    written, a line that is not JSON, an endpoint that never answered): the trial then ends
    ``MetricsUnavailable`` with that message, as Katib's collectors fail the collection.
    """

    async def collect(self, final: bool = False) -> list[Observation]: ...

    @property
    def unknown(self) -> list[str]: ...

    @property
    def problem(self) -> str | None: ...


class Unknown:
    """The first few ``name=value`` samples whose name is not a metric of the spec."""

    def __init__(self, ignore: frozenset[str]) -> None:
        self._ignore = ignore
        self.samples: dict[str, str] = {}

    def note(self, name: str, raw: str) -> None:
        if (
            len(self.samples) < UNKNOWN_SAMPLES
            and name not in self.samples
            and name.lower() not in self._ignore
        ):
            self.samples[name] = f"{name}={raw.strip()}"


# ---------------------------------------------------------------------------------------------
# Timestamps

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def parse_rfc3339(text: str) -> datetime | None:
    """Parse an RFC 3339 date-time (``Z`` or ``±hh:mm`` offset required) to an aware UTC datetime.

    Fractional seconds of any length are accepted (truncated to microseconds); a leap second
    (``:60``) is read as ``:59``. Returns ``None`` when ``text`` is not such a timestamp.
    """
    m = _RFC3339.fullmatch(text.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    micro = int((m.group(7) or "")[:6].ljust(6, "0"))
    if m.group(8):
        tz = UTC
    else:
        off_h, off_m = int(m.group(10)), int(m.group(11))
        if off_h > 23 or off_m > 59:
            return None
        offset = timedelta(hours=off_h, minutes=off_m)
        tz = timezone(-offset if m.group(9) == "-" else offset)
    try:
        dt = datetime(year, month, day, hour, minute, min(second, 59), micro, tzinfo=tz)
        return dt.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def epoch_seconds(value: float) -> datetime | None:
    """Seconds since the epoch as an aware UTC datetime, or ``None`` when out of range."""
    if not math.isfinite(value):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError):
        return None


# ---------------------------------------------------------------------------------------------
# Values and steps


def number(text: str) -> float | None:
    """``float(text)`` or ``None``; never raises."""
    try:
        return float(text.strip())
    except (ValueError, TypeError):
        return None


class StepCounter:
    """Per-metric step counting: explicit steps win, otherwise each metric counts 0, 1, 2, ..."""

    def __init__(self) -> None:
        self.next: dict[str, int] = {}

    def step(self, metric: str, explicit: int | None) -> int:
        step = self.next.get(metric, 0) if explicit is None else explicit
        self.next[metric] = max(self.next.get(metric, 0), step + 1)
        return step


class Resumable:
    """The step counters of a parser, saved with a log offset and restored after a restart."""

    _steps: StepCounter

    @property
    def next_steps(self) -> dict[str, int]:
        return dict(self._steps.next)

    def resume(self, next_steps: Mapping[str, int]) -> None:
        self._steps.next = dict(next_steps)
