"""Writes that arrive together share one transaction.

When a thousand trials start (or end) at once, each one's state change is a small UPDATE, and
alone each costs a commit: a millisecond or more on SQLite, one after another on the database
thread. A :class:`Coalescer` queues the calls that arrive while a batch is being written and
writes them as the next batch, in one call of ``write_many`` (one transaction). A lone call
still goes at once; each caller gets its own result, and only once its batch is committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """Batches calls to ``write_many`` (run through ``run``, e.g. on the database thread).

    Args:
        run: runs a function off the event loop and returns its result.
        write_many: writes the items in one transaction; one result per item, in order.
        max_batch: the most items written in one call.
    """

    def __init__(
        self,
        run: Callable[[Callable[[], list[R]]], Awaitable[list[R]]],
        write_many: Callable[[Sequence[T]], list[R]],
        max_batch: int = 500,
    ) -> None:
        self._run = run
        self._write_many = write_many
        self.max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0
        """Calls of ``write_many`` so far (for tests)."""

    async def __call__(self, item: T) -> R:
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await asyncio.shield(done)  # a cancelled caller's write is still made

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            items = [item for item, _ in batch]
            try:
                results = await self._run(partial(self._write_many, items))
            except Exception as e:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(e)
                continue
            self.batches += 1
            for (_, done), result in zip(batch, results, strict=True):
                if not done.done():
                    done.set_result(result)
