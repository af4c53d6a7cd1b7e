"""Our spec extensions beyond Katib's one objective: ``spec.objectives`` and ``spec.constraints``.

``spec.objectives`` lists two or more ``{objectiveMetricName, type}`` and replaces
``spec.objective``. So that every reader that knows only Katib's shape keeps working, the spec is
given an ``objective`` derived from the list: the first objective, with the other objectives'
metrics, ``spec.additionalMetricNames`` and the constraint metrics as its
``additionalMetricNames``. Each objective metric keeps its value under its own direction (min or
max over the steps, as Katib does for the objective); a metric only constraints name keeps its
latest value. The derived ``objective`` is shown with the spec; written back together with the
same ``objectives`` it is accepted, any other ``objective`` next to ``objectives`` is an error.
``goal`` is not defined for several objectives.

``spec.constraints`` lists ``{metricName, max}`` or ``{metricName, min}``; see
:mod:`tuner.constraints`. With one objective, a constraint metric must be one of the
objective's metrics (its value is taken under its metric strategy: write ``latest`` in
``metricStrategies`` to judge the final value).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel

from tuner.constraints import Constraint
from tuner.errors import FieldError
from tuner.limits import MAX_METRIC_NAME_LENGTH, nul_free
from tuner.space import Direction, Objective

__all__ = ["ConstraintSpec", "ObjectiveEntry", "derive_objective", "multi_errors"]

_Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_METRIC_NAME_LENGTH),
    AfterValidator(nul_free),
]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class ObjectiveEntry(_Entry):
    """One of several objectives: a metric and its direction."""

    objective_metric_name: _Name
    type: Direction

    @property
    def domain(self) -> Objective:
        return Objective(self.objective_metric_name, self.type)


class ConstraintSpec(_Entry):
    """``metricName`` bounded by ``max`` (at most) or ``min`` (at least)."""

    metric_name: _Name
    max: float | None = None
    min: float | None = None

    @property
    def domain(self) -> Constraint:
        return Constraint(self.metric_name, self.max, self.min)


def derive_objective(data: Any) -> Any:
    """The spec mapping with ``objective`` filled in from ``objectives`` (see the module).

    Left as it is when ``objectives`` is absent, not a list of mappings, or ``objective`` is
    already there (the validator compares the two).
    """
    if not isinstance(data, dict) or "objective" in data:
        return data
    derived = _derived(data)
    return data if derived is None else {**data, "objective": derived}


def _derived(data: dict[str, Any]) -> dict[str, Any] | None:
    entries = data.get("objectives")
    if not isinstance(entries, list) or not entries:
        return None
    if not all(isinstance(e, dict) for e in entries):
        return None
    names = [e.get("objectiveMetricName", e.get("objective_metric_name")) for e in entries]
    types = [e.get("type") for e in entries]
    if not all(isinstance(n, str) for n in names):
        return None
    additional: list[str] = []
    strategies: list[dict[str, str]] = []
    for name, type_ in zip(names[1:], types[1:], strict=True):
        if name not in additional and name != names[0]:
            additional.append(name)
            strategies.append({"name": name, "value": "min" if type_ == "minimize" else "max"})
    extra = data.get("additionalMetricNames", data.get("additional_metric_names")) or []
    constraints = data.get("constraints") or []
    constraint_names = [c.get("metricName") for c in constraints if isinstance(c, dict)]
    for name in [*extra, *constraint_names]:
        if isinstance(name, str) and name not in additional and name not in names:
            additional.append(name)
            if name in constraint_names and name not in extra:
                strategies.append({"name": name, "value": "latest"})
    out: dict[str, Any] = {"type": types[0], "objectiveMetricName": names[0]}
    if additional:
        out["additionalMetricNames"] = additional
    if strategies:
        out["metricStrategies"] = strategies
    return out


def multi_errors(spec: Any) -> list[FieldError]:
    """Problems with ``spec.objectives``, ``spec.additionalMetricNames`` and
    ``spec.constraints`` of a parsed :class:`~tuner.spec.models.ExperimentSpec`."""
    errors: list[FieldError] = []
    objectives: list[ObjectiveEntry] | None = spec.objectives
    if objectives is not None:
        errors += _objectives_errors(spec, objectives)
    elif spec.additional_metric_names is not None:
        errors.append(
            FieldError(
                "spec.additionalMetricNames",
                "only with spec.objectives; with spec.objective use "
                "spec.objective.additionalMetricNames",
            )
        )
    for i, c in enumerate(spec.constraints or []):
        path = f"spec.constraints[{i}]"
        if (c.max is None) == (c.min is None):
            errors.append(FieldError(path, "give exactly one of max and min"))
        for bound in (c.max, c.min):
            if bound is not None and not math.isfinite(bound):
                errors.append(FieldError(path, "the bound must be a finite number"))
        if c.metric_name not in spec.objective.metric_names:
            errors.append(
                FieldError(
                    f"{path}.metricName",
                    f"{c.metric_name!r} is not one of the experiment's metrics "
                    f"({', '.join(spec.objective.metric_names)}); list it in "
                    "spec.objective.additionalMetricNames",
                )
            )
    return errors


def _objectives_errors(spec: Any, objectives: list[ObjectiveEntry]) -> list[FieldError]:
    errors = []
    if len(objectives) < 2:
        errors.append(
            FieldError(
                "spec.objectives",
                "needs two or more objectives; for one, write spec.objective as Katib does",
            )
        )
    seen: set[str] = set()
    for i, o in enumerate(objectives):
        if o.objective_metric_name in seen:
            errors.append(
                FieldError(
                    f"spec.objectives[{i}].objectiveMetricName",
                    f"duplicate objective metric {o.objective_metric_name!r}",
                )
            )
        seen.add(o.objective_metric_name)
    data = {
        "objectives": [o.model_dump(by_alias=True, mode="json") for o in objectives],
        "additionalMetricNames": spec.additional_metric_names,
        "constraints": [c.model_dump(by_alias=True, mode="json") for c in spec.constraints or []],
    }
    derived = _derived(data)
    if (
        derived is not None
        and spec.objective.dump() != type(spec.objective).model_validate(derived).dump()
    ):
        errors.append(
            FieldError(
                "spec.objective",
                "give either spec.objective (one objective) or spec.objectives (several), not both",
            )
        )
    if spec.early_stopping is not None and len(objectives) >= 2:
        errors.append(
            FieldError(
                "spec.earlyStopping",
                "early stopping is not defined for several objectives (the rules compare one "
                "objective's curves); remove it or use spec.objective",
            )
        )
    return errors
