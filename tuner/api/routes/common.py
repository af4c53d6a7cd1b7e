"""Response documentation shared by the routers."""

from __future__ import annotations

from typing import Any

from tuner.api.schemas import ErrorRead

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorRead, "description": "missing token"},
    403: {"model": ErrorRead, "description": "wrong token"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorRead, "description": "no such experiment or trial"},
}
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorRead, "description": "invalid input, one error per field path"},
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorRead, "description": "clashes with the stored state"},
}
BAD_REQUEST: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorRead, "description": "not allowed for this experiment"},
}


def json_errors(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """The same error responses, documented as JSON on routes whose success is not JSON."""
    schema = {"$ref": "#/components/schemas/ErrorRead"}
    return {
        code: {"description": r["description"], "content": {"application/json": {"schema": schema}}}
        for code, r in responses.items()
    }


BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorRead,
        "description": "the body cannot be parsed (not UTF-8, or nested too deeply)",
    },
    413: {"model": ErrorRead, "description": "the body is larger than the server accepts"},
    415: {"model": ErrorRead, "description": "the body is neither JSON nor YAML (Content-Type)"},
}
"""Answers of every route that reads a request body, before the route runs."""

_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
}
BACK_PRESSURE: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorRead,
        "description": "too many requests from this client: retry after Retry-After",
        "headers": _RETRY_AFTER,
    },
    503: {
        "model": ErrorRead,
        "description": "the server is overloaded or its database unavailable: retry after "
        "Retry-After",
        "headers": _RETRY_AFTER,
    },
}
"""Answers any API route may give under load; declared on every router in ``create_app``."""
