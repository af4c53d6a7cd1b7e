"""How many pod logs a runner reads at once: a bounded number of followed streams, and a
bounded number of one-shot reads.

A trial's StdOut metrics come from its primary container's log. Following that log holds a
request (and the thread that reads it, :func:`tuner.k8s.streams.thread_lines`) open for the
trial's whole life, so 1,000 running trials would hold 1,000 streams. Instead:

* at most ``follows`` logs are followed at once, first come first served: those trials report
  their metrics while they run (what early stopping and live curves need);
* a trial that finds every follow slot taken waits for one, and stays ready to read its log in
  one request as soon as its container has ended (it then needs no slot: a finished trial is
  never held up behind the running ones);
* one-shot reads of ended containers run at most ``reads`` at a time.

So the streams and threads a runner holds are bounded by ``follows + reads``, whatever the
number of trials.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from tuner.k8s.informer import Changes

DEFAULT_FOLLOWS = 100
DEFAULT_READS = 32


class LogSlots:
    def __init__(self, follows: int = DEFAULT_FOLLOWS, reads: int = DEFAULT_READS) -> None:
        if follows < 1 or reads < 1:
            raise ValueError("follows and reads must be at least 1")
        self.follows = follows
        self.reads = reads
        self._loop: asyncio.AbstractEventLoop | None = None
        self._follow = asyncio.Semaphore(follows)
        self._read = asyncio.Semaphore(reads)
        self.open = 0
        """Log requests open now (followed or read once)."""
        self.peak = 0
        """The most log requests that were open at once."""

    async def follow_or_change(self, changes: Changes) -> bool:
        """Take a follow slot (True; give it back with :meth:`end_follow`), or return False
        when ``changes`` fires first: the caller looks at its pod again (it may have ended)."""
        self._bind()
        if not self._follow.locked():
            await self._follow.acquire()
            self._opened()
            return True
        acquire = asyncio.ensure_future(self._follow.acquire())
        change = asyncio.ensure_future(changes.wait())
        try:
            await asyncio.wait({acquire, change}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled: the slot, if it was won meanwhile, goes back
            change.cancel()
            self._drop(acquire)
            raise
        change.cancel()
        if not acquire.done():
            self._drop(acquire)
            return False
        self._opened()
        return True

    def _drop(self, acquire: asyncio.Future[Any]) -> None:
        """Withdraw an acquire; one that wins the slot all the same gives it back."""
        acquire.cancel()

        def give_back(done: asyncio.Future[Any]) -> None:
            if not done.cancelled() and done.exception() is None:
                self._follow.release()

        acquire.add_done_callback(give_back)

    def end_follow(self) -> None:
        self.open -= 1
        self._follow.release()

    @contextlib.asynccontextmanager
    async def read_once(self) -> AsyncIterator[None]:
        """Hold one of the one-shot read slots while reading an ended container's log."""
        self._bind()
        async with self._read:
            self._opened()
            try:
                yield
            finally:
                self.open -= 1

    def _bind(self) -> None:
        """Fresh slots for a new event loop (a runner may outlive one, as in tests)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._follow = asyncio.Semaphore(self.follows)
            self._read = asyncio.Semaphore(self.reads)
            self.open = 0

    def _opened(self) -> None:
        self.open += 1
        self.peak = max(self.peak, self.open)
