"""A limit on wrong API tokens per client address, against guessing the token.

Each wrong token (at ``POST /ui/login`` or as an API bearer token) counts against the address
it came from for :data:`WINDOW` seconds. With :data:`LIMIT` of them in the window, every token
check from that address, right or wrong, is answered 429 with ``Retry-After`` until the oldest
failure leaves the window: a guesser cannot tell a hit while it is blocked, so it gets at most
:data:`LIMIT` guesses a minute. A right token does not clear the count (a guesser could
interleave a token it knows).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from tuner.errors import TooManyAttempts

LIMIT = 10
WINDOW = 60.0
MAX_ADDRESSES = 10_000
"""Addresses remembered at most (the oldest are forgotten first): memory stays bounded."""


class FailedAttempts:
    """Wrong-token times per client address (thread-safe: sync routes run in a threadpool)."""

    def __init__(self, limit: int = LIMIT, window: float = WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, address: str) -> None:
        """Raise :class:`TooManyAttempts` while ``address`` is blocked."""
        now = time.monotonic()
        with self._lock:
            times = self._failures.get(address)
            if times is None:
                return
            while times and times[0] <= now - self.window:
                times.popleft()
            if not times:
                del self._failures[address]
                return
            if len(times) >= self.limit:
                wait = max(1, math.ceil(times[0] + self.window - now))
                raise TooManyAttempts(
                    f"too many wrong tokens from {address}: try again in {wait} s", wait
                )

    def failed(self, address: str) -> None:
        """Count a wrong token from ``address``."""
        now = time.monotonic()
        with self._lock:
            times = self._failures.pop(address, None) or deque(maxlen=self.limit)
            times.append(now)
            self._failures[address] = times  # re-inserted: the dict's order is by recency
            while len(self._failures) > MAX_ADDRESSES:
                del self._failures[next(iter(self._failures))]
