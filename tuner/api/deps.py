"""Annotated dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request

from tuner.limits import (
    MAX_METRIC_NAME_LENGTH,
    MAX_NAME_LENGTH,
    MAX_OFFSET,
    MAX_TRIAL_NAME_LENGTH,
    NO_NUL,
)
from tuner.service import Service
from tuner.storage import ExperimentRecord, Repository

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


async def get_service(request: Request) -> Service:
    # async: FastAPI would run a plain function in its threadpool, a thread hop per request.
    service: Service = request.app.state.service
    return service


def get_repo(request: Request) -> Repository:
    service: Service = request.app.state.service
    return service.repo


ServiceDep = Annotated[Service, Depends(get_service)]
RepoDep = Annotated[Repository, Depends(get_repo)]
NamespaceDep = Annotated[
    str,
    Query(
        max_length=MAX_NAME_LENGTH,
        pattern=DNS_LABEL,
        description="the experiment's namespace (default: default)",
    ),
]
ExperimentName = Annotated[
    str, Path(max_length=MAX_NAME_LENGTH, pattern=DNS_LABEL, description="experiment name")
]
TrialName = Annotated[
    str, Path(max_length=MAX_TRIAL_NAME_LENGTH, pattern=DNS_LABEL, description="trial name")
]
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")]


def metric_query(description: str) -> Any:
    """A ``metric=`` query parameter: a metric name as the spec allows it (or absent)."""
    return Query(
        min_length=1, max_length=MAX_METRIC_NAME_LENGTH, pattern=NO_NUL, description=description
    )


def get_experiment(
    service: ServiceDep, name: ExperimentName, namespace: NamespaceDep = "default"
) -> ExperimentRecord:
    """The stored experiment named in the path (404 when there is none)."""
    return service.get(namespace, name)


ExperimentDep = Annotated[ExperimentRecord, Depends(get_experiment)]
