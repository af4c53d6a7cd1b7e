"""One error hierarchy for the whole service.

Errors are named by how the caller should react (as in Vizier's ``pythia_errors``):
fix the input (:class:`SpecError`, :class:`InvalidRequest`), look elsewhere
(:class:`NotFound`), retry or pick another name (:class:`Conflict`), authenticate
(:class:`Unauthorized`, :class:`Forbidden`). The REST layer maps each class to one
HTTP status, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass


class TunerError(Exception):
    """Base of every error this package raises on purpose."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FieldError:
    """One problem in a spec, located by a Katib-style field path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SpecError(TunerError):
    """An Experiment spec is invalid. Carries every problem found, each with its field path."""

    status_code = 422

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        lines = "\n".join(f"  - {e}" for e in errors)
        super().__init__(f"invalid Experiment spec ({len(errors)} error(s)):\n{lines}")


class InvalidRequest(TunerError):
    """A request is malformed or not allowed in the current state."""

    status_code = 400


class WrongState(InvalidRequest):
    """A well-formed request the experiment's current state refuses (resume a Running one).

    HTTP 409, as the state clashes; for the CLI still a usage error like any InvalidRequest.
    """

    status_code = 409


class NotFound(TunerError):
    status_code = 404


class Conflict(TunerError):
    """The request clashes with stored state (duplicate name, finished trial, ...)."""

    status_code = 409


class Unauthorized(TunerError):
    status_code = 401


class Forbidden(TunerError):
    status_code = 403


class TooManyAttempts(TunerError):
    """Too many wrong tokens from one client address: wait ``retry_after`` seconds."""

    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ReportError(TunerError):
    """``tuner.report`` could not deliver an observation."""


class RunnerError(TunerError):
    """A runner could not start, attach to or stop a trial."""


class SuggestionServiceError(TunerError):
    """A Katib Suggestion service that an experiment's algorithm names failed or answered
    nonsense (after the retries)."""

    status_code = 502


class GrpcMissing(TunerError):
    """A gRPC feature (Katib's gRPC APIs) is used without the ``grpc`` extra installed."""

    status_code = 422
