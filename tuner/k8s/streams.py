"""Streaming responses (watches, log follows) read line by line in daemon threads.

A streaming response blocks its reader, so :func:`thread_lines` reads it in a daemon thread of
its own and hands the lines to the event loop. Closing the async generator aborts the request:
:func:`interrupt` shuts the socket down under the blocked reader, which then closes the response
(:func:`abort`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncGenerator, Callable
from typing import Any


def response_socket(resp: Any) -> Any:
    """The socket under a streaming urllib3 response, or ``None``.

    Usually the connection's; but http.client drops that reference for responses that end with
    the connection (HTTP/1.0, ``Connection: close``, as some proxies answer), so the socket is
    then found under the response's file object.
    """
    sock = getattr(getattr(resp, "connection", None), "sock", None)
    if sock is None:
        fp = getattr(getattr(resp, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock


def interrupt(resp: Any) -> None:
    """Wake a thread blocked reading a streaming response (without blocking the caller)."""
    sock = response_socket(resp)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def abort(resp: Any) -> None:
    """Close a streaming response, waking a thread blocked reading it.

    Closing blocks while another thread reads the response, so only the reading thread closes;
    others call :func:`interrupt`.
    """
    interrupt(resp)
    with contextlib.suppress(Exception):
        resp.close()


async def thread_lines(opener: Callable[[], Any], name: str) -> AsyncGenerator[bytes, None]:
    """Open a streaming response in a daemon thread and yield its lines (bytes, with ``\\n``).

    The last fragment of a stream that ends without a newline is yielded as is. Errors of the
    request or the read are raised here. Closing the generator aborts the request.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    closed = threading.Event()
    responses: list[Any] = []

    def put(kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def pump() -> None:
        try:
            resp = opener()
            responses.append(resp)
            try:
                if not closed.is_set():
                    for line in resp:
                        put("line", line)
                        if closed.is_set():
                            break
            finally:
                abort(resp)
            put("end", None)
        except BaseException as e:
            put("error", e)

    threading.Thread(target=pump, name=f"tuner-k8s {name}", daemon=True).start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "line":
                yield value
            elif kind == "end":
                return
            else:
                raise value
    finally:
        closed.set()
        for resp in responses:
            interrupt(resp)  # the pump thread closes it
