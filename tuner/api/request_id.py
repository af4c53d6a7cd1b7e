"""Request ids: every request has one, in its answer's ``X-Request-ID`` header, in the access log
line and the events logged while it is served (field ``request_id``, :mod:`tuner.logs`), and in
the body of every error answer (``request_id``).

A client (or a proxy in front) may send its own ``X-Request-ID``: a short token of letters,
digits and ``-_.:`` is kept; anything else is replaced by a new id, so that logs never carry
arbitrary client text.
"""

from __future__ import annotations

import re
import uuid

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tuner.logs import current, set_log_context

HEADER = "X-Request-ID"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id() -> str | None:
    """The id of the request being served here, or ``None`` outside a request."""
    return current("request_id")


class RequestIdMiddleware:
    """Pure ASGI middleware (the app runs in the same task, so the id reaches its logs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or []).get(HEADER.lower().encode(), b"").decode("latin-1")
        rid = sent if _VALID.match(sent) else uuid.uuid4().hex
        # Not reset afterwards: each request is its own task, and the answer to an unexpected
        # error is made outside this middleware, where the id must still be known.
        set_log_context(request_id=rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers.append((HEADER.lower().encode(), rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


def install_request_id(app: FastAPI) -> None:
    app.add_middleware(RequestIdMiddleware)
