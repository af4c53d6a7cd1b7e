"""Shared informers: one list-then-watch per (namespace, resource), feeding every trial.

An :class:`Informer` keeps a cache of one resource's objects in one namespace, fed by
:func:`tuner.k8s.watching.watch_objects` (list, then watch with resourceVersion resume, list
again after ``410 Gone`` or a broken stream). Consumers never watch: they read the cache
(:meth:`Informer.get`, :meth:`Informer.indexed`) and wait for a change of what they care about
(:meth:`Informer.changed`), keyed by an index (an object's name, its owners' uids, a label).
So 1,000 trials of one kind in one namespace hold one watch of that kind and one of pods,
instead of 1,000 of each.

:class:`Informers` is the registry: it starts an informer the first time a (namespace,
resource) is asked for, and stops them all on :meth:`Informers.close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tuner.k8s.client import RetryingClient
from tuner.k8s.watching import Changed, Listed, Quiet, watch_objects

log = logging.getLogger(__name__)

Indexer = Callable[[dict[str, Any]], Iterable[str]]
"""The index keys of an object (its name, owner uids, label values...)."""


def by_name(obj: dict[str, Any]) -> Iterable[str]:
    """Index by ``metadata.name``."""
    name = (obj.get("metadata") or {}).get("name")
    return [str(name)] if name else []


@dataclass(frozen=True)
class Resource:
    """What an informer lists and watches: a client ``list_*`` call and its arguments before
    the namespace's place (for custom objects: group and version) and after (the plural)."""

    list_call: Callable[..., Any]
    args: tuple[Any, ...]
    """Positional arguments, with the namespace in them already."""
    what: str
    """Names the resource in logs: ``pytorchjobs.kubeflow.org in ns``."""


class Informer:
    """The cache of one resource in one namespace, kept by one watch (see module docstring).

    Args:
        client: makes the list calls (retrying temporary errors).
        resource: the list call to watch.
        indexer: the keys each object is found and waited for by.
        window: seconds one watch request stays open; every waiter is woken at each window's
            end, so that checks over time (an image pull lasting too long) happen.
        selectors: ``label_selector`` / ``field_selector`` of the list and the watch.
    """

    def __init__(
        self,
        client: RetryingClient,
        resource: Resource,
        *,
        indexer: Indexer = by_name,
        window: float = 10.0,
        **selectors: str,
    ) -> None:
        self.client = client
        self.resource = resource
        self.indexer = indexer
        self.window = window
        self.selectors = selectors
        self.objects: dict[str, dict[str, Any]] = {}
        """Every cached object by uid."""
        self._index: dict[str, set[str]] = defaultdict(set)
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._synced = asyncio.Event()
        self.lists = 0
        """How many times the informer has listed (1 + one per 410 or broken watch)."""
        self.events = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer {self.resource.what}")

    def cancel(self) -> None:
        if self._task is not None and not self._task.get_loop().is_closed():
            self._task.cancel()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._wake_all()

    async def synced(self) -> None:
        """Return once the first list has filled the cache."""
        await self._synced.wait()

    # -- reading ---------------------------------------------------------------------------

    def indexed(self, key: str) -> list[dict[str, Any]]:
        """The cached objects under index ``key``."""
        return [self.objects[uid] for uid in self._index.get(key, ()) if uid in self.objects]

    def get(self, key: str) -> dict[str, Any] | None:
        """The one object under ``key`` (by default a name), or ``None``."""
        found = self.indexed(key)
        return found[0] if found else None

    @contextlib.asynccontextmanager
    async def watching(self, keys: Iterable[str]) -> Any:
        """Register interest in ``keys`` before reading the cache, so that no change between
        the read and the wait is missed; yields an :class:`asyncio.Event` set on a change."""
        event = asyncio.Event()
        keys = list(keys)
        for key in keys:
            self._waiters[key].add(event)
        try:
            yield event
        finally:
            for key in keys:
                waiters = self._waiters.get(key)
                if waiters is not None:
                    waiters.discard(event)
                    if not waiters:
                        del self._waiters[key]

    # -- the watch -------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not leave every waiter waiting forever
                log.exception("informer of %s failed; listing again", self.resource.what)
                await asyncio.sleep(1.0)

    async def _follow(self) -> None:
        r = self.resource
        items = watch_objects(
            self.client,
            r.list_call,
            *r.args,
            window=self.window,
            what=r.what,
            missing=f"{r.what} cannot be listed (is its CRD installed?)",
            min_delay=0.2,
            max_delay=5.0,
            **self.selectors,
        )
        try:
            async for item in items:
                if isinstance(item, Listed):
                    self.lists += 1
                    self._replace(item.objects)
                    self._synced.set()
                    self._wake_all()
                elif isinstance(item, Changed):
                    self.events += 1
                    keys = self._apply(item)
                    self._wake(keys)
                elif isinstance(item, Quiet):
                    self._wake_all()
        finally:
            await items.aclose()

    def _replace(self, objects: list[dict[str, Any]]) -> None:
        self.objects.clear()
        self._index.clear()
        for obj in objects:
            self._store(obj)

    def _apply(self, change: Changed) -> set[str]:
        obj = change.object
        uid = _uid(obj)
        keys = set(self._unstore(uid))
        if change.type != "DELETED":
            keys |= set(self._store(obj))
        return keys

    def _store(self, obj: dict[str, Any]) -> list[str]:
        uid = _uid(obj)
        keys = list(self.indexer(obj))
        self.objects[uid] = obj
        for key in keys:
            self._index[key].add(uid)
        return keys

    def _unstore(self, uid: str) -> list[str]:
        old = self.objects.pop(uid, None)
        if old is None:
            return []
        keys = list(self.indexer(old))
        for key in keys:
            uids = self._index.get(key)
            if uids is not None:
                uids.discard(uid)
                if not uids:
                    del self._index[key]
        return keys

    def _wake(self, keys: Iterable[str]) -> None:
        for key in keys:
            for event in self._waiters.get(key, ()):
                event.set()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()


class Changes:
    """Events set when what a consumer follows changes (from :meth:`Informer.watching`), and
    one set when the consumer is stopped."""

    def __init__(self, events: tuple[asyncio.Event, ...], killed: asyncio.Event) -> None:
        self.events = events
        self.killed = killed

    def reset(self) -> None:
        for e in self.events:
            e.clear()

    async def wait(self, timeout: float | None = None) -> None:
        """Until a change (or the informers' window end), ``timeout``, or the trial's kill."""
        waits = [asyncio.ensure_future(e.wait()) for e in (*self.events, self.killed)]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()


def _uid(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")


class Informers:
    """One :class:`Informer` per key (a namespace and a resource), started when first asked
    for and kept until :meth:`close`."""

    def __init__(self, client: RetryingClient, *, window: float = 10.0) -> None:
        self.client = client
        self.window = window
        self._informers: dict[tuple[str, ...], Informer] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(
        self, key: tuple[str, ...], resource: Resource, indexer: Indexer = by_name, **selectors: str
    ) -> Informer:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # the informers of an ended event loop ended with it
            self._informers, self._loop = {}, loop
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(
                self.client, resource, indexer=indexer, window=self.window, **selectors
            )
            self._informers[key] = informer
            informer.start()
        return informer

    def all(self) -> list[Informer]:
        return list(self._informers.values())

    async def close(self) -> None:
        informers, self._informers = list(self._informers.values()), {}
        for informer in informers:
            await informer.close()

    def cancel(self) -> None:
        """Stop every informer without waiting (from synchronous code)."""
        informers, self._informers = list(self._informers.values()), {}
        for informer in informers:
            informer.cancel()
