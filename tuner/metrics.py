"""Metrics collection: turning what a trial prints or writes into :class:`Observation` values.

Trials report metrics three ways (README, "Metrics"): the push API, lines on stdout, or a
metrics file. This module covers the two text channels; the controller feeds it lines and
stores what comes out.

Text lines (``StdOut`` collector, ``File`` collector with format ``TEXT``)
    Each line is matched with Katib's default filter :data:`DEFAULT_FILTER`
    (``name=value``, e.g. ``epoch=3 accuracy=0.91 loss=0.3``) or with the spec's
    ``source.filter.metricsFormat`` regexes, where the first group is the metric name and the
    second its value (both stripped of surrounding whitespace, as Katib does). Every match
    anywhere on the line counts.

    * An optional leading RFC 3339 timestamp (``2024-01-01T10:00:00.5+02:00 loss=0.3``) is
      the observation time and is not matched against the filter; without one, the time is
      ``now()`` (UTC, injectable).
    * Only the objective's metrics (``objectiveMetricName`` and ``additionalMetricNames``)
      are kept; other names are ignored, but the parser remembers the first few of them with
      a value (``unknown``, e.g. ``score=0.93``) so that a trial that never reported its
      objective can say what it did print.
    * The step of the line's observations is an explicit ``step=N``, ``global_step=N`` or
      ``epoch=N`` on the same line (a non-negative integer, first of these keys that is
      present, and only when that key is not itself one of the metrics). Otherwise each
      metric counts its own steps 0, 1, 2, ...; after an explicit step ``N`` a metric's
      counter continues at ``N + 1``. Steps are a function of the output alone, so parsing
      the same output again with a fresh parser yields the same steps (storage can
      deduplicate by ``(metric, step)`` after a controller restart).
    * Values that do not parse as a float are skipped, as are lines without any match;
      nothing in a line is ever fatal. The default filter cannot match ``nan`` or ``inf``;
      a custom filter can, and then the value is kept as ``float("nan")`` / ``inf`` for the
      early-stopping rules to judge.

JSON lines (``File`` collector with format ``JSON``)
    Each line is one JSON object (Katib's format). Keys that are metric names carry the value
    as a JSON number or a numeric string. An optional ``timestamp`` is epoch seconds (number)
    or an RFC 3339 string; an optional ``step``, ``global_step`` or ``epoch`` (integer,
    integral float or digit string) is the step, with the same fallback counting as above.
    Empty lines, invalid JSON and non-objects are skipped.

Files are read incrementally by :class:`FileTailer`, which the controller polls.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tuner.trials import Observation

if TYPE_CHECKING:
    from tuner.spec import ExperimentSpec, Objective

DEFAULT_FILTER = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
"""Katib's default metrics filter (``pkg/metricscollector/v1beta1/common/const.go``)."""

STEP_KEYS = ("step", "global_step", "epoch")
"""Keys that give the step of a line's observations, in order of preference."""

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


UNKNOWN_SAMPLES = 5
"""How many metric-looking names outside the spec a parser remembers."""


class MetricsParser(Protocol):
    """Turns one line of trial output into observations; keeps per-trial state (step counters)."""

    def parse(self, line: str) -> list[Observation]: ...


class _Unknown:
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


def _epoch_seconds(value: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError):
        return None


# ---------------------------------------------------------------------------------------------
# Values and steps


def _number(text: str) -> float | None:
    """``float(text)`` or ``None``; never raises."""
    try:
        return float(text.strip())
    except (ValueError, TypeError):
        return None


_STEP_PATTERN = re.compile(
    r"(?<![\w|-])(" + "|".join(STEP_KEYS) + r")\s*=\s*(\d+)(?!\w|\.\d)", re.IGNORECASE
)


_LEADING_TOKEN = re.compile(r"\s*(\S+)\s+")


class _StepCounter:
    """Per-metric step counting shared by the text and JSON parsers."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def step(self, metric: str, explicit: int | None) -> int:
        step = self._next.get(metric, 0) if explicit is None else explicit
        self._next[metric] = max(self._next.get(metric, 0), step + 1)
        return step


class _Resumable:
    """The step counters of a parser, saved with a log offset and restored after a restart."""

    _steps: _StepCounter

    @property
    def next_steps(self) -> dict[str, int]:
        return dict(self._steps._next)

    def resume(self, next_steps: Mapping[str, int]) -> None:
        self._steps._next = dict(next_steps)


# ---------------------------------------------------------------------------------------------
# Parsers


class LineParser(_Resumable):
    """Parses text lines (stdout or a TEXT metrics file) with Katib's filter or custom regexes.

    One parser per trial: it counts steps per metric. See the module docstring for the rules.

    Args:
        objective: the experiment's objective; only its metrics are kept.
        metrics_format: ``source.filter.metricsFormat`` regexes (group 1 = name,
            group 2 = value); ``None`` or empty means :data:`DEFAULT_FILTER`.
        now: the clock for lines without a timestamp.

    Raises:
        ValueError: a regex has fewer than two groups (``re.error`` if it does not compile).
    """

    def __init__(
        self,
        objective: Objective,
        metrics_format: Sequence[str] | None = None,
        now: Clock = utcnow,
    ) -> None:
        self.metrics: tuple[str, ...] = tuple(objective.metric_names)
        self._names = frozenset(self.metrics)
        self._patterns = [re.compile(f) for f in (metrics_format or [DEFAULT_FILTER])]
        for p in self._patterns:
            if p.groups < 2:
                raise ValueError(f"metrics format {p.pattern!r} needs two groups: name, value")
        self._now = now
        self._steps = _StepCounter()
        self._unknown = _Unknown(frozenset(STEP_KEYS))

    @property
    def unknown(self) -> list[str]:
        """Up to :data:`UNKNOWN_SAMPLES` ``name=value`` matches whose name is not in the spec
        (the first value of each name), in the order they were printed; step keys excluded."""
        return list(self._unknown.samples.values())

    def parse(self, line: str) -> list[Observation]:
        body = line.rstrip("\r\n")
        time: datetime | None = None
        lead = _LEADING_TOKEN.match(body)
        if lead is not None:
            time = parse_rfc3339(lead.group(1))
            if time is not None:
                body = body[lead.end() :]
        found: list[tuple[str, float]] = []
        for pattern in self._patterns:
            for m in pattern.finditer(body):
                name, raw = m.group(1), m.group(2)
                if name is None or raw is None:
                    continue
                name = name.strip()
                if name not in self._names:
                    if _number(raw) is not None:
                        self._unknown.note(name, raw)
                    continue
                value = _number(raw)
                if value is not None:
                    found.append((name, value))
        if not found:
            return []
        explicit = self._explicit_step(body)
        if time is None:
            time = self._now()
        return [
            Observation(metric=name, step=self._steps.step(name, explicit), value=value, time=time)
            for name, value in found
        ]

    def _explicit_step(self, body: str) -> int | None:
        steps: dict[str, int] = {}
        for m in _STEP_PATTERN.finditer(body):
            key = m.group(1)
            if key in self._names:
                continue  # a metric, not a step marker
            steps.setdefault(key.lower(), int(m.group(2)))
        return next((steps[k] for k in STEP_KEYS if k in steps), None)


class JsonLineParser(_Resumable):
    """Parses Katib's JSON-lines metrics files: one JSON object per line.

    One parser per trial: it counts steps per metric. See the module docstring for the rules.
    """

    def __init__(self, objective: Objective, now: Clock = utcnow) -> None:
        self.metrics: tuple[str, ...] = tuple(objective.metric_names)
        self._now = now
        self._steps = _StepCounter()
        self._unknown = _Unknown(frozenset((*STEP_KEYS, "timestamp")))

    @property
    def unknown(self) -> list[str]:
        """Up to :data:`UNKNOWN_SAMPLES` numeric keys that are not metrics of the spec, as
        ``name=value`` (step keys and ``timestamp`` excluded)."""
        return list(self._unknown.samples.values())

    def parse(self, line: str) -> list[Observation]:
        text = line.strip()
        if not text:
            return []
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            return []
        if not isinstance(obj, dict):
            return []
        for key, raw in obj.items():
            if key not in self.metrics and _json_number(raw) is not None:
                self._unknown.note(str(key), str(raw))
        found = [
            (m, v) for m in self.metrics if m in obj and (v := _json_number(obj[m])) is not None
        ]
        if not found:
            return []
        time = _json_time(obj.get("timestamp")) or self._now()
        explicit = next(
            (
                s
                for k in STEP_KEYS
                if k in obj and k not in self.metrics and (s := _json_step(obj[k])) is not None
            ),
            None,
        )
        return [
            Observation(metric=name, step=self._steps.step(name, explicit), value=value, time=time)
            for name, value in found
        ]


def _json_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an integer too large for a float
            return None
    if isinstance(value, str):
        return _number(value)
    return None


def _json_step(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _json_time(value: object) -> datetime | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        f = float(value)
        return _epoch_seconds(f) if math.isfinite(f) else None
    if isinstance(value, str):
        return parse_rfc3339(value)
    return None


def parser_for(spec: ExperimentSpec, now: Clock = utcnow) -> LineParser | JsonLineParser | None:
    """The parser for a spec's metrics collector, or ``None`` when there is no text to parse.

    ``StdOut`` and ``File`` with format ``TEXT`` get a :class:`LineParser` (with the spec's
    ``metricsFormat``, if any); ``File`` with format ``JSON`` gets a :class:`JsonLineParser`;
    ``Push`` and ``None`` (and the unsupported kinds) get ``None``.
    """
    mc = spec.metrics_collector_spec
    kind = mc.kind.value
    source = mc.source
    formats = source.filter.metrics_format if source is not None and source.filter else None
    if kind == "StdOut":
        return LineParser(spec.objective, formats, now=now)
    if kind == "File":
        fsp = source.file_system_path if source is not None else None
        if fsp is not None and fsp.format is not None and fsp.format.value == "JSON":
            return JsonLineParser(spec.objective, now=now)
        return LineParser(spec.objective, formats, now=now)
    return None


# ---------------------------------------------------------------------------------------------
# Files


class FileTailer:
    """Reads a metrics file incrementally; the controller calls :meth:`poll` periodically.

    Each poll parses the complete lines appended since the previous poll. A missing file is
    not an error (the trial may not have created it yet): the poll returns ``[]``. A trailing
    line without its newline is kept back until it is completed, or until :meth:`flush`
    (``poll(final=True)``) when the trial has ended. If the file shrinks or is replaced by
    another file (a different inode), reading starts over from its beginning.

    Lines are decoded as UTF-8 (undecodable bytes replaced); ``\\r\\n`` endings are accepted.
    Errors other than a missing file (permissions, a directory at ``path``) propagate.
    """

    def __init__(self, path: str | os.PathLike[str], parser: MetricsParser) -> None:
        self.path = Path(path)
        self.parser = parser
        self._offset = 0
        self._identity: tuple[int, int] | None = None
        self._pending = b""

    @property
    def offset(self) -> int:
        """Bytes of the file consumed so far (including a kept-back partial line)."""
        return self._offset

    def poll(self, final: bool = False) -> list[Observation]:
        """Observations from the lines completed since the last poll.

        Args:
            final: also parse a trailing line that has no newline (the trial has ended).
        """
        data = self._read_new()
        buffer = self._pending + data
        *lines, self._pending = buffer.split(b"\n")
        if final and self._pending:
            lines.append(self._pending)
            self._pending = b""
        out: list[Observation] = []
        for raw in lines:
            out.extend(self.parser.parse(raw.decode("utf-8", errors="replace").rstrip("\r")))
        return out

    def flush(self) -> list[Observation]:
        """Same as ``poll(final=True)``."""
        return self.poll(final=True)

    def _read_new(self) -> bytes:
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            return b""
        with f:
            st = os.fstat(f.fileno())
            identity = (st.st_dev, st.st_ino)
            if (self._identity is not None and identity != self._identity) or (
                st.st_size < self._offset
            ):
                self._offset = 0
                self._pending = b""
            self._identity = identity
            f.seek(self._offset)
            data = f.read()
        self._offset += len(data)
        return data
