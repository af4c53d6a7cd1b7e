"""JSON lines (``File`` collector with format ``JSON``), Katib's format: one object per line.

Keys that are metric names carry the value as a numeric string (Katib's form) or a JSON number.
An optional ``timestamp`` is epoch seconds (number) or an RFC 3339 string; without a valid one,
the time is ``now()``. An optional ``step``, ``global_step`` or ``epoch`` (integer, integral
float or digit string) is the step, with the same fallback counting as text lines.

Empty lines are skipped. A line that is not a JSON object makes the whole collection fail, as
in Katib: the parser keeps going (what was stored stays stored) but records a :attr:`problem`,
and the trial ends ``MetricsUnavailable`` with it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from tuner.collectors.common import (
    STEP_KEYS,
    Clock,
    Resumable,
    StepCounter,
    Unknown,
    epoch_seconds,
    number,
    parse_rfc3339,
    utcnow,
)
from tuner.trials import Observation

if TYPE_CHECKING:
    from tuner.spec import Objective

_QUOTE = 80
"""How much of a bad line a problem message quotes."""


class JsonLineParser(Resumable):
    """Parses Katib's JSON-lines metrics files: one JSON object per line.

    One parser per trial: it counts steps per metric. See the module docstring for the rules.
    """

    def __init__(self, objective: Objective, now: Clock = utcnow) -> None:
        self.metrics: tuple[str, ...] = tuple(objective.metric_names)
        self._now = now
        self._steps = StepCounter()
        self._unknown = Unknown(frozenset((*STEP_KEYS, "timestamp")))
        self._lines = 0
        self._problem: str | None = None

    @property
    def unknown(self) -> list[str]:
        """Up to a few numeric keys that are not metrics of the spec, as ``name=value`` (step
        keys and ``timestamp`` excluded)."""
        return list(self._unknown.samples.values())

    @property
    def problem(self) -> str | None:
        """The first line that was not a JSON object, described; ``None`` while all were."""
        return self._problem

    def parse(self, line: str) -> list[Observation]:
        self._lines += 1
        text = line.strip()
        if not text:
            return []
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as e:
            self._fail(text, f"it is not valid JSON ({str(e)[:_QUOTE]})")
            return []
        if not isinstance(obj, dict):
            self._fail(text, f"it is a JSON {type(obj).__name__}, not an object")
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

    def _fail(self, text: str, why: str) -> None:
        if self._problem is None:
            quoted = text if len(text) <= _QUOTE else text[:_QUOTE] + "..."
            self._problem = f"line {self._lines} of the JSON metrics file, {quoted!r}: {why}"


def _json_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an integer too large for a float
            return None
    if isinstance(value, str):
        return number(value)
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
        return epoch_seconds(float(value))
    if isinstance(value, str):
        return parse_rfc3339(value)
    return None
