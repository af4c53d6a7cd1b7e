"""Trials: list, read, metric curves, logs; and the two endpoints trials call with their token."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from tuner.api.auth import TRIAL_SECURITY, APIAuth, PushAuth, TrialAuth
from tuner.api.deps import (
    ExperimentDep,
    ExperimentName,
    NamespaceDep,
    OffsetQuery,
    RepoDep,
    ServiceDep,
    TrialName,
    metric_query,
)
from tuner.api.routes.common import (
    AUTH_ERRORS,
    BAD_REQUEST,
    BODY_ERRORS,
    CONFLICT,
    INVALID,
    NOT_FOUND,
    json_errors,
)
from tuner.api.schemas import (
    ObservationAck,
    ObservationCreate,
    ObservationsRead,
    PointRead,
    TrialComplete,
    TrialRead,
    trial_read,
)
from tuner.trials import TrialState
from tuner.views import metric_value

router = APIRouter(
    prefix="/experiments/{name}/trials",
    tags=["trials"],
    dependencies=[APIAuth],
    responses={**AUTH_ERRORS, **NOT_FOUND, **INVALID},
)

# Called by trials: authenticated by the trial's own token (see tuner.api.auth).
push_router = APIRouter(
    prefix="/experiments/{name}/trials",
    tags=["trials"],
    responses={**AUTH_ERRORS, **NOT_FOUND, **INVALID},
)


@router.get("", summary="Trials in creation order, with paging and a state filter")
def list_trials(
    record: ExperimentDep,
    repo: RepoDep,
    state: Annotated[
        list[TrialState] | None, Query(description="only trials in these states (repeatable)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
    offset: OffsetQuery = 0,
) -> list[TrialRead]:
    trials = repo.trials(record.id, states=state or None, limit=limit, offset=offset)
    return [trial_read(t) for t in trials]


@router.get("/{trial}", summary="A trial: parameters, metrics and state history")
def get_trial(record: ExperimentDep, trial: TrialName, repo: RepoDep) -> TrialRead:
    return trial_read(repo.get_trial(record.id, trial))


@router.get("/{trial}/observations", summary="The trial's metric curves")
def get_observations(
    record: ExperimentDep,
    trial: TrialName,
    repo: RepoDep,
    metric: Annotated[str | None, metric_query("only this metric")] = None,
) -> ObservationsRead:
    repo.get_trial(record.id, trial)  # 404 for an unknown trial rather than empty curves
    curves: dict[str, list[PointRead]] = defaultdict(list)
    for o in repo.observations(record.id, trial, metric):
        curves[o.metric].append(
            PointRead(
                step=o.step,
                value=metric_value(o.value),
                time=o.time.isoformat() if o.time else None,
            )
        )
    return ObservationsRead(trial=trial, metrics=dict(curves))


@router.get(
    "/{trial}/logs",
    summary="The trial's output (stdout and stderr)",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **json_errors({**AUTH_ERRORS, **NOT_FOUND, **INVALID}),
    },
)
def get_logs(
    record: ExperimentDep, trial: TrialName, repo: RepoDep, service: ServiceDep
) -> PlainTextResponse:
    path = service.log_path(record, repo.get_trial(record.id, trial))
    return PlainTextResponse(path.read_text(errors="replace"))


@push_router.post(
    "/{trial}/observations",
    summary="Push metric values of a running trial (trial token); answers whether to stop",
    dependencies=[PushAuth],
    openapi_extra=TRIAL_SECURITY,
    responses=BODY_ERRORS,
)
async def push_observations(
    name: ExperimentName,
    trial: TrialName,
    body: ObservationCreate,
    service: ServiceDep,
    namespace: NamespaceDep = "default",
) -> ObservationAck:
    # No ExperimentDep: a push reads its experiment from the service's cache, not the database.
    should_stop, ignored = await service.push(namespace, name, trial, body.step, body.metrics)
    return ObservationAck(should_stop=should_stop, ignored=ignored)


@push_router.post(
    "/{trial}/complete",
    summary="Ask/tell: finish a trial with its final metrics (trial token)",
    dependencies=[TrialAuth],
    responses={**BODY_ERRORS, **BAD_REQUEST, **CONFLICT},
)
async def complete_trial(
    record: ExperimentDep, trial: TrialName, body: TrialComplete, service: ServiceDep
) -> TrialRead:
    finished = await service.complete(
        record, trial, body.status == "Succeeded", body.metrics, body.message
    )
    return trial_read(finished)
