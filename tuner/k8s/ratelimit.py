"""Client-side flow control toward the apiserver: a token bucket of requests.

The apiserver protects itself (``--max-requests-inflight``, priority and fairness, 429 with
``Retry-After``), but a service that starts 1,000 trials at once should not lean on that: it
would crowd out the Job controller and the kubelets that share the apiserver. So every request
:class:`tuner.k8s.client.RetryingClient` sends takes a token first: ``qps`` tokens a second, at
most ``burst`` saved up, as client-go's ``--kube-api-qps`` / ``--kube-api-burst`` do.

The bucket hands out reservations in arrival order: a caller that finds it empty is told how
long to wait for its own token, and the next caller queues behind it, so no request starves.
It runs on one event loop and needs no lock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

DEFAULT_QPS = 100.0
"""Requests a second ``tuner serve`` sends to the apiserver by default."""
DEFAULT_BURST = 200
"""Requests it may send at once after a quiet spell."""


class TokenBucket:
    """``qps`` requests a second on average, ``burst`` at most at once.

    Args:
        qps: tokens added a second (> 0).
        burst: the most tokens saved up (>= 1); the bucket starts full.
        clock: monotonic seconds (injectable for tests).
        sleep: how a caller waits for its token (injectable for tests).
    """

    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs qps > 0 and burst >= 1, not {qps}, {burst}")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self.waited = 0.0
        """Seconds callers spent waiting for tokens, in total (for telemetry and benchmarks)."""

    def reserve(self) -> float:
        """Take one token; the seconds to wait before using it (0 when one was there).

        Tokens may go negative: each waiting caller holds a reservation, and the next one
        waits for the token after it.
        """
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.qps)
        self._updated = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    async def acquire(self) -> None:
        """Wait for a token."""
        delay = self.reserve()
        if delay > 0:
            self.waited += delay
            await self._sleep(delay)


def token_bucket(qps: float, burst: int) -> TokenBucket | None:
    """The bucket for ``--kube-api-qps`` / ``--kube-api-burst``; ``None`` (no limit) when
    ``qps`` is 0."""
    return TokenBucket(qps, max(1, burst)) if qps > 0 else None
