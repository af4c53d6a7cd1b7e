"""A polled collector at work for one running trial: polled every interval while the trial runs,
then once more when it has ended (File, TensorFlowEvent and PrometheusMetric collect this way)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from tuner.collectors.common import PolledCollector
from tuner.trials import Observation

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.2
"""Seconds between two polls of a running trial's collector."""

Observe = Callable[[Sequence[Observation]], Awaitable[object]]


class Polling:
    """Polls ``collector`` for ``trial`` in a task of its own, handing what it finds to
    ``observe``; :meth:`stop` when the trial has ended, then :meth:`finish`."""

    def __init__(
        self,
        trial: str,
        collector: PolledCollector,
        observe: Observe,
        interval: float = POLL_INTERVAL,
    ) -> None:
        self.trial = trial
        self.collector = collector
        self._observe = observe
        self._interval = interval
        self._done = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name=f"metrics of {trial}")

    async def _loop(self) -> None:
        while not self._done.is_set():
            try:
                observations = await self.collector.collect()
            except Exception:  # a bad poll must not end the trial; the final one will tell
                log.exception("trial %s: collecting its metrics failed", self.trial)
                observations = []
            if observations:
                await self._observe(observations)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), self._interval)

    async def stop(self) -> None:
        """Stop polling. Not a cancel: a write under way records its curve points too."""
        self._done.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def finish(self) -> tuple[list[str], str | None]:
        """The last collection, after :meth:`stop`: returns the metric-looking names outside the
        spec, and why the trial's metrics cannot be trusted (``None`` when they can)."""
        problem = None
        try:
            final = await self.collector.collect(final=True)
        except Exception as e:  # the collection failed, not the trial
            final, problem = [], f"metrics collection failed: {e}"
        if final:
            await self._observe(final)
        return list(self.collector.unknown), problem or self.collector.problem
