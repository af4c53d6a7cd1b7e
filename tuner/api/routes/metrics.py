"""``/metrics``: the service's Prometheus metrics (:mod:`tuner.telemetry`).

Open to everyone like ``/healthz``, even when an API token is configured: scrapers rarely carry
one, and the metrics name no experiment or trial (only namespaces, states and replicas).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (no authentication)",
    include_in_schema=False,  # Prometheus' text format, not part of the REST API
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(request: Request) -> Response:
    # A plain def: the database counts run in the threadpool, not in the event loop.
    registry = request.app.state.service.telemetry.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
