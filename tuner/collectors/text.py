r"""Text lines (``StdOut`` collector, ``File`` collector with format ``TEXT``).

Each line is matched with Katib's default filter :data:`~tuner.collectors.common.DEFAULT_FILTER`
(``name=value``, e.g. ``epoch=3 accuracy=0.91 loss=0.3``) or with the spec's
``source.filter.metricsFormat`` regexes, where the first group is the metric name and the second
its value (both stripped of surrounding whitespace, as Katib does). Every match of every regex
anywhere on the line counts, in the order of the regexes, as in Katib. As in Go's regexp,
``\w``, ``\d`` and ``\s`` are ASCII classes (an Arabic-Indic digit is no number).

* An optional leading RFC 3339 timestamp (``2024-01-01T10:00:00.5+02:00 loss=0.3``, the first
  token of the line, as Katib reads it) is the observation time and is not matched against the
  filter; without one, the time is ``now()`` (UTC, injectable). Katib uses the zero time there.
* Only the objective's metrics (``objectiveMetricName`` and ``additionalMetricNames``) are kept;
  other names are ignored, but the parser remembers the first few of them with a value
  (``unknown``, e.g. ``score=0.93``) so that a trial that never reported its objective can say
  what it did print.
* The step of the line's observations is an explicit ``step=N``, ``global_step=N`` or
  ``epoch=N`` on the same line (a non-negative integer, first of these keys that is present,
  and only when that key is not itself one of the metrics). Otherwise each metric counts its own
  steps 0, 1, 2, ...; after an explicit step ``N`` a metric's counter continues at ``N + 1``.
* Values that do not parse as a float are skipped (Katib stores them as text), as are lines
  without any match; nothing in a line is ever fatal. The default filter cannot match ``nan`` or
  ``inf``; a custom filter can, and then the value is kept as ``float("nan")`` / ``inf`` for the
  early-stopping rules to judge.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from tuner.collectors.common import (
    DEFAULT_FILTER,
    STEP_KEYS,
    Clock,
    Resumable,
    StepCounter,
    Unknown,
    number,
    parse_rfc3339,
    utcnow,
)
from tuner.trials import Observation

if TYPE_CHECKING:
    from tuner.spec import Objective

_STEP_PATTERN = re.compile(
    r"(?<![\w|-])(" + "|".join(STEP_KEYS) + r")\s*=\s*(\d+)(?!\w|\.\d)", re.IGNORECASE
)
_LEADING_TOKEN = re.compile(r"\s*(\S+)\s+")


class LineParser(Resumable):
    """Parses text lines (stdout or a TEXT metrics file) with Katib's filter or custom regexes.

    One parser per trial: it counts steps per metric. See the module docstring for the rules.

    Args:
        objective: the experiment's objective; only its metrics are kept.
        metrics_format: ``source.filter.metricsFormat`` regexes (group 1 = name,
            group 2 = value); ``None`` or empty means Katib's default filter.
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
        # ASCII: Go's regexp (Katib's) gives \w, \d and \s their ASCII meaning only.
        self._patterns = [re.compile(f, re.ASCII) for f in (metrics_format or [DEFAULT_FILTER])]
        for p in self._patterns:
            if p.groups < 2:
                raise ValueError(f"metrics format {p.pattern!r} needs two groups: name, value")
        self._now = now
        self._steps = StepCounter()
        self._unknown = Unknown(frozenset(STEP_KEYS))

    @property
    def unknown(self) -> list[str]:
        """Up to a few ``name=value`` matches whose name is not in the spec (the first value of
        each name), in the order they were printed; step keys excluded."""
        return list(self._unknown.samples.values())

    @property
    def problem(self) -> str | None:
        """Always ``None``: no text line makes a trial's metrics unavailable."""
        return None

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
                    if number(raw) is not None:
                        self._unknown.note(name, raw)
                    continue
                value = number(raw)
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
