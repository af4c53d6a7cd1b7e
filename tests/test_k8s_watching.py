"""The list-then-watch loop (tuner.k8s.watching) against a test double of the list/watch calls.

``ScriptedListWatch`` is a test double, not a cluster: it answers each list or watch request
with the next reply of a script (a list, watch events, an error), and records the requests, so
the tests see where each watch resumed from.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

pytest.importorskip("kubernetes")
from kubernetes.client import ApiException

from tuner.k8s.client import RetryingClient
from tuner.k8s.watching import Changed, Listed, Quiet, WatchItem, watch_objects


def obj(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": rv}}


def event(kind: str, o: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": o}


def gone() -> dict[str, Any]:
    return {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}


class ListReply:
    """What ``_preload_content=False`` gives for a list: ``.data`` and ``release_conn``."""

    def __init__(self, items: list[dict[str, Any]], rv: str) -> None:
        self.data = json.dumps({"metadata": {"resourceVersion": rv}, "items": items}).encode()

    def release_conn(self) -> None:
        pass


class WatchReply:
    """A watch stream: its events as lines of JSON, then the end (or a garbled line)."""

    def __init__(self, events: list[dict[str, Any]], tail: bytes = b"") -> None:
        self.lines = [json.dumps(e).encode() + b"\n" for e in events] + ([tail] if tail else [])

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.lines)

    def close(self) -> None:
        pass


@dataclass
class ScriptedListWatch:
    """Test double of a ``list_*`` client method: replies from a script, requests recorded."""

    script: list[Any]
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def __call__(self, *args: Any, watch: bool = False, **kwargs: Any) -> Any:
        self.requests.append(("watch" if watch else "list", kwargs.get("resource_version")))
        if not self.script:
            raise AssertionError("the script is over")
        reply = self.script.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        assert isinstance(reply, WatchReply) == watch, (reply, watch)
        return reply


async def take(double: ScriptedListWatch, count: int, **kwargs: Any) -> list[WatchItem]:
    client = RetryingClient(cast(Any, None), retries=1)
    items = watch_objects(
        client, double, "ns", window=5, what="test", min_delay=0.001, max_delay=0.01, **kwargs
    )
    try:
        return [await anext(items) for _ in range(count)]
    finally:
        await items.aclose()
        client.close()


def test_lists_then_watches_and_resumes_from_the_last_resource_version() -> None:
    a, b = obj("a", "10"), obj("b", "11")
    double = ScriptedListWatch(
        [
            ListReply([a], "10"),
            WatchReply([event("ADDED", b), event("BOOKMARK", obj("", "12"))]),
            WatchReply([event("MODIFIED", obj("a", "13"))]),
        ]
    )
    items = asyncio.run(take(double, 5))
    assert items == [
        Listed([a], "10"),
        Changed("ADDED", b),
        Quiet("12"),  # the window ended; a bookmark moved the resourceVersion
        Changed("MODIFIED", obj("a", "13")),
        Quiet("13"),
    ]
    assert double.requests == [("list", None), ("watch", "10"), ("watch", "12")]


def test_gone_lists_again_at_once() -> None:
    a = obj("a", "10")
    double = ScriptedListWatch(
        [
            ListReply([a], "10"),
            WatchReply([event("MODIFIED", obj("a", "11")), gone()]),
            ListReply([obj("a", "20")], "20"),
            ApiException(status=410, reason="Gone"),  # the watch request itself refused
            ListReply([obj("a", "30")], "30"),
            WatchReply([event("DELETED", obj("a", "31"))]),
        ]
    )
    items = asyncio.run(take(double, 5))
    assert items == [
        Listed([a], "10"),
        Changed("MODIFIED", obj("a", "11")),
        Listed([obj("a", "20")], "20"),
        Listed([obj("a", "30")], "30"),
        Changed("DELETED", obj("a", "31")),
    ]
    assert double.requests == [
        ("list", None),
        ("watch", "10"),
        ("list", None),
        ("watch", "20"),
        ("list", None),
        ("watch", "30"),
    ]


def test_broken_streams_and_errors_list_again() -> None:
    double = ScriptedListWatch(
        [
            ApiException(status=403, reason="Forbidden"),  # permanent: not retried by the client
            ListReply([], "1"),
            WatchReply([event("ADDED", obj("a", "2"))], tail=b'{"type": "MOD'),  # garbled
            ListReply([obj("a", "2")], "3"),
            WatchReply([]),  # ended at once, with nothing: broken
            ListReply([obj("a", "2")], "4"),
            WatchReply([{"type": "ERROR", "object": {"code": 500, "message": "etcd"}}]),
            ListReply([], "5"),
        ]
    )
    items = asyncio.run(take(double, 5))
    assert items == [
        Listed([], "1"),
        Changed("ADDED", obj("a", "2")),
        Listed([obj("a", "2")], "3"),
        Listed([obj("a", "2")], "4"),
        Listed([], "5"),
    ]
    assert [r for r, _ in double.requests] == ["list", "list", "watch"] + ["list", "watch"] * 2 + [
        "list"
    ]


def test_a_given_resource_version_is_watched_without_a_list() -> None:
    double = ScriptedListWatch([WatchReply([event("MODIFIED", obj("a", "8"))])])
    items = asyncio.run(take(double, 1, resource_version="7", field_selector="metadata.name=a"))
    assert items == [Changed("MODIFIED", obj("a", "8"))]
    assert double.requests == [("watch", "7")]
