"""Katib's validation rules for an Experiment, plus ours; every problem with its field path.

The algorithm and stopping-rule registries validate their own settings; they receive the
spec's :class:`~tuner.space.Study` (domain values), never the models.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from tuner.algorithms.registry import validate_algorithm
from tuner.early_stopping import validate_early_stopping
from tuner.errors import FieldError
from tuner.space import SpaceError
from tuner.spec.models import (
    AlgorithmSetting,
    CollectorKind,
    EarlyStoppingSetting,
    Experiment,
    ExperimentSpec,
    FileFormat,
    FileSystemKind,
    MetricsCollectorSpec,
    Objective,
    job_containers,
)

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
TRIAL_PARAM_REF = re.compile(r"\$\{trialParameters\.([^}]*)\}")
_META_REF = re.compile(
    r"^\$\{trialSpec\.(Name|Namespace|Kind|APIVersion|Labels\[[^\]]+\]|Annotations\[[^\]]+\])\}$"
)


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


def spec_warnings(experiment: Experiment) -> list[FieldError]:
    """What is valid but probably a mistake: a search parameter that no trial uses.

    Its values would be suggested, stored and plotted, yet never reach a trial, so they cannot
    explain anything. Experiments without a trialTemplate (ask/tell) use every parameter.
    """
    spec = experiment.spec
    tt = spec.trial_template
    if tt is None or tt.trial_spec is None:
        return []
    referenced = {tp.reference for tp in tt.trial_parameters}
    return [
        FieldError(
            f"spec.parameters[{i}]",
            f"parameter {p.name!r} is not used by any trial: no "
            "spec.trialTemplate.trialParameters entry has it as its reference",
        )
        for i, p in enumerate(spec.parameters)
        if p.name and p.name not in referenced
    ]


_NAMED_ITEM = re.compile(r"^(spec\.parameters|spec\.trialTemplate\.trialParameters)\[(\d+)\]")
_ITEM_KIND = {
    "spec.parameters": "parameter",
    "spec.trialTemplate.trialParameters": "trial parameter",
}


def with_names(errors: Sequence[FieldError], data: Mapping[str, Any]) -> list[FieldError]:
    """Each problem of a (trial) parameter, found by index in its path, with the parameter's
    name at the start of its message (the path stays machine-readable).

    ``spec.parameters[1].feasibleSpace.min: must be less than max`` becomes
    ``spec.parameters[1].feasibleSpace.min: parameter 'lr': must be less than max``. A message
    that already says ``parameter 'lr'`` is kept as it is. ``data`` is the spec as written.
    """
    spec = data.get("spec") if isinstance(data, Mapping) else None
    items: dict[str, Any] = {
        "spec.parameters": spec.get("parameters") if isinstance(spec, Mapping) else None,
        "spec.trialTemplate.trialParameters": _trial_parameters(spec),
    }
    named = []
    for error in errors:
        match = _NAMED_ITEM.match(error.path)
        name = None
        if match:
            listed, index = items[match.group(1)], int(match.group(2))
            if isinstance(listed, list) and index < len(listed):
                entry = listed[index]
                name = entry.get("name") if isinstance(entry, Mapping) else None
        if match and isinstance(name, str) and name and f"parameter {name!r}" not in error.message:
            kind = _ITEM_KIND[match.group(1)]
            error = FieldError(error.path, f"{kind} {name!r}: {error.message}")
        named.append(error)
    return named


def _trial_parameters(spec: Any) -> Any:
    template = spec.get("trialTemplate") if isinstance(spec, Mapping) else None
    return template.get("trialParameters") if isinstance(template, Mapping) else None


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


def _parameter_errors(spec: ExperimentSpec) -> list[FieldError]:
    errors: list[FieldError] = []
    if spec.nas_config is not None:
        errors.append(
            FieldError(
                "spec.nasConfig",
                "NAS is not supported by tuner: neural architecture search (Katib's enas and "
                "darts) is out of scope; tune hyperparameters with spec.parameters",
            )
        )
    if not spec.parameters:
        errors.append(FieldError("spec.parameters", "must be specified and non-empty"))
    seen: set[str] = set()
    for i, p in enumerate(spec.parameters):
        path = f"spec.parameters[{i}]"
        fpath = f"{path}.feasibleSpace"
        if not p.name:
            errors.append(FieldError(f"{path}.name", "must be specified"))
        elif p.name in seen:
            errors.append(FieldError(f"{path}.name", f"duplicate parameter name {p.name!r}"))
        seen.add(p.name)
        try:
            p.parameter  # parsed once, here, and kept on the model  # noqa: B018
        except SpaceError as e:
            errors += [FieldError(f"{fpath}.{k}" if k else fpath, m) for k, m in e.problems]
    return errors


def _settings_errors(spec: ExperimentSpec) -> list[FieldError]:
    study = spec.partial_study()
    errors: list[FieldError] = []
    problems = validate_algorithm(spec.algorithm.algorithm_name, spec.algorithm.settings, study)
    errors += _settings_problem_paths("spec.algorithm", spec.algorithm.algorithm_settings, problems)
    if spec.early_stopping is not None:
        es = spec.early_stopping
        problems = validate_early_stopping(es.algorithm_name, es.settings, study)
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
    source = mc.source
    errors += _other_collector_errors(mc, path)
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


def _other_collector_errors(mc: MetricsCollectorSpec, path: str) -> list[FieldError]:
    """Katib's checks of the TensorFlowEvent, PrometheusMetric and Custom collectors."""
    errors: list[FieldError] = []
    kind, source = mc.kind, mc.source
    fsp = source.file_system_path if source is not None else None
    if kind is CollectorKind.TF_EVENT:
        if (
            fsp is None
            or not fsp.path
            or not fsp.path.startswith("/")
            or (fsp.kind not in (None, FileSystemKind.DIRECTORY))
        ):
            errors.append(
                FieldError(
                    f"{path}.source.fileSystemPath.path",
                    "an absolute path of kind Directory where the trial writes its TensorFlow "
                    "event files is required",
                )
            )
        if fsp is not None and fsp.format is not None:
            errors.append(FieldError(f"{path}.source.fileSystemPath.format", "must be empty"))
    elif kind is CollectorKind.PROMETHEUS:
        http_get = (source.http_get if source is not None else None) or {}
        port = http_get.get("port", 8080)
        number = int(port) if isinstance(port, str) and port.isdigit() else port
        if isinstance(number, bool) or not isinstance(number, int) or not 0 < number < 65536:
            errors.append(
                FieldError(
                    f"{path}.source.httpGet.port",
                    f"must be a port number (1-65535) for PrometheusMetric, not {port!r}",
                )
            )
        route = http_get.get("path", "/metrics")
        if not isinstance(route, str) or not route.startswith("/"):
            errors.append(
                FieldError(f"{path}.source.httpGet.path", f"must start with '/', not {route!r}")
            )
    elif kind is CollectorKind.CUSTOM:
        custom = mc.collector.custom_collector
        if not custom:
            errors.append(
                FieldError(
                    f"{path}.collector.customCollector",
                    "the collector container is required for the Custom collector",
                )
            )
        elif not isinstance(custom.get("name"), str) or not custom.get("image"):
            errors.append(
                FieldError(
                    f"{path}.collector.customCollector",
                    "the collector container needs a name and an image",
                )
            )
        if fsp is not None and (
            not fsp.path
            or not fsp.path.startswith("/")
            or fsp.kind not in (FileSystemKind.FILE, FileSystemKind.DIRECTORY)
        ):
            errors.append(
                FieldError(
                    f"{path}.source.fileSystemPath",
                    "an absolute path of kind File or Directory is required",
                )
            )
    return errors
