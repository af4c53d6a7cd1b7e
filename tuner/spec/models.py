"""The Experiment spec as pydantic models: Katib ``kubeflow.org/v1beta1``, plus our extensions.

Numbers may be written the way Katib writes them (``min: "0.01"``) or as YAML numbers; both
become the same model. The models hold the spec as written; the typed view the algorithms read
is :attr:`ExperimentSpec.study` (a :class:`~tuner.space.Study`), parsed once from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel

from tuner import space
from tuner.limits import MAX_METRIC_NAME_LENGTH, MAX_NAME_LENGTH, nul_free
from tuner.space import (
    Direction,
    Parameter,
    ParameterKind,
    SearchSpace,
    SpaceError,
    Study,
    parse_parameter,
)
from tuner.spec.defaults import apply_defaults
from tuner.spec.multi import ConstraintSpec, ObjectiveEntry, derive_objective
from tuner.trials import ParamValue

# ---------------------------------------------------------------------------------------------
# Scalars as Katib writes them


def _katib_string(value: Any) -> Any:
    """Katib stores numbers in feasible spaces and settings as strings; accept both forms."""
    if isinstance(value, bool):
        return value  # let pydantic reject it as "not a string"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return value


KatibStr = Annotated[str, BeforeValidator(_katib_string)]

MetricName = Annotated[
    str, StringConstraints(max_length=MAX_METRIC_NAME_LENGTH), AfterValidator(nul_free)
]
"""A metric's name: stored in 128-character columns, so a longer one is refused here (a
collector would otherwise fail every trial on it)."""


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=False
    )

    def dump(self) -> dict[str, Any]:
        """The wire form: camelCase, without unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# ---------------------------------------------------------------------------------------------
# Objective, algorithm, early stopping


ObjectiveType = Direction
"""Katib's ``objective.type`` (the domain's :class:`~tuner.space.Direction`)."""


class MetricStrategyType(StrEnum):
    MIN = "min"
    MAX = "max"
    LATEST = "latest"


class MetricStrategy(_Model):
    name: MetricName
    value: MetricStrategyType


class Objective(_Model):
    type: ObjectiveType
    goal: float | None = None
    objective_metric_name: MetricName = Field(json_schema_extra={"minLength": 1})
    additional_metric_names: list[Annotated[MetricName, Field(min_length=1)]] = Field(
        default_factory=list
    )
    metric_strategies: list[MetricStrategy] = Field(default_factory=list)

    @property
    def metric_names(self) -> list[str]:
        return [self.objective_metric_name, *self.additional_metric_names]

    def strategy(self, metric: str) -> MetricStrategyType:
        """The strategy of ``metric``; Katib's default follows the objective's direction."""
        for s in self.metric_strategies:
            if s.name == metric:
                return s.value
        if self.type is ObjectiveType.MINIMIZE:
            return MetricStrategyType.MIN
        return MetricStrategyType.MAX

    @property
    def strategies(self) -> dict[str, MetricStrategyType]:
        return {m: self.strategy(m) for m in self.metric_names}

    @cached_property
    def domain(self) -> space.Objective:
        """This objective as the plain value the algorithms and stopping rules read."""
        return space.Objective(
            self.objective_metric_name,
            self.type,
            self.goal,
            tuple(self.additional_metric_names),
        )

    def better(self, a: float, b: float) -> bool:
        """Whether objective value ``a`` is strictly better than ``b``."""
        return self.domain.better(a, b)

    def goal_reached(self, value: float) -> bool:
        return self.domain.goal_reached(value)


class AlgorithmSetting(_Model):
    name: str
    value: KatibStr


class EarlyStoppingSetting(AlgorithmSetting):
    """Katib names the settings of a stopping rule apart; their shape is the same."""


SettingT = TypeVar("SettingT", bound=AlgorithmSetting)


class _NamedChoice(_Model, Generic[SettingT]):
    """An algorithm or stopping rule by name, with its settings (Katib's shape for both)."""

    algorithm_name: str
    algorithm_settings: list[SettingT] = Field(default_factory=list)

    @property
    def settings(self) -> dict[str, str]:
        return {s.name: s.value for s in self.algorithm_settings}

    @property
    def choice(self) -> space.AlgorithmChoice:
        return space.AlgorithmChoice(self.algorithm_name, self.settings)


class AlgorithmSpec(_NamedChoice[AlgorithmSetting]):
    pass


class EarlyStoppingSpec(_NamedChoice[EarlyStoppingSetting]):
    pass


# ---------------------------------------------------------------------------------------------
# Search space


ParameterType = ParameterKind
"""Katib's ``parameterType`` (the domain's :class:`~tuner.space.ParameterKind`)."""


class Distribution(StrEnum):
    UNIFORM = "uniform"
    LOG_UNIFORM = "logUniform"
    NORMAL = "normal"
    LOG_NORMAL = "logNormal"


class FeasibleSpace(_Model):
    max: KatibStr | None = None
    min: KatibStr | None = None
    values: list[KatibStr] | None = Field(default=None, alias="list")
    step: KatibStr | None = None
    distribution: Distribution | None = None


class ParameterSpec(_Model):
    """One dimension of the search space as Katib writes it (strings).

    :attr:`parameter` reads the strings once into the typed :class:`~tuner.space.Parameter`;
    the accessors below delegate to it, so they are only meaningful on a validated spec.
    """

    name: str
    parameter_type: ParameterType
    feasible_space: FeasibleSpace

    @cached_property
    def parameter(self) -> Parameter:
        """The typed parameter, parsed once.

        Raises:
            SpaceError: the feasible space is not valid (the spec validator reports why).
        """
        fs = self.feasible_space
        return parse_parameter(
            self.name,
            self.parameter_type,
            minimum=fs.min,
            maximum=fs.max,
            step=fs.step,
            values=fs.values,
            distribution=None if fs.distribution is None else fs.distribution.value,
        )

    @property
    def low(self) -> float:
        return self.parameter.low

    @property
    def high(self) -> float:
        return self.parameter.high

    @property
    def step(self) -> float | None:
        return self.parameter.step

    @property
    def log(self) -> bool:
        return self.parameter.log

    @property
    def choices(self) -> list[ParamValue]:
        """The typed values of a discrete or categorical parameter."""
        return list(self.parameter.choices)

    def convert(self, value: Any) -> ParamValue:
        """Bring a value (from a suggester, JSON or a user) to this parameter's Python type."""
        return self.parameter.convert(value)

    def contains(self, value: ParamValue) -> bool:
        """Whether ``value`` lies in the feasible space (bounds, step grid, list)."""
        return self.parameter.contains(value)


# ---------------------------------------------------------------------------------------------
# Trial template


class TrialParameterSpec(_Model):
    name: str
    reference: str
    description: str | None = None


class ConfigMapSource(_Model):
    config_map_name: str | None = None
    config_map_namespace: str | None = None
    template_path: str | None = None


class TrialTemplate(_Model):
    retain: bool = False
    trial_spec: dict[str, Any] | None = None
    config_map: ConfigMapSource | None = None
    trial_parameters: list[TrialParameterSpec] = Field(default_factory=list)
    primary_pod_labels: dict[str, str] | None = None
    primary_container_name: str | None = None
    success_condition: str | None = None
    """Filled in by Katib's defaults for a Job or a Kubeflow training job (see
    :mod:`tuner.spec.defaults`); required otherwise."""
    failure_condition: str | None = None

    def primary_container(self) -> dict[str, Any]:
        """The primary container of the (unrendered) Job template."""
        containers = job_containers(self.trial_spec or {})
        for c in containers:
            if c.get("name") == self.primary_container_name:
                return c
        if self.primary_container_name is None and len(containers) == 1:
            return containers[0]
        raise KeyError(self.primary_container_name)


def job_containers(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``spec.template.spec.containers`` of a Job manifest, or ``[]``."""
    try:
        containers = job["spec"]["template"]["spec"]["containers"]
    except (KeyError, TypeError):
        return []
    return [c for c in containers if isinstance(c, dict)] if isinstance(containers, list) else []


# ---------------------------------------------------------------------------------------------
# Metrics collector


class CollectorKind(StrEnum):
    STDOUT = "StdOut"
    FILE = "File"
    PUSH = "Push"
    NONE = "None"
    TF_EVENT = "TensorFlowEvent"
    PROMETHEUS = "PrometheusMetric"
    CUSTOM = "Custom"


class FileFormat(StrEnum):
    TEXT = "TEXT"
    JSON = "JSON"


class FileSystemKind(StrEnum):
    FILE = "File"
    DIRECTORY = "Directory"


class FilterSpec(_Model):
    metrics_format: list[str] = Field(default_factory=list)


class FileSystemPath(_Model):
    path: str | None = None
    kind: FileSystemKind | None = None
    format: FileFormat | None = None


class SourceSpec(_Model):
    filter: FilterSpec | None = None
    file_system_path: FileSystemPath | None = None
    http_get: dict[str, Any] | None = None


class CollectorSpec(_Model):
    kind: CollectorKind
    custom_collector: dict[str, Any] | None = None


class MetricsCollectorSpec(_Model):
    source: SourceSpec | None = None
    collector: CollectorSpec = Field(
        default_factory=lambda: CollectorSpec(kind=CollectorKind.STDOUT)
    )

    @property
    def kind(self) -> CollectorKind:
        return self.collector.kind


# ---------------------------------------------------------------------------------------------
# The Experiment


class ResumePolicy(StrEnum):
    NEVER = "Never"
    LONG_RUNNING = "LongRunning"
    FROM_VOLUME = "FromVolume"


class ExperimentSpec(_Model):
    parameters: list[ParameterSpec] = Field(default_factory=list)
    objective: Objective
    algorithm: AlgorithmSpec
    early_stopping: EarlyStoppingSpec | None = None
    trial_template: TrialTemplate | None = None
    parallel_trial_count: int = 3
    max_trial_count: int | None = None
    max_failed_trial_count: int | None = None
    metrics_collector_spec: MetricsCollectorSpec = Field(default_factory=MetricsCollectorSpec)
    nas_config: dict[str, Any] | None = None
    resume_policy: ResumePolicy = ResumePolicy.NEVER
    # Warm starts (tuner's extension; see tuner.spec.warm): points tried first, in order, and an
    # experiment of the same namespace whose finished trials feed the algorithm.
    initial_points: list[dict[str, Any]] | None = None
    warm_start_from: str | None = None
    # Extensions (tuner.spec.multi): several objectives, and constraints on metrics.
    objectives: list[ObjectiveEntry] | None = None
    additional_metric_names: list[Annotated[MetricName, Field(min_length=1)]] | None = None
    constraints: list[ConstraintSpec] | None = None

    @model_validator(mode="before")
    @classmethod
    def _objective_from_objectives(cls, data: Any) -> Any:
        return derive_objective(data)

    def parameter(self, name: str) -> ParameterSpec:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def partial_study(self) -> Study:
        """The :class:`~tuner.space.Study` of this spec, built from the parameters that parse.

        For the validator: ``complete`` is ``False`` when a parameter did not parse or repeats
        a name, and the space then holds the others.
        """
        parsed: list[Parameter] = []
        complete = True
        for p in self.parameters:
            try:
                typed = p.parameter
            except SpaceError:
                complete = False
                continue
            if any(q.name == typed.name for q in parsed):
                complete = False
                continue
            parsed.append(typed)
        return Study(
            space=SearchSpace(tuple(parsed)),
            objective=self.objective.domain,
            algorithm=self.algorithm.choice,
            early_stopping=None if self.early_stopping is None else self.early_stopping.choice,
            parallel_trial_count=self.parallel_trial_count,
            complete=complete,
            objectives=tuple(o.domain for o in self.objectives or ()),
            constraints=tuple(
                c.domain for c in self.constraints or () if c.max is not None or c.min is not None
            ),
            max_trial_count=self.max_trial_count,
        )

    @cached_property
    def study(self) -> Study:
        """What the algorithms and stopping rules read of this (validated) spec, built once.

        Raises:
            ValueError: a parameter is not valid (the spec was not validated).
        """
        study = self.partial_study()
        if not study.complete:
            raise ValueError("the spec's parameters are not valid; validate it first")
        return study

    @property
    def space(self) -> SearchSpace:
        """The typed search space (see :attr:`study`)."""
        return self.study.space


_DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"  # as the validator checks it


class ObjectMeta(BaseModel):
    """Kubernetes metadata. Unknown keys (uid, resourceVersion, ...) are kept, not rejected."""

    model_config = ConfigDict(extra="allow")

    # The pattern is checked by the validator (with Katib's wording); the schema shows it.
    name: str = Field(json_schema_extra={"pattern": _DNS_LABEL, "maxLength": MAX_NAME_LENGTH})
    namespace: str = Field(
        default="default", json_schema_extra={"pattern": _DNS_LABEL, "maxLength": MAX_NAME_LENGTH}
    )
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Experiment(_Model):
    api_version: Literal["kubeflow.org/v1beta1", "tuner.dev/v1beta1"] = "kubeflow.org/v1beta1"
    kind: Literal["Experiment"] = "Experiment"
    metadata: ObjectMeta
    spec: ExperimentSpec
    status: dict[str, Any] | None = None  # accepted (exported CRs carry it) and ignored

    @model_validator(mode="before")
    @classmethod
    def _katib_defaults(cls, data: Any) -> Any:
        """Katib's defaulting webhook runs before its validation; so it does here."""
        return apply_defaults(data)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    def dump(self) -> dict[str, Any]:
        data = super().dump()
        data.pop("status", None)
        return data
