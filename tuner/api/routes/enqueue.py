"""Enqueued points: parameter sets an experiment tries before its algorithm's own."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from tuner import warmstart
from tuner.api.auth import APIAuth
from tuner.api.deps import ExperimentDep, ServiceDep
from tuner.api.routes.common import AUTH_ERRORS, BAD_REQUEST, BODY_ERRORS, INVALID, NOT_FOUND

router = APIRouter(
    prefix="/experiments/{name}/enqueue",
    tags=["experiments"],
    dependencies=[APIAuth],
    responses={**AUTH_ERRORS, **NOT_FOUND, **INVALID, **BAD_REQUEST, **BODY_ERRORS},
)


class EnqueueCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=1000,
        description="parameter assignments, each giving every parameter a value in its space",
    )


class EnqueuedRead(BaseModel):
    enqueued: int = Field(description="points in spec.initialPoints, used or not")
    pending: int = Field(description="of those, the points no trial was made from yet")


@router.post(
    "",
    summary="Enqueue parameter sets to try before the algorithm's own suggestions",
    description=(
        "The points are appended to the stored spec.initialPoints and each becomes exactly one "
        "trial, in order, as soon as there is room (before any suggestion of the algorithm). "
        "Their results feed the algorithm like any trial's. A point outside the search space "
        "is refused (422, path points[i].<parameter>); so is an ended experiment, and an "
        "algorithm that plans every trial itself (hyperband, pbt) (400)."
    ),
)
async def enqueue(record: ExperimentDep, body: EnqueueCreate, service: ServiceDep) -> EnqueuedRead:
    async with service.asktell.lock(record.id):  # one read-modify-write of the spec at a time
        fresh = await service.db.experiment_by_id(record.id)
        updated = await service.db.run(warmstart.enqueued, fresh, body.points)
    history = await service.db.history(record.id)
    spec = updated.experiment.spec
    return EnqueuedRead(
        enqueued=len(spec.initial_points or []),
        pending=len(warmstart.pending_points(spec, history)),
    )
