"""tuner's domain values as Katib's Suggestion messages, and back.

Katib's messages carry every number as text. A trial's observation holds one value per metric,
taken under the spec's metric strategies, as tuner's :attr:`Trial.metrics` are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tuner.space import (
    AlgorithmChoice,
    Direction,
    Objective,
    Parameter,
    ParameterKind,
    SearchSpace,
    Study,
    parse_parameter,
)
from tuner.trials import ParamValue, Trial, TrialState

KINDS = {
    ParameterKind.DOUBLE: "DOUBLE",
    ParameterKind.INT: "INT",
    ParameterKind.DISCRETE: "DISCRETE",
    ParameterKind.CATEGORICAL: "CATEGORICAL",
}
DISTRIBUTIONS = {
    None: "DISTRIBUTION_UNSPECIFIED",
    "uniform": "UNIFORM",
    "logUniform": "LOG_UNIFORM",
    "normal": "NORMAL",
    "logNormal": "LOG_NORMAL",
}
CONDITIONS = {
    TrialState.CREATED: "CREATED",
    TrialState.RUNNING: "RUNNING",
    TrialState.SUCCEEDED: "SUCCEEDED",
    TrialState.KILLED: "KILLED",
    TrialState.FAILED: "FAILED",
    TrialState.METRICS_UNAVAILABLE: "METRICSUNAVAILABLE",
    TrialState.EARLY_STOPPED: "EARLYSTOPPED",
}


def text(value: ParamValue | float) -> str:
    """A parameter value as text: floats exactly (``repr``), anything else with ``str``."""
    return repr(value) if isinstance(value, float) else str(value)


def _bound(parameter: Parameter, value: float) -> str:
    return str(int(value)) if parameter.kind is ParameterKind.INT else repr(value)


def parameter_spec(m: Any, parameter: Parameter) -> Any:
    space = m.FeasibleSpace(distribution=DISTRIBUTIONS.get(parameter.distribution, "UNIFORM"))
    if parameter.kind.numeric:
        space.min = _bound(parameter, parameter.low)
        space.max = _bound(parameter, parameter.high)
        if parameter.step is not None:
            space.step = _bound(parameter, parameter.step)
    else:
        space.list.extend(str(c) for c in parameter.choices)
    return m.ParameterSpec(
        name=parameter.name, parameter_type=KINDS[parameter.kind], feasible_space=space
    )


def objective_spec(m: Any, objective: Objective) -> Any:
    spec = m.ObjectiveSpec(
        type="MINIMIZE" if objective.minimize else "MAXIMIZE",
        objective_metric_name=objective.metric,
        additional_metric_names=list(objective.additional_metrics),
    )
    if objective.goal is not None:
        spec.goal = objective.goal
    return spec


def experiment_message(
    m: Any,
    name: str,
    study: Study,
    settings: Mapping[str, str],
    max_trial_count: int = 0,
) -> Any:
    """Katib's ``Experiment`` of a study; ``settings`` are the algorithm settings to send."""
    algorithm = m.AlgorithmSpec(
        algorithm_name=study.algorithm.name,
        algorithm_settings=[m.AlgorithmSetting(name=k, value=v) for k, v in settings.items()],
    )
    spec = m.ExperimentSpec(
        parameter_specs=m.ExperimentSpec.ParameterSpecs(
            parameters=[parameter_spec(m, p) for p in study.space]
        ),
        objective=objective_spec(m, study.objective),
        algorithm=algorithm,
        parallel_trial_count=study.parallel_trial_count,
        max_trial_count=max_trial_count,
    )
    return m.Experiment(name=name, spec=spec)


def trial_message(m: Any, trial: Trial, objective: Any) -> Any:
    """Katib's ``Trial``: assignments, condition and the metrics' values, as text."""
    metrics = [
        m.Metric(name=k, value=repr(v)) for k, v in trial.metrics.items() if math.isfinite(v)
    ]
    if not metrics and trial.objective is not None and math.isfinite(trial.objective):
        metrics = [m.Metric(name=objective.objective_metric_name, value=repr(trial.objective))]
    return m.Trial(
        name=trial.name,
        spec=m.TrialSpec(
            objective=objective,
            parameter_assignments=m.TrialSpec.ParameterAssignments(
                assignments=[
                    m.ParameterAssignment(name=k, value=text(v))
                    for k, v in trial.parameters.items()
                ]
            ),
        ),
        status=m.TrialStatus(
            condition=CONDITIONS[trial.state],
            observation=m.Observation(metrics=metrics),
        ),
    )


# -- back: the messages a Suggestion service receives ---------------------------------------


def study_of_message(m: Any, experiment: Any) -> Study:
    """The :class:`Study` of a received ``Experiment``.

    Raises:
        ValueError: a parameter or the objective is not valid (with its field).
    """
    spec = experiment.spec
    parameters = []
    names = {v: k for k, v in KINDS.items()}
    distributions = {v: k for k, v in DISTRIBUTIONS.items()}
    for i, p in enumerate(spec.parameter_specs.parameters):
        kind = names.get(m.ParameterType.Name(p.parameter_type))
        if kind is None:
            raise ValueError(f"spec.parameter_specs.parameters[{i}].parameter_type: unknown")
        fs = p.feasible_space
        dist = distributions.get(m.Distribution.Name(fs.distribution))
        parameters.append(
            parse_parameter(
                p.name,
                kind,
                minimum=fs.min or None,
                maximum=fs.max or None,
                step=fs.step or None,
                values=list(fs.list) or None,
                distribution=dist,
            )
        )
    objective = spec.objective
    if not objective.objective_metric_name:
        raise ValueError("spec.objective.objective_metric_name: must be set")
    directions = {"MINIMIZE": Direction.MINIMIZE, "MAXIMIZE": Direction.MAXIMIZE}
    direction = directions.get(m.ObjectiveType.Name(objective.type))
    if direction is None:
        raise ValueError("spec.objective.type: must be MINIMIZE or MAXIMIZE")
    return Study(
        space=SearchSpace(tuple(parameters)),
        objective=Objective(
            metric=objective.objective_metric_name,
            direction=direction,
            goal=None,  # proto3 cannot tell 0 from unset; algorithms never read it
            additional_metrics=tuple(objective.additional_metric_names),
        ),
        algorithm=AlgorithmChoice(
            spec.algorithm.algorithm_name,
            {s.name: s.value for s in spec.algorithm.algorithm_settings},
        ),
        parallel_trial_count=max(1, spec.parallel_trial_count),
    )


def trials_of_message(m: Any, study: Study, trials: Sequence[Any]) -> list[Trial]:
    """The history of a received request, as tuner's trials (numbered in order)."""
    states = {v: k for k, v in CONDITIONS.items()}
    out = []
    for number, t in enumerate(trials):
        condition = m.TrialStatus.TrialConditionType.Name(t.status.condition)
        state = states.get(condition, TrialState.FAILED)
        values = {a.name: a.value for a in t.spec.parameter_assignments.assignments}
        metrics = {}
        for metric in t.status.observation.metrics:
            try:
                metrics[metric.name] = float(metric.value)
            except ValueError:
                continue  # Katib's "unavailable"
        objective = metrics.get(study.objective.metric)
        if objective is None and state.completed:
            state = TrialState.METRICS_UNAVAILABLE
        out.append(
            Trial(
                name=t.name or f"trial-{number}",
                number=number,
                parameters=study.space.convert(values),
                state=state,
                objective=objective,
                metrics=metrics,
            )
        )
    return out
