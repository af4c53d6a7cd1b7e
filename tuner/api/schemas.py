"""Request and response models of the REST API (``*Create``/``*Update`` in, ``*Read`` out).

Experiment specs themselves are :mod:`tuner.spec` models; the shapes here wrap them and the
views (:mod:`tuner.views`) that the CLI prints too, so that both show the same JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    field_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema, WithJsonSchema

from tuner.limits import MAX_METRIC_NAME_LENGTH, MAX_STEP, NO_NUL
from tuner.spec import ExperimentSpec, ObjectMeta
from tuner.storage import ExperimentRecord, Repository
from tuner.trials import ExperimentPhase, ParamValue, Trial, TrialState
from tuner.views import NON_FINITE, experiment_summary, leaderboard_row, trial_conditions

_TIME = Field(default=None, json_schema_extra={"format": "date-time"})

MetricValue = Literal["NaN", "Infinity", "-Infinity"] | float | None
"""A metric value: a number; a string for values that are not finite; null for none."""


def _non_finite_word(value: Any) -> Any:
    """The strings the API shows for non-finite values are accepted back as those values."""
    if isinstance(value, str) and value in NON_FINITE:
        return float(value)
    return value


PushedValue = Annotated[
    float,
    BeforeValidator(_non_finite_word),
    WithJsonSchema(
        {
            "anyOf": [{"type": "number"}, {"enum": list(NON_FINITE), "type": "string"}],
            "description": 'a number; "NaN", "Infinity", "-Infinity" (or JSON\'s NaN, '
            "Infinity, -Infinity literals) for values that are not finite",
        }
    ),
]
"""A pushed metric value (strict: a JSON number, not a numeric string)."""

MetricName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_METRIC_NAME_LENGTH, pattern=NO_NUL)
]


class _Read(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


# Request bodies are strict: `true` is not a count nor `"3"` a step, as the schema says (JSON
# numbers only; an integral float such as 3.0 is not an integer either).
class _Input(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", strict=True
    )


# -- errors and health ------------------------------------------------------------------------


class FieldErrorRead(BaseModel):
    path: str = Field(description="Katib-style field path, e.g. spec.parameters[1].feasibleSpace")
    message: str


class ErrorRead(BaseModel):
    """Every error response: a message, and for invalid input, one entry per problem."""

    detail: str
    errors: list[FieldErrorRead] = Field(default_factory=list)
    request_id: str | None = Field(
        default=None, description="The request's id (also its X-Request-ID header and log lines)"
    )


class HealthRead(BaseModel):
    status: Literal["ok"] = "ok"


# -- experiments ------------------------------------------------------------------------------


class ConditionRead(_Read):
    type: str
    status: Literal["True", "False"]
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = _TIME


class ParameterAssignmentRead(_Read):
    name: str
    value: ParamValue


class MetricRead(_Read):
    name: str
    value: MetricValue


class ObservationSummaryRead(_Read):
    metrics: list[MetricRead]


class OptimalTrialRead(_Read):
    best_trial_name: str
    parameter_assignments: list[ParameterAssignmentRead]
    observation: ObservationSummaryRead


class ExperimentStatusRead(_Read):
    """Katib's status vocabulary, as ``tuner status --json`` prints it.

    Keys :func:`tuner.views.experiment_summary` adds later pass through unchanged.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    phase: ExperimentPhase
    reason: str | None = None
    message: str | None = None
    conditions: list[ConditionRead]
    trials: int = Field(description="number of trials in any state")
    trial_counts: dict[str, int] = Field(description="trials by state")
    current_optimal_trial: OptimalTrialRead | list[OptimalTrialRead] | None = Field(
        default=None,
        description="the best trial; with several objectives (spec.objectives) the Pareto front",
    )
    total_steps: int
    steps_without_stopping: int | None = Field(
        default=None, description="estimated steps a run without early stopping would have used"
    )
    start_time: str | None = _TIME
    completion_time: str | None = _TIME


class ExperimentRead(_Read):
    """A stored Experiment: its spec as submitted (defaults filled in) and its status."""

    api_version: str = "kubeflow.org/v1beta1"
    kind: Literal["Experiment"] = "Experiment"
    metadata: ObjectMeta
    spec: ExperimentSpec
    status: ExperimentStatusRead

    @field_serializer("spec", mode="wrap")
    def _spec_wire_form(  # type: ignore[no-untyped-def]  # no return type: keep the spec schema
        self, spec: ExperimentSpec, handler: SerializerFunctionWrapHandler
    ):
        # The same camelCase form a user writes, without the unset optional fields.
        return spec.dump()


class BudgetUpdate(_Input):
    """``PATCH /experiments/{name}``: the budget, and only the budget, may change.

    A field that is absent stays as it is; ``null`` removes ``maxTrialCount`` or
    ``maxFailedTrialCount``.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={"minProperties": 1},
        strict=True,
    )

    max_trial_count: Annotated[int, Field(ge=1)] | None = None
    # null is refused below; the schema does not offer it.
    parallel_trial_count: Annotated[int, Field(ge=1)] | SkipJsonSchema[None] = None
    max_failed_trial_count: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _something(self) -> BudgetUpdate:
        if not self.model_fields_set:
            raise ValueError(
                "give at least one of maxTrialCount, parallelTrialCount, maxFailedTrialCount"
            )
        if "parallel_trial_count" in self.model_fields_set and self.parallel_trial_count is None:
            raise ValueError("parallelTrialCount cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The edited spec fields, camelCase, as they go into the spec."""
        return {to_camel(name): getattr(self, name) for name in sorted(self.model_fields_set)}


# -- trials -----------------------------------------------------------------------------------


class LeaderboardRowRead(BaseModel):
    """One trial as ``tuner leaderboard --json`` prints it."""

    trial: str
    status: TrialState
    parameters: dict[str, ParamValue]
    objective: MetricValue = Field(
        default=None, description='"NaN", "Infinity" or "-Infinity" when not finite'
    )
    metrics: dict[str, MetricValue] = Field(
        description="each metric's value under its strategy (min, max or latest)"
    )
    steps: int = Field(description="observations of the objective metric")
    reason: str | None = Field(default=None, description="why the trial did not succeed")


class TrialRead(LeaderboardRowRead):
    """A trial with its parameters, metrics and state history (Katib-style conditions)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    number: int
    message: str | None = None
    conditions: list[ConditionRead]
    created_at: str | None = _TIME
    started_at: str | None = _TIME
    finished_at: str | None = _TIME


class SuggestedTrialRead(TrialRead):
    token: str = Field(
        description="the trial's token: send it with pushes and completion of this trial"
    )


class PointRead(BaseModel):
    step: int
    value: MetricValue = Field(description='"NaN", "Infinity" or "-Infinity" when not finite')
    time: str | None = _TIME


class ObservationsRead(BaseModel):
    trial: str
    metrics: dict[str, list[PointRead]] = Field(description="each metric's curve, by step")


class ObservationCreate(BaseModel):
    """A push from a trial: values of one or more metrics at one step."""

    model_config = ConfigDict(extra="forbid", strict=True)

    step: int | None = Field(
        default=None,
        ge=0,
        le=MAX_STEP,
        description="null: the next step of each metric (its last + 1)",
    )
    metrics: dict[MetricName, PushedValue] = Field(
        min_length=1, examples=[{"loss": 0.3, "accuracy": 0.9}]
    )


class ObservationAck(BaseModel):
    should_stop: bool = Field(description="stop training: early-stopped, killed or finished")
    ignored: list[str] = Field(
        default_factory=list, description="metrics the objective does not list (not stored)"
    )


class TrialComplete(BaseModel):
    """Ask/tell: finish a trial, optionally with its final metric values."""

    model_config = ConfigDict(extra="forbid", strict=True)

    status: Literal["Succeeded", "Failed"]
    metrics: dict[MetricName, PushedValue] = Field(default_factory=dict)
    message: str | None = Field(default=None, pattern=NO_NUL)


class SuggestionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    count: int = Field(default=1, ge=1, le=1000)


class SuggestionsRead(BaseModel):
    """Running ask/tell trials with their tokens: new ones (and why not more), or the open ones."""

    trials: list[SuggestedTrialRead]
    phase: ExperimentPhase
    message: str | None = Field(
        default=None, description="why fewer trials than asked for were created"
    )


# -- conversions ------------------------------------------------------------------------------


def experiment_read(repo: Repository, record: ExperimentRecord) -> ExperimentRead:
    return ExperimentRead(
        api_version=record.experiment.api_version,
        metadata=record.experiment.metadata,
        spec=record.experiment.spec,
        status=ExperimentStatusRead.model_validate(experiment_summary(repo, record)),
    )


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def trial_read(trial: Trial) -> TrialRead:
    return TrialRead.model_validate(
        {
            **leaderboard_row(trial),
            "number": trial.number,
            "message": trial.message,
            "conditions": trial_conditions(trial),
            "createdAt": _iso(trial.created_at),
            "startedAt": _iso(trial.started_at),
            "finishedAt": _iso(trial.finished_at),
        }
    )


def suggested_trial_read(trial: Trial, token: str) -> SuggestedTrialRead:
    return SuggestedTrialRead.model_validate({**trial_read(trial).model_dump(), "token": token})
