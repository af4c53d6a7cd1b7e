"""The ``PrometheusMetric`` collector: scrape the trial's metrics endpoint.

The spec's ``source.httpGet`` gives the ``port`` and ``path`` (Katib's defaults: 8080 and
``/metrics``). Locally the endpoint is ``http://127.0.0.1:<port><path>``; on Kubernetes it is the
Pod's IP. The text format is parsed with ``prometheus_client``'s parser.

A sample whose name is a metric of the spec is an observation (with labels, the first sample of
that name counts). A sample named ``step``, ``global_step`` or ``epoch`` gives the step;
otherwise each metric counts its own steps. A scrape records a metric only when its value or
step changed since the previous scrape, so a gauge that stays put is one observation, not one
per scrape. The time is the sample's timestamp when the endpoint gives one, else the scrape's.

The endpoint is scraped every :data:`SCRAPE_INTERVAL` seconds while the trial runs, and once
more when it has ended (usually too late: the process is gone). A trial must therefore keep
serving its last values for a scrape before it exits. An endpoint that never answered by the end
makes the trial's metrics unavailable with a message saying so.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from tuner.collectors.common import STEP_KEYS, StepCounter, Unknown, epoch_seconds, utcnow
from tuner.trials import Observation

if TYPE_CHECKING:
    from tuner.spec import ExperimentSpec

DEFAULT_PORT = 8080
DEFAULT_PATH = "/metrics"
SCRAPE_INTERVAL = 0.5
"""Seconds between two scrapes of a running trial."""
SCRAPE_TIMEOUT = 5.0


def endpoint(spec: ExperimentSpec, host: str = "127.0.0.1") -> str:
    """The URL to scrape for a spec's ``source.httpGet`` (Katib's defaults filled in)."""
    source = spec.metrics_collector_spec.source
    http_get: dict[str, Any] = dict(source.http_get or {}) if source is not None else {}
    port = int(http_get.get("port") or DEFAULT_PORT)  # an int-or-string, digits (validated)
    path = str(http_get.get("path") or DEFAULT_PATH)
    if not path.startswith("/"):
        path = "/" + path
    return f"http://{host}:{port}{path}"


def parse_samples(text: str) -> list[tuple[str, float, float | None]]:
    """``(name, value, timestamp)`` of every sample of a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    out: list[tuple[str, float, float | None]] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            stamp = sample.timestamp
            out.append(
                (sample.name, float(sample.value), float(stamp) if stamp is not None else None)
            )
    return out


HostLookup = Callable[[], Awaitable[str | None]]
"""Where the trial is reached now (its Pod's IP), or ``None`` while it has no address."""


class PrometheusScraper:
    """Scrapes one trial's endpoint; the controller polls :meth:`collect`.

    Args:
        spec: the experiment's spec (``source.httpGet`` and the objective).
        host: where the trial is reached: an address, or a lookup asked again after a failed
            scrape (a Pod's IP changes when the Job retries it).
        interval: seconds between two scrapes.
    """

    def __init__(
        self, spec: ExperimentSpec, host: str | HostLookup, interval: float = SCRAPE_INTERVAL
    ) -> None:
        self.spec = spec
        self._host = host
        self.url: str | None = endpoint(spec, host) if isinstance(host, str) else None
        objective = spec.objective
        self.metrics: tuple[str, ...] = tuple(objective.metric_names)
        self.interval = interval
        self._steps = StepCounter()
        self._last: dict[str, tuple[float, int | None]] = {}
        self._unknown = Unknown(frozenset(STEP_KEYS))
        self._answered = False
        self._ok = False
        self._error = "no answer yet"
        self._missing_at_end = False
        self._scraped_at = float("-inf")

    def resume(self, last_steps: Mapping[str, int]) -> None:
        """Count steps on after those stored before a restart (``metric -> highest step``), so
        that new values are not taken for the stored ones."""
        self._steps.next = {m: s + 1 for m, s in last_steps.items()}

    @property
    def unknown(self) -> list[str]:
        return list(self._unknown.samples.values())

    @property
    def problem(self) -> str | None:
        if self._missing_at_end:
            where = self.url or endpoint(self.spec, "<the trial's address>")
            return f"the metrics endpoint {where} never answered ({self._error})"
        return None

    async def collect(self, final: bool = False) -> list[Observation]:
        now = _time.monotonic()
        if not final and now - self._scraped_at < self.interval:
            return []
        self._scraped_at = now
        text = await self._fetch()
        if final and not self._answered:
            self._missing_at_end = True
        return [] if text is None else self.observe(text)

    async def _fetch(self) -> str | None:
        if not isinstance(self._host, str) and (self.url is None or not self._ok):
            address = await self._host()
            self.url = endpoint(self.spec, address) if address else None
        self._ok = False
        if self.url is None:
            self._error = "the trial has no address yet"
            return None
        try:
            # trust_env=False: a proxy of the environment must not see pod or loopback addresses
            async with httpx.AsyncClient(timeout=SCRAPE_TIMEOUT, trust_env=False) as client:
                response = await client.get(self.url)
        except httpx.HTTPError as e:
            self._error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            return None
        if response.status_code != 200:
            self._error = f"HTTP {response.status_code}"
            return None
        self._answered = self._ok = True
        return response.text

    def observe(self, text: str) -> list[Observation]:
        """Observations from one scrape's text (new values and steps only)."""
        try:
            samples = parse_samples(text)
        except ValueError as e:
            self._error = f"not the Prometheus text format: {e}"
            return []
        names = set(self.metrics)
        values: dict[str, tuple[float, float | None]] = {}
        steps: dict[str, int] = {}
        for name, value, stamp in samples:
            if name in names:
                values.setdefault(name, (value, stamp))
            elif name in STEP_KEYS and value >= 0 and float(value).is_integer():
                steps.setdefault(name, int(value))
            else:
                self._unknown.note(name, repr(value))
        explicit = next((steps[k] for k in STEP_KEYS if k in steps), None)
        scraped = utcnow()
        out: list[Observation] = []
        for name in self.metrics:
            if name not in values:
                continue
            value, stamp = values[name]
            previous = self._last.get(name)
            if previous is not None and _same(previous, (value, explicit)):
                continue
            self._last[name] = (value, explicit)
            time = (epoch_seconds(stamp) if stamp is not None else None) or scraped
            step = self._steps.step(name, explicit)
            out.append(Observation(metric=name, step=step, value=value, time=time))
        return out


def _same(a: tuple[float, int | None], b: tuple[float, int | None]) -> bool:
    """Equal values and steps; NaN equals NaN here (a gauge left at NaN is not news)."""
    if a[1] != b[1]:
        return False
    return a[0] == b[0] or (math.isnan(a[0]) and math.isnan(b[0]))
