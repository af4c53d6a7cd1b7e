"""Ask/tell: new trials for experiments without a trialTemplate, and the open ones."""

from __future__ import annotations

from fastapi import APIRouter

from tuner.api.auth import APIAuth
from tuner.api.deps import ExperimentDep, ServiceDep
from tuner.api.routes.common import AUTH_ERRORS, BAD_REQUEST, BODY_ERRORS, INVALID, NOT_FOUND
from tuner.api.schemas import SuggestionCreate, SuggestionsRead, suggested_trial_read
from tuner.service import Service
from tuner.storage import ExperimentRecord
from tuner.trials import Trial

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
    responses={**BODY_ERRORS, **BAD_REQUEST},
)
async def suggest(
    record: ExperimentDep, body: SuggestionCreate, service: ServiceDep
) -> SuggestionsRead:
    trials, message = await service.suggest(record, body.count)
    return await _suggestions_read(service, record, trials, message)


@router.get(
    "",
    summary="The open trials (asked for, not told yet), with their tokens",
    description=(
        "What a client that lost its state (a restarted notebook) needs to go on: each open "
        "trial's parameters and token, to report and tell it by name. Asked trials that were "
        "neither reported nor told within the server's ask timeout are Killed (AskExpired) "
        "first, and are not listed."
    ),
)
async def open_trials(record: ExperimentDep, service: ServiceDep) -> SuggestionsRead:
    trials = await service.open_trials(record)
    return await _suggestions_read(service, record, trials, None if trials else "no open trials")


async def _suggestions_read(
    service: Service, record: ExperimentRecord, trials: list[Trial], message: str | None
) -> SuggestionsRead:
    """Trials with their push tokens, and the experiment's phase after the call."""
    current = await service.db.experiment_by_id(record.id)
    return SuggestionsRead(
        trials=[suggested_trial_read(t, service.trial_token(record, t.name)) for t in trials],
        phase=current.phase,
        message=message,
    )
