"""The rules of the warm-start fields: ``spec.initialPoints`` and ``spec.warmStartFrom``.

Both are tuner's extensions (Katib has neither). They are checked here without a database: a
point must give every parameter of ``spec.parameters`` (and nothing else) a value inside its
feasible space; ``warmStartFrom`` must name another experiment. Whether that experiment exists
and its space is compatible is checked when the experiment is stored (:mod:`tuner.warmstart`).

Algorithms whose trials belong to a schedule (Hyperband's brackets, PBT's generations) cannot
take a trial from outside the schedule, so they refuse both fields.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from tuner.errors import FieldError
from tuner.space import Parameter, ParameterKind, SearchSpace
from tuner.spec.models import Experiment

__all__ = ["MAX_POINTS", "REFUSED_BY", "describe", "point_errors", "warm_errors"]

MAX_POINTS = 10_000
"""The most enqueued points an experiment keeps (they live in its stored spec)."""

REFUSED_BY: dict[str, str] = {
    "hyperband": "its trials are the rungs of brackets it plans itself",
    "pbt": "its trials are members of generations it breeds itself",
}
"""Algorithms that refuse enqueued points and warm starts, with the reason."""

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def describe(p: Parameter) -> str:
    """A parameter's feasible space in words, for messages."""
    if p.kind.numeric:
        step = f" on the grid of step {p.step:g}" if p.step else ""
        return f"a {p.kind} in [{p.low:g}, {p.high:g}]{step}"
    return f"one of {list(p.choices)}"


def point_errors(space: SearchSpace, point: Any, path: str) -> list[FieldError]:
    """Every problem of one parameter assignment, each at ``path.<parameter>``."""
    if not isinstance(point, Mapping):
        return [FieldError(path, "must be a mapping of parameter name to value")]
    errors = [
        FieldError(f"{path}.{key}", f"{key!r} is not a parameter (known: {', '.join(space.names)})")
        for key in point
        if key not in space
    ]
    for p in space:
        where = f"{path}.{p.name}"
        if p.name not in point:
            errors.append(FieldError(where, "missing: a point gives every parameter a value"))
            continue
        value = point[p.name]
        if not _in_space(p, value):
            errors.append(FieldError(where, f"{value!r} is not {describe(p)}"))
    return errors


def _in_space(p: Parameter, value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        return False
    if p.kind.numeric and isinstance(value, str):
        return False  # "0.1" is a string in JSON: refuse rather than guess
    try:
        converted = p.convert(value)
    except (TypeError, ValueError, OverflowError):
        return False
    if isinstance(converted, float) and not math.isfinite(converted):
        return False
    if p.kind is ParameterKind.INT and isinstance(value, float) and not value.is_integer():
        return False
    return p.contains(converted)


def warm_errors(experiment: Experiment) -> list[FieldError]:
    """The problems of ``spec.initialPoints`` and ``spec.warmStartFrom``."""
    spec = experiment.spec
    errors: list[FieldError] = []
    algorithm = spec.algorithm.algorithm_name
    refusal = REFUSED_BY.get(algorithm)
    fields = (
        ("spec.initialPoints", spec.initial_points is not None, "enqueued points"),
        ("spec.warmStartFrom", spec.warm_start_from is not None, "warm starts"),
    )
    for path, used, what in fields:
        if used and refusal is not None:
            errors.append(FieldError(path, f"{algorithm} does not take {what}: {refusal}"))
    if spec.warm_start_from is not None:
        source = spec.warm_start_from
        if not _DNS_LABEL.match(source) or len(source) > 63:
            errors.append(FieldError("spec.warmStartFrom", "must name an experiment"))
        elif source == experiment.name:
            errors.append(FieldError("spec.warmStartFrom", "cannot be the experiment itself"))
    if spec.initial_points is not None and len(spec.initial_points) > MAX_POINTS:
        errors.append(FieldError("spec.initialPoints", f"at most {MAX_POINTS} points"))
    study = spec.partial_study()
    if spec.initial_points and study.complete:
        for i, point in enumerate(spec.initial_points):
            errors += point_errors(study.space, point, f"spec.initialPoints[{i}]")
    return errors
