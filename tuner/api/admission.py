"""Back-pressure for metric pushes: beyond capacity, 503 with ``Retry-After`` at once.

A push is answered only once its observations are committed (group commit through
:class:`tuner.storage.writer.ObservationWriter`). When reports arrive faster than the database
stores them, each one would otherwise wait longer than the one before, without bound, until
clients time out and retry into the same queue. :class:`Admission` counts the pushes in
flight (from the moment the request reaches the application until its answer) and, when
``limit`` are in flight already, answers a new one ``503 Service Unavailable`` with
``Retry-After`` before reading it: no routing, no authentication, no parsing, no database.
The client (``tuner.report``) waits that long and sends the same push again; a push carries
its step, so a retry that was in fact stored is not stored twice.

By Little's law the limit bounds the time a push waits: about ``limit / throughput``
(256 pushes at 2,000 stored a second: ~130 ms). Other requests (``/healthz``, the dashboard,
the API) are not counted and never refused here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tuner.api.schemas import ErrorRead

PUSH_PATH = re.compile(r"^/api/v1/experiments/[^/]+/trials/[^/]+/observations$")

DEFAULT_LIMIT = 256
DEFAULT_RETRY_AFTER = 1


@dataclass
class Gate:
    """How many pushes may be in flight, how many are, and how many were turned away.

    Attributes:
        limit: pushes in flight beyond which a new one gets 503.
        retry_after: the ``Retry-After`` of a 503, in whole seconds (as HTTP requires).
    """

    limit: int = DEFAULT_LIMIT
    retry_after: int = DEFAULT_RETRY_AFTER
    in_flight: int = 0
    refused: int = 0


class Admission:
    """ASGI middleware that lets at most ``gate.limit`` pushes in at a time (see the module)."""

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or PUSH_PATH.match(scope["path"]) is None
        ):
            await self.app(scope, receive, send)
            return
        gate = self.gate
        if gate.in_flight >= gate.limit:
            gate.refused += 1
            await busy(gate)(scope, receive, send)
            return
        gate.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            gate.in_flight -= 1


def busy(gate: Gate) -> JSONResponse:
    detail = (
        f"the server is storing {gate.limit} reports already: "
        f"retry after {gate.retry_after} s (Retry-After)"
    )
    return JSONResponse(
        ErrorRead(detail=detail, errors=[]).model_dump(mode="json"),
        status_code=503,
        headers={"Retry-After": str(gate.retry_after)},
    )
