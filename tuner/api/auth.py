"""Who may call the API.

API token
    With ``Settings.api_token`` set (``TUNER_API_TOKEN`` or ``tuner serve --token-file``), every
    endpoint except ``/healthz`` needs ``Authorization: Bearer <api token>``. A missing token
    gets 401 (with ``WWW-Authenticate: Bearer``), a wrong one 403, and too many wrong ones
    from one address 429 (:mod:`tuner.api.attempts`). Without an API token the API
    is open, which ``tuner serve`` allows on loopback addresses only.

Trial tokens
    The two endpoints a trial calls, ``POST .../trials/{trial}/observations`` and
    ``POST .../trials/{trial}/complete``, take that trial's token instead
    (:func:`tuner.tokens.derive_trial_token`, bound to the experiment's uid), in
    ``X-Tuner-Trial-Token`` or as
    ``Authorization: Bearer``. A trial only has its own token, never the API token, so a trial
    can report for itself and do nothing else. Those endpoints also accept the API token (an
    administrator may act for any trial); the Python client sends the API token as bearer and
    the trial token in ``X-Tuner-Trial-Token``, so both work together. A missing token gets 401,
    a token of another trial 403. Ask/tell trials get their tokens from the API itself (the
    answer of an ask, and the open trials, ``GET .../suggestions``), so whoever may call the
    API may act for them: a client that restarted can tell its trials by name.

Tokens are compared in constant time (:func:`hmac.compare_digest`) and never logged: no log
line or error message of this package contains a header value.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from tuner.api.attempts import FailedAttempts
from tuner.api.deps import DNS_LABEL, ExperimentName, NamespaceDep, ServiceDep, TrialName
from tuner.errors import Forbidden, Unauthorized
from tuner.limits import MAX_NAME_LENGTH, MAX_TRIAL_NAME_LENGTH
from tuner.names import HEADER_TRIAL_TOKEN
from tuner.tokens import tokens_equal

_LABEL = re.compile(DNS_LABEL.strip("^$"))

TRIAL_TOKEN_HEADER = HEADER_TRIAL_TOKEN

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="APIToken",
    description="the API token (TUNER_API_TOKEN); trial endpoints also take a trial token",
)
trial_token_header = APIKeyHeader(
    name=TRIAL_TOKEN_HEADER,
    auto_error=False,
    scheme_name="TrialToken",
    description="a trial's token (TUNER_TRIAL_TOKEN in the trial's environment)",
)

Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def check_api_token(request: Request, given: str, expected: str) -> None:
    """403 for a wrong token; 429 while the client's address has had too many wrong ones
    (:mod:`tuner.api.attempts`; the dashboard's login checks tokens here too)."""
    attempts: FailedAttempts | None = getattr(request.app.state, "failed_attempts", None)
    address = request.client.host if request.client else "unknown"
    if attempts is not None:
        attempts.check(address)
    if not tokens_equal(given, expected):
        if attempts is not None:
            attempts.failed(address)
        raise Forbidden("invalid API token")


def require_api_token(request: Request, service: ServiceDep, credentials: Bearer) -> None:
    expected = service.settings.api_token
    if expected is None:
        return
    if credentials is None:
        raise Unauthorized("missing API token: send 'Authorization: Bearer <token>'")
    check_api_token(request, credentials.credentials, expected)


async def require_trial_token(
    service: ServiceDep,
    credentials: Bearer,
    trial_token: Annotated[str | None, Depends(trial_token_header)],
    name: ExperimentName,
    trial: TrialName,
    namespace: NamespaceDep = "default",
) -> None:
    given = [t for t in (trial_token, credentials.credentials if credentials else None) if t]
    check_trial_token(service, given, service.get(namespace, name), trial)


async def require_pushing_trial(request: Request) -> None:
    """:func:`require_trial_token` for the push route (the hot path: a report per step of
    every trial), reading the request itself: FastAPI's solving of six sub-dependencies cost
    a third of a push's time on the event loop. The route's OpenAPI document names the same
    security schemes (:data:`TRIAL_SECURITY`)."""
    service: Any = request.app.state.service
    headers = request.headers
    scheme, _, credentials = (headers.get("authorization") or "").partition(" ")
    bearer_token = credentials.strip() if scheme.lower() == "bearer" else ""
    given = [t for t in (headers.get(TRIAL_TOKEN_HEADER), bearer_token) if t]
    params = request.path_params
    namespace = request.query_params.get("namespace") or "default"
    name, trial = params["name"], params["trial"]
    limits = ((namespace, MAX_NAME_LENGTH), (name, MAX_NAME_LENGTH), (trial, MAX_TRIAL_NAME_LENGTH))
    if not all(_LABEL.fullmatch(v) and len(v) <= most for v, most in limits):
        return  # not a name at all: the route's own validation answers 422, nothing is read
    record = await service.push_target(namespace, name)
    try:
        check_trial_token(service, given, record, trial)
    except Forbidden:  # perhaps the cached experiment was deleted and created again meanwhile
        fresh = await service.push_target(namespace, name, fresh=True)
        if fresh.uid == record.uid:
            raise
        check_trial_token(service, given, fresh, trial)


def check_trial_token(service: Any, given: list[str], record: Any, trial: str) -> None:
    """Accept the trial's own token or the API token among ``given`` (401 when none is
    given, 403 when none fits)."""
    if not given:
        raise Unauthorized(
            f"missing trial token: send the token of trial {trial} "
            f"(TUNER_TRIAL_TOKEN) as 'Authorization: Bearer <token>' or {TRIAL_TOKEN_HEADER}"
        )
    # The token binds to the experiment's uid: a deleted experiment's tokens are worthless
    # for a new one of the same name.
    expected = service.trial_token(record, trial)
    api_token = service.settings.api_token
    for token in given:
        if tokens_equal(token, expected) or (
            api_token is not None and tokens_equal(token, api_token)
        ):
            return
    raise Forbidden(f"invalid token for trial {trial}: a trial may only report for itself")


APIAuth = Depends(require_api_token)
TrialAuth = Depends(require_trial_token)
PushAuth = Depends(require_pushing_trial)
TRIAL_SECURITY: dict[str, Any] = {"security": [{"APIToken": []}, {"TrialToken": []}]}
"""The OpenAPI ``security`` of an operation that takes a trial's token (or the API token)."""
