"""Server-Sent Events: live progress of one experiment."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.sse import EventSourceResponse, ServerSentEvent

from tuner.api.auth import APIAuth
from tuner.api.deps import ExperimentDep, ServiceDep
from tuner.api.routes.common import AUTH_ERRORS, INVALID, NOT_FOUND, json_errors

router = APIRouter(
    prefix="/experiments/{name}/events",
    tags=["events"],
    dependencies=[APIAuth],
    responses=json_errors({**AUTH_ERRORS, **NOT_FOUND, **INVALID}),
)


@router.get(
    "",
    response_class=EventSourceResponse,
    summary="Stream trial state changes and new best values until the experiment finishes",
    description=(
        "Each event is `event: trial`, `event: best` or `event: experiment` with an `EventRead` "
        "as JSON data. The first event is the experiment's current phase; the stream ends after "
        "the experiment finishes (or is deleted)."
    ),
    responses={
        200: {
            "content": {
                "text/event-stream": {
                    "itemSchema": {
                        "type": "object",
                        "properties": {
                            "event": {"type": "string", "enum": ["trial", "best", "experiment"]},
                            "data": {
                                "type": "string",
                                "contentMediaType": "application/json",
                                "contentSchema": {"$ref": "#/components/schemas/EventRead"},
                            },
                        },
                    }
                }
            }
        }
    },
)
async def stream_events(
    record: ExperimentDep, service: ServiceDep
) -> AsyncIterator[ServerSentEvent]:
    async for event in service.events(record):
        yield ServerSentEvent(event=event.kind, data=event)
