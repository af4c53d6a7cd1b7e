"""The FastAPI application: ``create_app(settings)`` builds everything, nothing at import time.

Every error leaves as ``{"detail": message, "errors": [{"path", "message"}]}``, mapped in one
place from :class:`tuner.errors.TunerError` (its ``status_code``), from request validation
(422, with field paths) and from HTTP errors of the framework (404 for unknown routes, ...).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from tuner.api.admission import Admission, Gate
from tuner.api.attempts import FailedAttempts
from tuner.api.docs import install_docs
from tuner.api.guards import Guards
from tuner.api.request_id import install_request_id, request_id
from tuner.api.routes import (
    enqueue,
    events,
    experiments,
    health,
    leaderboard,
    metrics,
    pareto,
    plots,
    suggestions,
    trials,
)
from tuner.api.routes.common import BACK_PRESSURE
from tuner.api.schemas import ErrorRead, FieldErrorRead
from tuner.errors import SpecError, TooManyAttempts, TunerError, Unauthorized
from tuner.events import Event
from tuner.limits import TooDeep
from tuner.service import Service
from tuner.settings import Settings
from tuner.spec import Experiment, format_path
from tuner.ui.routes import router as ui_router

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API with its own :class:`Service` (database, controllers), started by the lifespan."""
    settings = settings or Settings()
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.close()

    app = FastAPI(
        title="tuner",
        summary="Hyperparameter tuning with Katib v1beta1 Experiment specs",
        version="0.1.0",
        lifespan=lifespan,
        max_body_size=settings.max_body_size,
        docs_url=None,  # install_docs: Swagger UI from a local package, not a CDN
        redoc_url=None,  # no installed package ships ReDoc's script
    )
    app.state.service = service
    app.state.failed_attempts = FailedAttempts(settings.wrong_token_limit)  # per client address
    app.add_middleware(Guards, allowed_hosts=settings.allowed_hosts)  # CSRF, DNS rebinding
    app.state.admission = Gate(settings.max_pending_reports)
    app.add_middleware(Admission, gate=app.state.admission)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(ui_router)  # the dashboard: / and /ui/...
    for router in (
        trials.push_router,  # first: routes are tried in order, and pushes are the most frequent
        experiments.router,
        trials.router,
        suggestions.router,
        enqueue.router,
        leaderboard.router,
        pareto.router,
        events.router,
        plots.router,
        plots.overview_router,
    ):
        app.include_router(router, prefix=API_PREFIX, responses=BACK_PRESSURE)
    install_error_handlers(app)
    install_request_id(app)
    _install_openapi(app)
    install_docs(app)
    return app


# -- errors -----------------------------------------------------------------------------------


def _error(status: int, detail: str, errors: list[FieldErrorRead] | None = None) -> JSONResponse:
    body = ErrorRead(detail=detail, errors=errors or [], request_id=request_id())
    return JSONResponse(body.model_dump(mode="json"), status_code=status)


def _body_problem(cause: BaseException | None) -> str | None:
    """Why FastAPI could not parse a JSON body (its 400 says only that it could not)."""
    if isinstance(cause, RecursionError):
        return f"the JSON body cannot be parsed: {TooDeep()}"
    if isinstance(cause, UnicodeDecodeError):
        return "the JSON body cannot be parsed: it is not UTF-8 text"
    return None


def _allowed_methods(request: Request) -> str:
    """Every method the OpenAPI document lists for the request's path (and HEAD with GET).

    Starlette's 405 names the methods of the first route that matched the path only; a path
    served by several routes (``GET`` and ``POST /experiments``) needs them all.
    """
    methods: set[str] = set()
    for pattern, listed in _path_methods(request.app):
        if pattern.match(request.url.path):
            methods |= listed
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def _path_methods(app: FastAPI) -> list[tuple[re.Pattern[str], set[str]]]:
    cached: list[tuple[re.Pattern[str], set[str]]] | None = getattr(app.state, "path_methods", None)
    if cached is None:
        cached = [
            (compile_path(path)[0], {m.upper() for m in operations})
            for path, operations in app.openapi().get("paths", {}).items()
        ]
        app.state.path_methods = cached
    return cached


def install_error_handlers(app: FastAPI) -> None:
    """Map the TunerError tree (and request validation) to HTTP answers, in one place.

    The service's app and ``tuner run``'s loopback push server both install these.
    """

    async def tuner_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TunerError)
        errors = None
        if isinstance(exc, SpecError):
            errors = [FieldErrorRead(path=e.path, message=e.message) for e in exc.errors]
        if exc.status_code >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
        response = _error(exc.status_code, exc.message, errors)
        if isinstance(exc, Unauthorized):
            response.headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, TooManyAttempts):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            FieldErrorRead(path=format_path(list(e.get("loc", ()))), message=str(e.get("msg")))
            for e in exc.errors()
        ]
        lines = "; ".join(f"{e.path}: {e.message}" for e in errors)
        return _error(422, f"invalid request: {lines}", errors)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        response = _error(exc.status_code, _body_problem(exc.__cause__) or str(exc.detail))
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        if exc.status_code == 405:
            response.headers["Allow"] = _allowed_methods(request)
        return response

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not bad input: logged with its traceback, answered in the usual shape.
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _error(500, f"internal error: {type(exc).__name__}")

    app.add_exception_handler(TunerError, tuner_error)
    app.add_exception_handler(Exception, unexpected)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)


# -- OpenAPI ----------------------------------------------------------------------------------


def _install_openapi(app: FastAPI) -> None:
    """Add the Experiment spec (request body of ``POST /experiments``) to the components.

    That endpoint reads its body itself (JSON or YAML, errors with Katib field paths), so
    FastAPI cannot see its model; its schema is added here. Models FastAPI already lists (the
    spec's parts, from the responses) keep FastAPI's form, which differs only cosmetically.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        _, defs = models_json_schema(
            [(Experiment, "validation")], ref_template="#/components/schemas/{model}"
        )
        for name, definition in defs.get("$defs", {}).items():
            components.setdefault(name, definition)
        # The data of each Server-Sent Event, under its public schema name.
        components.setdefault("EventRead", Event.model_json_schema(mode="serialization"))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
