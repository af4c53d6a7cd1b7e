"""Katib's validation rules for an Experiment, plus ours; every problem with its field path.

The algorithm and stopping-rule registries validate their own settings; they receive the
spec's :class:`~tuner.space.Study` (domain values), never the models.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from tuner.algorithms.registry import validate_algorithm
from tuner.early_stopping import validate_early_stopping
from tuner.errors import FieldError
from tuner.space import SpaceError
from tuner.spec.collectors import collector_errors
from tuner.spec.models import (
    AlgorithmSetting,
    EarlyStoppingSetting,
    Experiment,
    ExperimentSpec,
    Objective,
)
from tuner.spec.multi import multi_errors
from tuner.spec.trial_rules import template_errors
from tuner.spec.warm import warm_errors

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def validate(experiment: Experiment) -> list[FieldError]:
    """Katib's validation rules, plus ours; returns every problem found."""
    errors: list[FieldError] = []

    def add(path: str, message: str) -> None:
        errors.append(FieldError(path, message))

    spec = experiment.spec

    if len(experiment.name) > 40 or not _DNS_LABEL.match(experiment.name):
        add(
            "metadata.name",
            "must consist of lower case alphanumeric characters or '-', start with a letter, "
            "end with an alphanumeric character, and be at most 40 characters (Katib's limit: "
            "trial and Job names are made from it)",
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
    errors += multi_errors(spec)
    errors += _parameter_errors(spec)
    errors += _settings_errors(spec)
    errors += template_errors(spec)
    errors += collector_errors(spec)
    errors += warm_errors(experiment)
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

    ``spec.parameters[1].feasibleSpace.min: must not exceed max`` becomes
    ``spec.parameters[1].feasibleSpace.min: parameter 'lr': must not exceed max``. A message
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
