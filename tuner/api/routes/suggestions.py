"""Ask/tell: new trials for experiments without a trialTemplate."""

from __future__ import annotations

from fastapi import APIRouter

from tuner.api.auth import APIAuth
from tuner.api.deps import ExperimentDep, ServiceDep
from tuner.api.routes.common import AUTH_ERRORS, BAD_REQUEST, INVALID, NOT_FOUND
from tuner.api.schemas import SuggestionCreate, SuggestionsRead, suggested_trial_read

router = APIRouter(
    prefix="/experiments/{name}/suggestions",
    tags=["ask/tell"],
    dependencies=[APIAuth],
    responses={**AUTH_ERRORS, **NOT_FOUND, **INVALID, **BAD_REQUEST},
)


@router.post(
    "",
    summary="Create up to `count` Running trials with suggested parameters, with their tokens",
    description=(
        "Respects parallelTrialCount (active trials) and maxTrialCount. Fewer trials than asked "
        "for (even none) come with a message saying why; a finished experiment returns none."
    ),
)
async def suggest(
    record: ExperimentDep, body: SuggestionCreate, service: ServiceDep
) -> SuggestionsRead:
    trials, message = await service.suggest(record, body.count)
    current = await service.db.experiment_by_id(record.id)
    return SuggestionsRead(
        trials=[
            suggested_trial_read(t, service.trial_token(record.namespace, record.name, t.name))
            for t in trials
        ],
        phase=current.phase,
        message=message,
    )
