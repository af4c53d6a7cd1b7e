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
import time
import warnings
from typing import Any
from urllib.parse import quote, urlsplit

from tuner.errors import ReportError
from tuner.names import (
    ENV_API_URL,
    ENV_EXPERIMENT,
    ENV_NAMESPACE,
    ENV_TRIAL,
    ENV_TRIAL_TOKEN,
    HEADER_AUTHORIZATION,
)

ENV_URL = ENV_API_URL
ENV_TOKEN = ENV_TRIAL_TOKEN

RETRY_DELAYS = (0.1, 0.2, 0.4, 0.8, 1.5)
"""Pauses between attempts after a connection error or a 502/503/504 (about 3 s in all)."""

TIMEOUT = 10.0
_RETRY_STATUS = (502, 503, 504)


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
            the server refuses the report, or when it stays unreachable after a few retries.
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
    env = _environment()
    url = (
        f"{env[ENV_URL].rstrip('/')}/api/v1/experiments/{quote(env[ENV_EXPERIMENT], safe='')}"
        f"/trials/{quote(env[ENV_TRIAL], safe='')}/observations"
        f"?namespace={quote(env.get(ENV_NAMESPACE) or 'default', safe='')}"
    )
    body = json.dumps({"step": step, "metrics": values}, allow_nan=True).encode()
    answer = _post(url, body, env[ENV_TOKEN])
    ignored = answer.get("ignored") or []
    if ignored:
        warnings.warn(
            f"tuner.report: the experiment's objective does not list {', '.join(ignored)}; "
            "those values were not stored",
            stacklevel=2,
        )
    return bool(answer.get("should_stop", False))


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
    for delay in (*RETRY_DELAYS, None):
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
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            last = str(reason)
        if delay is None:
            break
        time.sleep(delay)
    raise ReportError(
        f"could not reach the tuner server at {url.split('/api/', 1)[0]} "
        f"after {len(RETRY_DELAYS) + 1} attempts: {last}"
    )


def _detail(error: Any) -> str:
    try:
        payload = json.loads(error.read() or b"{}")
    except (ValueError, OSError):
        return str(error.reason)
    detail = payload.get("detail") if isinstance(payload, dict) else None
    return str(detail or error.reason)


def _trial() -> str:
    return os.environ.get(ENV_TRIAL, "?")
