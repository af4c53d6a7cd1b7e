"""The leaderboard: one indexed query, as JSON rows or CSV."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from tuner.api.auth import APIAuth
from tuner.api.deps import ExperimentDep, OffsetQuery, RepoDep, metric_query
from tuner.api.routes.common import AUTH_ERRORS, BAD_REQUEST, INVALID, NOT_FOUND
from tuner.api.schemas import LeaderboardRowRead
from tuner.api.tabular import flatten_rows
from tuner.views import check_metric, leaderboard_row, leaderboard_states

router = APIRouter(
    prefix="/experiments/{name}/leaderboard",
    tags=["leaderboard"],
    dependencies=[APIAuth],
    responses={**AUTH_ERRORS, **NOT_FOUND, **INVALID, **BAD_REQUEST},
)


@router.get(
    "",
    summary="Trials best first (by the objective or another metric, in its direction)",
    description=(
        "Rows have the shape of `tuner leaderboard --json`. With `Accept: text/csv` the answer "
        "is CSV with one column per parameter and per metric."
    ),
    response_model=list[LeaderboardRowRead],
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def leaderboard(
    record: ExperimentDep,
    repo: RepoDep,
    limit: Annotated[int, Query(ge=1, le=10000)] = 20,
    offset: OffsetQuery = 0,
    metric: Annotated[
        str | None, metric_query("order by this metric instead of the objective")
    ] = None,
    status: Annotated[
        list[str] | None,
        Query(
            description=(
                "only trials in these states (repeatable, or comma-separated); default "
                "Succeeded and EarlyStopped, the trials that finished with their metrics; "
                "`all` for every state"
            )
        ),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Any:
    objective = record.experiment.spec.objective
    check_metric(objective, metric)
    states = leaderboard_states(status)
    trials = repo.leaderboard(record, metric=metric, states=states, limit=limit, offset=offset)
    rows = [leaderboard_row(t) for t in trials]
    if accept is not None and "text/csv" in accept:
        return _csv(
            rows, [p.name for p in record.experiment.spec.parameters], objective.metric_names
        )
    return rows


def _csv(rows: list[dict[str, Any]], parameters: list[str], metrics: list[str]) -> Response:
    columns, records = flatten_rows(rows, parameters, metrics)
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: "" if v is None else v for k, v in record.items()})
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
