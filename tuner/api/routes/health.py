"""``/healthz``: open to everyone, even when an API token is configured."""

from __future__ import annotations

from fastapi import APIRouter

from tuner.api.schemas import HealthRead

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness check (no authentication)")
async def healthz() -> HealthRead:
    # On the event loop, from memory: no thread hop, no database, no write queue, so it
    # answers at once however loaded the database is (see tuner.api.admission).
    return _OK


_OK = HealthRead()
