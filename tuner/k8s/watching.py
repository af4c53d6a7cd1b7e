"""The one list-then-watch loop of the runner and the operator.

:func:`watch_objects` lists the objects, then watches from the list's resourceVersion, window
after window, resuming each from the last resourceVersion seen. What it yields:

* :class:`Listed`: every object, after each list (the truth: whatever the consumer kept from
  before and is missing here is gone);
* :class:`Changed`: one watch event (``ADDED``, ``MODIFIED`` or ``DELETED``; bookmarks only move
  the resourceVersion);
* :class:`Quiet`: a watch window ended; the next one resumes where it stopped. Consumers that
  check something over time (an image pull that lasts too long) look again here.

Failures are handled here, once: ``410 Gone`` (the resourceVersion is too old, as an ``ERROR``
event or as the reply to the watch request) lists again at once; any other error (a dropped or
garbled stream, an apiserver error, a watch that ends at once) lists again after a backoff that
grows while the failures go on. A 404 of the list is logged as ``missing`` (a CRD not installed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiException

from tuner.k8s.client import API_ERRORS, RetryingClient, backoff_delay
from tuner.k8s.streams import thread_lines

log = logging.getLogger(__name__)

WATCH_ERRORS: tuple[type[BaseException], ...] = (*API_ERRORS, ValueError, ConnectionError)
"""A broken list or watch (ValueError: a garbled event)."""


@dataclass(frozen=True)
class Listed:
    """Every object the list returned, and the list's resourceVersion."""

    objects: list[dict[str, Any]]
    resource_version: str


@dataclass(frozen=True)
class Changed:
    """One watch event: ``type`` is ``ADDED``, ``MODIFIED`` or ``DELETED``."""

    type: str
    object: dict[str, Any]


@dataclass(frozen=True)
class Quiet:
    """A watch window ended; the watch resumes from ``resource_version``."""

    resource_version: str


WatchItem = Listed | Changed | Quiet


class Gone(Exception):
    """The resourceVersion to watch from is too old (410): list again."""


_FAILURES: tuple[type[BaseException], ...] = (Gone, *WATCH_ERRORS)


def event_resource_version(obj: dict[str, Any]) -> str:
    """``metadata.resourceVersion`` of an event's object, or ``""``."""
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


async def watch_objects(
    client: RetryingClient,
    list_call: Callable[..., Any],
    *args: Any,
    window: float,
    what: str,
    resource_version: str | None = None,
    missing: str | None = None,
    min_delay: float = 0.5,
    max_delay: float = 30.0,
    **selectors: str,
) -> AsyncGenerator[WatchItem, None]:
    """List, then watch ``list_call(*args, **selectors)`` until the consumer stops.

    Args:
        client: makes the list call (retrying temporary errors).
        list_call: a ``list_*`` method of the client API, called with ``watch=True`` to watch.
        args: its positional arguments (a namespace, a CRD's group and version...).
        window: seconds one watch request stays open (the server's ``timeoutSeconds``).
        what: names the watch in logs and in its thread's name.
        resource_version: watch from here first, without listing (for a consumer that has just
            read the state); ``None``: list first.
        missing: logged as an error when the list gives 404.
        min_delay: the first backoff after a failure, in seconds (doubling while they go on)...
        max_delay: ...up to this many seconds.
        selectors: ``label_selector`` / ``field_selector``, for the list and the watch alike.
    """
    rv = resource_version or None
    failures = 0
    while True:
        try:
            if rv is None:
                listed = await client.json(list_call, *args, **selectors)
                rv = str((listed.get("metadata") or {}).get("resourceVersion", ""))
                yield Listed(list(listed.get("items") or []), rv)
            started = time.monotonic()
            events = 0
            stream = thread_lines(_opener(list_call, args, selectors, rv, window), f"watch {what}")
            try:
                async for raw in stream:
                    event = json.loads(raw)
                    if not isinstance(event, dict):
                        raise ValueError(f"not a watch event: {raw[:200]!r}")
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            raise Gone(obj.get("message") or "Gone")
                        raise ConnectionError(f"watch error: {obj.get('message') or obj}")
                    rv = event_resource_version(obj) or rv
                    if kind == "BOOKMARK":
                        continue
                    events += 1
                    failures = 0
                    yield Changed(str(kind), obj)
            finally:
                await stream.aclose()
            if events == 0 and time.monotonic() - started < 1.0:
                raise ConnectionError("the watch ended at once")
            failures = 0
            yield Quiet(rv or "")
        except _FAILURES as e:
            rv = None
            if _is_gone(e):
                log.info("%s: %s; listing again", what, e)
                if failures:  # gone again at once: do not list in a tight loop
                    await asyncio.sleep(backoff_delay(failures, min_delay, max_delay))
            else:
                if missing and isinstance(e, ApiException) and e.status == 404:
                    log.error("%s: %s", what, missing)
                else:
                    log.warning("%s: %r; listing again", what, e)
                await asyncio.sleep(backoff_delay(failures, min_delay, max_delay))
            failures += 1


def _is_gone(error: BaseException) -> bool:
    return isinstance(error, Gone) or (isinstance(error, ApiException) and error.status == 410)


def _opener(
    list_call: Callable[..., Any],
    args: tuple[Any, ...],
    selectors: dict[str, str],
    rv: str,
    window: float,
) -> Callable[[], Any]:
    def open_watch() -> Any:
        return list_call(
            *args,
            watch=True,
            resource_version=rv or None,
            timeout_seconds=max(1, int(window)),
            allow_watch_bookmarks=True,
            _preload_content=False,
            _request_timeout=(10, window + 10),
            **selectors,
        )

    return open_watch
