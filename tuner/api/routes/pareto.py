"""The Pareto front of an experiment, and what the dashboard's Pareto plot draws."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from tuner.api.auth import APIAuth
from tuner.api.deps import ExperimentDep, RepoDep
from tuner.api.routes.common import AUTH_ERRORS, INVALID, NOT_FOUND
from tuner.api.schemas import LeaderboardRowRead
from tuner.pareto_view import front_trials, pareto_plot_data
from tuner.views import leaderboard_row

router = APIRouter(
    prefix="/experiments/{name}/pareto",
    tags=["leaderboard"],
    dependencies=[APIAuth],
    responses={**AUTH_ERRORS, **NOT_FOUND, **INVALID},
)


class _Read(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class ParetoObjectiveRead(_Read):
    metric: str
    type: str


class ParetoPointRead(_Read):
    trial: str
    number: int
    values: list[float] = Field(description="one value per objective, in spec order")
    front: bool = Field(description="whether the trial is on the Pareto front")
    feasible: bool = Field(description="whether the trial satisfies spec.constraints")


class HypervolumeRead(_Read):
    number: int = Field(description="the trial after which the front has this hypervolume")
    value: float


class ParetoPlotRead(_Read):
    objectives: list[ParetoObjectiveRead]
    points: list[ParetoPointRead]
    hypervolume: list[HypervolumeRead]
    reference_point: list[float] | None = Field(
        description="the hypervolume's reference point, in losses (maximized objectives negated)"
    )


@router.get(
    "",
    summary="The Pareto front: the non-dominated finished trials",
    description=(
        "Rows have the shape of the leaderboard's, in creation order. A trial takes part when it "
        "is Succeeded or EarlyStopped with a finite value of every objective and satisfies "
        "spec.constraints; trials with equal objective values are all on the front. With one "
        "objective, the trials with the best value."
    ),
    response_model=list[LeaderboardRowRead],
)
def pareto(record: ExperimentDep, repo: RepoDep) -> Any:
    return [leaderboard_row(t) for t in front_trials(repo, record)]


@router.get(
    "/plot",
    summary="Every finished trial's objective values, the front, and the hypervolume history",
    response_model=ParetoPlotRead,
)
def pareto_plot(record: ExperimentDep, repo: RepoDep) -> Any:
    return pareto_plot_data(repo, record)
