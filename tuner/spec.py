"""The Experiment spec: Katib ``kubeflow.org/v1beta1`` accepted unchanged, plus our extensions.

Parsing happens in two passes, and both report every problem with a Katib-style field path
(``spec.parameters[1].feasibleSpace.min``):

1. structure, by pydantic (unknown fields, wrong types);
2. Katib's semantic rules (budgets, feasible spaces, template references, collectors,
   algorithm and early-stopping settings).

Numbers may be written the way Katib writes them (``min: "0.01"``) or as YAML numbers; both
become the same model. Use :func:`load_spec` for any user input.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from tuner.errors import FieldError, SpecError
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


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=False
    )

    def dump(self) -> dict[str, Any]:
        """The wire form: camelCase, without unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# ---------------------------------------------------------------------------------------------
# Objective, algorithm, early stopping


class ObjectiveType(StrEnum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


class MetricStrategyType(StrEnum):
    MIN = "min"
    MAX = "max"
    LATEST = "latest"


class MetricStrategy(_Model):
    name: str
    value: MetricStrategyType


class Objective(_Model):
    type: ObjectiveType
    goal: float | None = None
    objective_metric_name: str
    additional_metric_names: list[str] = Field(default_factory=list)
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

    def better(self, a: float, b: float) -> bool:
        """Whether objective value ``a`` is strictly better than ``b``."""
        return a < b if self.type is ObjectiveType.MINIMIZE else a > b

    def goal_reached(self, value: float) -> bool:
        if self.goal is None or math.isnan(value):
            return False
        if self.type is ObjectiveType.MINIMIZE:
            return value <= self.goal
        return value >= self.goal


class AlgorithmSetting(_Model):
    name: str
    value: KatibStr


class AlgorithmSpec(_Model):
    algorithm_name: str
    algorithm_settings: list[AlgorithmSetting] = Field(default_factory=list)

    @property
    def settings(self) -> dict[str, str]:
        return {s.name: s.value for s in self.algorithm_settings}


class EarlyStoppingSetting(_Model):
    name: str
    value: KatibStr


class EarlyStoppingSpec(_Model):
    algorithm_name: str
    algorithm_settings: list[EarlyStoppingSetting] = Field(default_factory=list)

    @property
    def settings(self) -> dict[str, str]:
        return {s.name: s.value for s in self.algorithm_settings}


# ---------------------------------------------------------------------------------------------
# Search space


class ParameterType(StrEnum):
    INT = "int"
    DOUBLE = "double"
    DISCRETE = "discrete"
    CATEGORICAL = "categorical"


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
    """One dimension of the search space, with typed accessors over Katib's string fields."""

    name: str
    parameter_type: ParameterType
    feasible_space: FeasibleSpace

    @property
    def low(self) -> float:
        assert self.feasible_space.min is not None
        return float(self.feasible_space.min)

    @property
    def high(self) -> float:
        assert self.feasible_space.max is not None
        return float(self.feasible_space.max)

    @property
    def step(self) -> float | None:
        s = self.feasible_space.step
        return None if s is None else float(s)

    @property
    def log(self) -> bool:
        return self.feasible_space.distribution in (
            Distribution.LOG_UNIFORM,
            Distribution.LOG_NORMAL,
        )

    @property
    def choices(self) -> list[ParamValue]:
        """The typed values of a discrete or categorical parameter."""
        values = self.feasible_space.values or []
        if self.parameter_type is ParameterType.DISCRETE:
            return [_number(v) for v in values]
        return list(values)

    def convert(self, value: Any) -> ParamValue:
        """Bring a value (from a suggester, JSON or a user) to this parameter's Python type."""
        if self.parameter_type is ParameterType.INT:
            return round(float(value))
        if self.parameter_type is ParameterType.DOUBLE:
            return float(value)
        if self.parameter_type is ParameterType.DISCRETE:
            return _number(value)
        return str(value)

    def contains(self, value: ParamValue) -> bool:
        """Whether ``value`` lies in the feasible space (bounds, step grid, list)."""
        if self.parameter_type in (ParameterType.DISCRETE, ParameterType.CATEGORICAL):
            return any(value == c for c in self.choices)
        if isinstance(value, str):
            return False
        if self.parameter_type is ParameterType.INT and not float(value).is_integer():
            return False
        lo, hi = self.low, self.high
        tol = 1e-9 * max(1.0, abs(hi - lo))
        if not (lo - tol <= value <= hi + tol):
            return False
        step = self.step
        if step:
            k = (value - lo) / step
            return abs(k - round(k)) < 1e-6
        return True


def _number(value: Any) -> int | float:
    f = float(value)
    if isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value)):
        return int(f)
    return f


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


JOB_SUCCESS_CONDITION = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
JOB_FAILURE_CONDITION = 'status.conditions.#(type=="Failed")#|#(status=="True")#'


class TrialTemplate(_Model):
    retain: bool = False
    trial_spec: dict[str, Any] | None = None
    config_map: ConfigMapSource | None = None
    trial_parameters: list[TrialParameterSpec] = Field(default_factory=list)
    primary_pod_labels: dict[str, str] | None = None
    primary_container_name: str | None = None
    success_condition: str = JOB_SUCCESS_CONDITION
    failure_condition: str = JOB_FAILURE_CONDITION

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
    TF_EVENT = "TfEvent"
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
    kind: CollectorKind = CollectorKind.STDOUT
    custom_collector: dict[str, Any] | None = None


class MetricsCollectorSpec(_Model):
    source: SourceSpec | None = None
    collector: CollectorSpec = Field(default_factory=CollectorSpec)

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

    def parameter(self, name: str) -> ParameterSpec:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)


class ObjectMeta(BaseModel):
    """Kubernetes metadata. Unknown keys (uid, resourceVersion, ...) are kept, not rejected."""

    model_config = ConfigDict(extra="allow")

    name: str
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Experiment(_Model):
    api_version: Literal["kubeflow.org/v1beta1", "tuner.dev/v1beta1"] = "kubeflow.org/v1beta1"
    kind: Literal["Experiment"] = "Experiment"
    metadata: ObjectMeta
    spec: ExperimentSpec
    status: dict[str, Any] | None = None  # accepted (exported CRs carry it) and ignored

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


# ---------------------------------------------------------------------------------------------
# Loading and validation


def load_spec(source: str | Path | Mapping[str, Any]) -> Experiment:
    """Parse and validate a spec from a path, YAML/JSON text or a mapping.

    Raises:
        SpecError: with one :class:`FieldError` per problem.
    """
    data = _read(source)
    if not isinstance(data, Mapping):
        raise SpecError([FieldError("<root>", "the spec must be a mapping (an Experiment object)")])
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as e:
        raise SpecError([_pydantic_error(err) for err in e.errors()]) from e
    problems = validate(experiment)
    if problems:
        raise SpecError(problems)
    return experiment


def _read(source: str | Path | Mapping[str, Any]) -> Any:
    if isinstance(source, Mapping):
        return source
    if isinstance(source, Path) or ("\n" not in source and not source.lstrip().startswith("{")):
        path = Path(source)
        try:
            text = path.read_text()
        except OSError as e:
            raise SpecError([FieldError(str(path), f"cannot read spec file: {e.strerror}")]) from e
    else:
        text = source
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<document>"
        raise SpecError([FieldError(where, f"not valid YAML/JSON: {e}")]) from e


def format_path(loc: Sequence[int | str]) -> str:
    """``("spec", "parameters", 1, "feasibleSpace")`` → ``spec.parameters[1].feasibleSpace``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


_PYDANTIC_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}


def _pydantic_error(err: Mapping[str, Any]) -> FieldError:
    # Drop pydantic's internal locations (function-after[...], union member names).
    loc = [p for p in err["loc"] if isinstance(p, int) or not re.match(r"^[a-z-]+\[", str(p))]
    message = _PYDANTIC_MESSAGES.get(err["type"], err["msg"])
    if err["type"] in ("enum", "literal_error"):
        message = f"{err['msg']} (got {err.get('input')!r})"
    return FieldError(format_path(loc), message)


# -- Katib's semantic rules ------------------------------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
TRIAL_PARAM_REF = re.compile(r"\$\{trialParameters\.([^}]*)\}")
_META_REF = re.compile(
    r"^\$\{trialSpec\.(Name|Namespace|Kind|APIVersion|Labels\[[^\]]+\]|Annotations\[[^\]]+\])\}$"
)

SettingsValidator = Callable[[str, Mapping[str, str]], list[tuple[str, str]]]
"""(algorithm name, settings) → [(setting name or "", message)]; empty when valid."""


def validate(experiment: Experiment) -> list[FieldError]:
    """Katib's validation rules, plus ours; returns every problem found."""
    errors: list[FieldError] = []

    def add(path: str, message: str) -> None:
        errors.append(FieldError(path, message))

    spec = experiment.spec

    if len(experiment.name) > 63 or not _DNS_LABEL.match(experiment.name):
        add(
            "metadata.name",
            "must consist of lower case alphanumeric characters or '-', start with a letter, "
            "end with an alphanumeric character, and be at most 63 characters",
        )
    if not _DNS_LABEL.match(experiment.namespace) or len(experiment.namespace) > 63:
        add("metadata.namespace", "must be a DNS-1123 label")

    if spec.max_failed_trial_count is not None and spec.max_failed_trial_count < 0:
        add("spec.maxFailedTrialCount", "should not be less than 0")
    if spec.max_trial_count is not None and spec.max_trial_count <= 0:
        add("spec.maxTrialCount", "must be greater than 0")
    if spec.parallel_trial_count <= 0:
        add("spec.parallelTrialCount", "must be greater than 0")
    if spec.max_trial_count is not None and spec.max_trial_count > 0:
        if (
            spec.max_failed_trial_count is not None
            and spec.max_failed_trial_count > spec.max_trial_count
        ):
            add("spec.maxFailedTrialCount", "should be less than or equal to spec.maxTrialCount")
        if spec.parallel_trial_count > spec.max_trial_count:
            add("spec.parallelTrialCount", "should be less than or equal to spec.maxTrialCount")

    errors += _objective_errors(spec.objective)
    errors += _parameter_errors(spec)
    errors += _settings_errors(spec)
    errors += _template_errors(spec)
    errors += _collector_errors(spec)
    return errors


def _objective_errors(obj: Objective) -> list[FieldError]:
    errors = []
    path = "spec.objective"
    if not obj.objective_metric_name:
        errors.append(FieldError(f"{path}.objectiveMetricName", "must be specified"))
    if obj.objective_metric_name in obj.additional_metric_names:
        errors.append(
            FieldError(
                f"{path}.additionalMetricNames",
                "should not contain spec.objective.objectiveMetricName",
            )
        )
    if len(set(obj.additional_metric_names)) != len(obj.additional_metric_names):
        errors.append(FieldError(f"{path}.additionalMetricNames", "metric names must be unique"))
    if obj.goal is not None and not math.isfinite(obj.goal):
        errors.append(FieldError(f"{path}.goal", "must be a finite number"))
    known = set(obj.metric_names)
    for i, s in enumerate(obj.metric_strategies):
        if s.name not in known:
            errors.append(
                FieldError(
                    f"{path}.metricStrategies[{i}].name",
                    f"{s.name!r} is neither the objective metric nor an additional metric",
                )
            )
    return errors


def _parse_float(value: str | None, path: str, errors: list[FieldError]) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except ValueError:
        errors.append(FieldError(path, f"{value!r} is not a number"))
        return None
    if not math.isfinite(f):
        errors.append(FieldError(path, f"{value!r} is not a finite number"))
        return None
    return f


def _parameter_errors(spec: ExperimentSpec) -> list[FieldError]:
    errors: list[FieldError] = []
    if spec.nas_config is not None:
        errors.append(
            FieldError(
                "spec.nasConfig", "neural architecture search is not supported; use spec.parameters"
            )
        )
    if not spec.parameters:
        errors.append(FieldError("spec.parameters", "must be specified and non-empty"))
    seen: set[str] = set()
    for i, p in enumerate(spec.parameters):
        path = f"spec.parameters[{i}]"
        fs = p.feasible_space
        fpath = f"{path}.feasibleSpace"
        if not p.name:
            errors.append(FieldError(f"{path}.name", "must be specified"))
        elif p.name in seen:
            errors.append(FieldError(f"{path}.name", f"duplicate parameter name {p.name!r}"))
        seen.add(p.name)
        if p.parameter_type in (ParameterType.INT, ParameterType.DOUBLE):
            if fs.values:
                errors.append(
                    FieldError(
                        f"{fpath}.list", f"not supported for parameterType {p.parameter_type.value}"
                    )
                )
            if fs.min is None:
                errors.append(
                    FieldError(
                        f"{fpath}.min",
                        f"must be specified for parameterType {p.parameter_type.value}",
                    )
                )
            if fs.max is None:
                errors.append(
                    FieldError(
                        f"{fpath}.max",
                        f"must be specified for parameterType {p.parameter_type.value}",
                    )
                )
            lo = _parse_float(fs.min, f"{fpath}.min", errors)
            hi = _parse_float(fs.max, f"{fpath}.max", errors)
            step = _parse_float(fs.step, f"{fpath}.step", errors)
            if p.parameter_type is ParameterType.INT:
                for key, v in (("min", lo), ("max", hi), ("step", step)):
                    if v is not None and not v.is_integer():
                        errors.append(
                            FieldError(
                                f"{fpath}.{key}",
                                f"must be an integer for parameterType int, "
                                f"got {getattr(fs, key)!r}",
                            )
                        )
            if lo is not None and hi is not None:
                if lo >= hi:
                    errors.append(
                        FieldError(f"{fpath}.min", f"must be less than max ({fs.min} >= {fs.max})")
                    )
                elif p.log and lo <= 0:
                    errors.append(
                        FieldError(
                            f"{fpath}.min", f"must be positive for distribution {fs.distribution}"
                        )
                    )
                if step is not None and step <= 0:
                    errors.append(FieldError(f"{fpath}.step", "must be greater than 0"))
                elif step is not None and lo < hi and step > hi - lo:
                    errors.append(FieldError(f"{fpath}.step", "must not exceed max - min"))
        else:
            if fs.min is not None or fs.max is not None or fs.step is not None:
                errors.append(
                    FieldError(
                        fpath,
                        "min, max and step are not supported for parameterType "
                        f"{p.parameter_type.value}",
                    )
                )
            if not fs.values:
                errors.append(
                    FieldError(
                        f"{fpath}.list",
                        f"must be a non-empty list for parameterType {p.parameter_type.value}",
                    )
                )
            else:
                if len(set(fs.values)) != len(fs.values):
                    errors.append(FieldError(f"{fpath}.list", "values must be unique"))
                if p.parameter_type is ParameterType.DISCRETE:
                    for j, item in enumerate(fs.values):
                        _parse_float(item, f"{fpath}.list[{j}]", errors)
            if fs.distribution is not None:
                errors.append(
                    FieldError(
                        f"{fpath}.distribution",
                        f"not supported for parameterType {p.parameter_type.value}",
                    )
                )
    return errors


def _settings_errors(spec: ExperimentSpec) -> list[FieldError]:
    # Imported here: the registries import the algorithms lazily, and spec must stay importable
    # without them for light clients.
    from tuner.algorithms.registry import validate_algorithm
    from tuner.early_stopping import validate_early_stopping

    errors: list[FieldError] = []
    problems = validate_algorithm(spec.algorithm.algorithm_name, spec.algorithm.settings, spec)
    errors += _settings_problem_paths("spec.algorithm", spec.algorithm.algorithm_settings, problems)
    if spec.early_stopping is not None:
        es = spec.early_stopping
        problems = validate_early_stopping(es.algorithm_name, es.settings, spec)
        errors += _settings_problem_paths("spec.earlyStopping", es.algorithm_settings, problems)
    return errors


def _settings_problem_paths(
    base: str,
    settings: Sequence[AlgorithmSetting | EarlyStoppingSetting],
    problems: list[tuple[str, str]],
) -> list[FieldError]:
    out = []
    for name, message in problems:
        if not name:
            out.append(FieldError(f"{base}.algorithmName", message))
            continue
        index = next((i for i, s in enumerate(settings) if s.name == name), None)
        path = (
            f"{base}.algorithmSettings[{index}]"
            if index is not None
            else f"{base}.algorithmSettings"
        )
        out.append(FieldError(path, f"{name}: {message}"))
    return out


def _template_errors(spec: ExperimentSpec) -> list[FieldError]:
    tt = spec.trial_template
    path = "spec.trialTemplate"
    errors: list[FieldError] = []
    if tt is None:
        return errors  # an ask/tell experiment, driven from outside
    if tt.config_map is not None:
        errors.append(
            FieldError(
                f"{path}.configMap",
                "templates from ConfigMaps are not supported; inline spec.trialTemplate.trialSpec",
            )
        )
    if tt.trial_spec is None:
        if tt.config_map is None:
            errors.append(FieldError(f"{path}.trialSpec", "must be specified"))
        return errors
    job = tt.trial_spec
    if job.get("apiVersion") != "batch/v1" or job.get("kind") != "Job":
        errors.append(
            FieldError(
                f"{path}.trialSpec",
                "only batch/v1 Job trials are supported "
                f"(got {job.get('apiVersion')}/{job.get('kind')})",
            )
        )
    meta = job.get("metadata") or {}
    if isinstance(meta, dict) and (meta.get("name") or meta.get("namespace")):
        errors.append(
            FieldError(
                f"{path}.trialSpec.metadata", "metadata.name and metadata.namespace must be omitted"
            )
        )
    containers = job_containers(job)
    if not containers:
        errors.append(
            FieldError(
                f"{path}.trialSpec.spec.template.spec.containers",
                "must hold at least one container",
            )
        )
    names = [c.get("name") for c in containers]
    if tt.primary_container_name is None:
        if len(containers) > 1:
            errors.append(
                FieldError(
                    f"{path}.primaryContainerName",
                    "must be specified when the Job has several containers",
                )
            )
    elif containers and tt.primary_container_name not in names:
        errors.append(
            FieldError(
                f"{path}.primaryContainerName",
                f"{tt.primary_container_name!r} is not a container of the trialSpec "
                f"(containers: {names})",
            )
        )
    for i, c in enumerate(containers):
        cpath = f"{path}.trialSpec.spec.template.spec.containers[{i}]"
        for key in ("command", "args"):
            if key in c and not (
                isinstance(c[key], list) and all(isinstance(a, str | int | float) for a in c[key])
            ):
                errors.append(FieldError(f"{cpath}.{key}", "must be a list of strings"))
        env = c.get("env", [])
        if not isinstance(env, list) or not all(isinstance(e, dict) and "name" in e for e in env):
            errors.append(FieldError(f"{cpath}.env", "must be a list of {name, value} objects"))

    param_names = {p.name for p in spec.parameters}
    used = set(TRIAL_PARAM_REF.findall(json.dumps(job)))
    declared: set[str] = set()
    refs: set[str] = set()
    for i, tp in enumerate(tt.trial_parameters):
        ppath = f"{path}.trialParameters[{i}]"
        if not tp.name or "{" in tp.name or "}" in tp.name:
            errors.append(
                FieldError(f"{ppath}.name", "must be specified and must not contain '{' or '}'")
            )
            continue
        if tp.name in declared:
            errors.append(
                FieldError(f"{ppath}.name", f"duplicate trial parameter name {tp.name!r}")
            )
            continue
        if tp.reference in refs:
            errors.append(FieldError(f"{ppath}.reference", f"duplicate reference {tp.reference!r}"))
            continue
        declared.add(tp.name)
        refs.add(tp.reference)
        if not _META_REF.match(tp.reference) and tp.reference not in param_names:
            errors.append(
                FieldError(
                    f"{ppath}.reference",
                    f"{tp.reference!r} is neither a parameter in spec.parameters "
                    f"({sorted(param_names)}) "
                    "nor a trial metadata reference such as ${trialSpec.Name}",
                )
            )
        if tp.name not in used:
            errors.append(
                FieldError(
                    f"{ppath}.name",
                    f"trial parameter {tp.name!r} is never used in spec.trialTemplate.trialSpec "
                    f"as ${{trialParameters.{tp.name}}}",
                )
            )
    for name in sorted(used - declared):
        errors.append(
            FieldError(
                f"{path}.trialSpec",
                f"references ${{trialParameters.{name}}}, "
                "which spec.trialTemplate.trialParameters does not declare",
            )
        )
    return errors


def _collector_errors(spec: ExperimentSpec) -> list[FieldError]:
    mc = spec.metrics_collector_spec
    path = "spec.metricsCollectorSpec"
    errors: list[FieldError] = []
    kind = mc.kind
    if kind in (CollectorKind.TF_EVENT, CollectorKind.PROMETHEUS, CollectorKind.CUSTOM):
        errors.append(
            FieldError(
                f"{path}.collector.kind",
                f"collector kind {kind.value} is not supported; use StdOut, File, Push or None",
            )
        )
    source = mc.source
    if kind is CollectorKind.FILE:
        fsp = source.file_system_path if source else None
        if (
            fsp is None
            or not fsp.path
            or not fsp.path.startswith("/")
            or fsp.kind not in (None, FileSystemKind.FILE)
        ):
            errors.append(
                FieldError(
                    f"{path}.source.fileSystemPath.path",
                    "an absolute path of kind File where the trial writes its metrics is required",
                )
            )
        if fsp is None or fsp.format is None:
            errors.append(
                FieldError(
                    f"{path}.source.fileSystemPath.format",
                    "format of the metrics file is required (TEXT or JSON)",
                )
            )
        elif fsp.format is FileFormat.JSON and source is not None and source.filter is not None:
            errors.append(
                FieldError(
                    f"{path}.source.filter",
                    "filter must be omitted when the metrics file format is JSON",
                )
            )
    if source is not None and source.filter is not None:
        for i, fmt in enumerate(source.filter.metrics_format):
            fpath = f"{path}.source.filter.metricsFormat[{i}]"
            try:
                compiled = re.compile(fmt)
            except re.error as e:
                errors.append(FieldError(fpath, f"invalid regular expression: {e}"))
                continue
            if compiled.groups < 2:
                errors.append(
                    FieldError(
                        fpath,
                        "two top subexpressions are required: the metric name, then its value",
                    )
                )
    if spec.trial_template is None and kind not in (
        CollectorKind.PUSH,
        CollectorKind.NONE,
        CollectorKind.STDOUT,
    ):
        errors.append(
            FieldError(
                f"{path}.collector.kind",
                "an experiment without trialTemplate is driven by ask/tell; use Push",
            )
        )
    return errors
