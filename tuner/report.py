"""``tuner.report``: the trial-side helper that pushes metrics to ``tuner serve``/``tuner run``.

A trial of a spec with the ``Push`` collector, started by ``tuner serve`` or by ``tuner run``
(which serves the same push endpoint on an ephemeral loopback port for the run), finds
everything it needs in its environment:

``TUNER_API_URL``
    where the server listens (for example ``http://127.0.0.1:8000``);
``TUNER_NAMESPACE``, ``TUNER_EXPERIMENT``, ``TUNER_TRIAL``
    which trial this is;
``TUNER_TRIAL_TOKEN``
    the trial's own token, sent as ``Authorization: Bearer``. It is valid for this trial
    only.
``TUNER_REPORT_RETRY_SECONDS`` (optional)
    how long a report is retried while the server is unreachable or answers 429, 502, 503
    or 504 (default 120 s: longer than a restart of ``tuner serve`` or ``tuner run``, so a
    trial rides one out instead of failing). The pauses grow exponentially (0.1 s doubling up
    to 5 s) with random jitter, so trials that lost their server together do not come back in
    lockstep; a ``Retry-After`` header is honoured. A report sent again after a lost answer
    is stored once (observations are keyed by trial, metric and step) when it gives its step.

Importing this module costs next to nothing: it needs only the standard library, and loads
``urllib.request`` on the first call. That is why ``import tuner`` can export :func:`report`.

Example::

    import tuner

    for epoch in range(10):
        loss = train_one_epoch()
        if tuner.report(step=epoch, loss=loss):
            break  # the early-stopping rule stopped this trial
"""

from __future__ import annotations

import json
import os
import random
import time
import warnings
from typing import Any
from urllib.parse import quote, urlsplit

from tuner.errors import ReportError
from tuner.names import (
    ENV_API_URL,
    ENV_EXPERIMENT,
    ENV_NAMESPACE,
    ENV_REPORT_RETRY_SECONDS,
    ENV_TRIAL,
    ENV_TRIAL_TOKEN,
    HEADER_AUTHORIZATION,
)

ENV_URL = ENV_API_URL
ENV_TOKEN = ENV_TRIAL_TOKEN

RETRY_WINDOW = 120.0
"""Seconds a report is retried by default (``TUNER_REPORT_RETRY_SECONDS`` overrides it)."""
FIRST_DELAY = 0.1
MAX_DELAY = 5.0
"""The pause after the first failed attempt, doubling up to this; each is jittered."""

TIMEOUT = 10.0
_RETRY_STATUS = (429, 502, 503, 504)


def report(step: int | None = None, **metrics: float) -> bool:
    """Report metric values of the current trial; returns whether the trial should stop.

    Args:
        step: the step (epoch, iteration) of the values, a non-negative integer. ``None``
            takes the next step of each metric (its highest stored step plus one).
        **metrics: metric name to value, e.g. ``loss=0.31, accuracy=0.92``. NaN and infinite
            values are sent as they are (a diverged trial is worth knowing about).

    Returns:
        ``True`` when the service decided that this trial should stop (an early-stopping
        rule, or the experiment ended): stop training and exit.

    Raises:
        ReportError: outside a trial of a Push spec, on invalid arguments, when
            the server refuses the report, or when it stays unreachable for the retry window
            (``TUNER_REPORT_RETRY_SECONDS``, default 120 s).
    """
    if not metrics:
        raise ReportError("tuner.report() needs at least one metric, e.g. report(loss=0.3)")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise ReportError(f"step must be a non-negative integer or None, got {step!r}")
    values: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                value = float(value)  # numpy and torch scalars
            except (TypeError, ValueError) as e:
                raise ReportError(f"metric {name}={value!r} is not a number") from e
        values[name] = float(value)
    answer = send(step, values)
    ignored = answer.get("ignored") or []
    if ignored:
        warnings.warn(
            f"tuner.report: the experiment's objective does not list {', '.join(ignored)}; "
            "those values were not stored",
            stacklevel=2,
        )
    return bool(answer.get("should_stop", False))


def send(step: int | None, values: dict[str, float]) -> dict[str, Any]:
    """Push ``values`` at ``step`` for the trial of this process's environment, retrying as
    :func:`report` does; returns the server's answer (``should_stop``, ``ignored``).

    The checked core of :func:`report`, also used by the metrics-collector sidecar
    (:mod:`tuner.collectors.relay`), which pushes what it reads from the trial's files.
    """
    env = _environment()
    url = (
        f"{env[ENV_URL].rstrip('/')}/api/v1/experiments/{quote(env[ENV_EXPERIMENT], safe='')}"
        f"/trials/{quote(env[ENV_TRIAL], safe='')}/observations"
        f"?namespace={quote(env.get(ENV_NAMESPACE) or 'default', safe='')}"
    )
    body = json.dumps({"step": step, "metrics": values}, allow_nan=True).encode()
    return _post(url, body, env[ENV_TOKEN])


def _environment() -> dict[str, str]:
    env = {
        k: os.environ.get(k, "")
        for k in (ENV_URL, ENV_NAMESPACE, ENV_EXPERIMENT, ENV_TRIAL, ENV_TOKEN)
    }
    missing = [k for k in (ENV_URL, ENV_EXPERIMENT, ENV_TRIAL, ENV_TOKEN) if not env[k]]
    if missing:
        hint = (
            "this process is not a trial started by `tuner serve` or `tuner run`"
            if len(missing) == 4
            else "the trial's spec does not use the Push collector, so no push endpoint was "
            "given to it: set metricsCollectorSpec.collector.kind to Push, or print metrics as "
            "`name=value` lines for the StdOut collector instead"
        )
        raise ReportError(
            f"tuner.report() can only be called inside a trial: {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set; {hint}"
        )
    return env


def _post(url: str, body: bytes, token: str) -> dict[str, Any]:
    import urllib.error
    import urllib.request

    host = urlsplit(url).hostname or ""
    handlers: list[urllib.request.BaseHandler] = []
    if host in ("127.0.0.1", "localhost", "::1"):
        handlers.append(urllib.request.ProxyHandler({}))  # never send loopback via a proxy
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            HEADER_AUTHORIZATION: f"Bearer {token}",
        },
    )
    last: str = ""
    window = retry_window()
    deadline = time.monotonic() + window
    attempts = 0
    while True:
        attempts += 1
        asked: float | None = None
        try:
            with opener.open(request, timeout=TIMEOUT) as response:
                answer: dict[str, Any] = json.loads(response.read() or b"{}")
                return answer
        except urllib.error.HTTPError as e:
            detail = _detail(e)
            if e.code not in _RETRY_STATUS:
                raise ReportError(
                    f"the server refused the report of trial {_trial()}: HTTP {e.code}: {detail}"
                ) from e
            last = f"HTTP {e.code}: {detail}"
            asked = retry_after(e.headers.get("Retry-After") if e.headers else None)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            last = str(reason)
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(left, asked if asked is not None else backoff(attempts)))
    raise ReportError(
        f"could not reach the tuner server at {url.split('/api/', 1)[0]} "
        f"in {window:g} s ({attempts} attempts; {ENV_REPORT_RETRY_SECONDS} sets how long): "
        f"{last}"
    )


def retry_window() -> float:
    """Seconds to retry for: ``TUNER_REPORT_RETRY_SECONDS``, else :data:`RETRY_WINDOW`."""
    text = os.environ.get(ENV_REPORT_RETRY_SECONDS, "")
    try:
        value = float(text) if text else RETRY_WINDOW
    except ValueError:
        raise ReportError(
            f"{ENV_REPORT_RETRY_SECONDS}={text!r} is not a number of seconds"
        ) from None
    return max(value, 0.0)


def backoff(attempt: int) -> float:
    """The pause after failed attempt number ``attempt`` (1, 2, ...): exponential, capped,
    with "equal jitter" (half fixed, half random)."""
    delay = min(MAX_DELAY, FIRST_DELAY * 2.0 ** min(attempt - 1, 30))
    return delay / 2 + random.uniform(0, delay / 2)


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _detail(error: Any) -> str:
    try:
        payload = json.loads(error.read() or b"{}")
    except (ValueError, OSError):
        return str(error.reason)
    detail = payload.get("detail") if isinstance(payload, dict) else None
    return str(detail or error.reason)


def _trial() -> str:
    return os.environ.get(ENV_TRIAL, "?")
