"""``/healthz``: open to everyone, even when an API token is configured."""

from __future__ import annotations

from fastapi import APIRouter

from tuner.api.schemas import HealthRead

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness check (no authentication)")
def healthz() -> HealthRead:
    return HealthRead()
