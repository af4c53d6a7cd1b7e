"""Spec builders and a tiny experiment loop shared by the algorithm tests."""

from __future__ import annotations

import importlib.util
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from tuner.algorithms.base import Suggester
from tuner.algorithms.multi_choice import MULTI_OBJECTIVE_ONLY
from tuner.algorithms.registry import algorithm_names, create_suggester
from tuner.spec import ExperimentSpec, load_spec
from tuner.trials import ParamValue, Trial, TrialState

ALGORITHMS = algorithm_names()
SAMPLING = [a for a in ALGORITHMS if a != "grid"]

# Settings that keep the model-based algorithms quick while still exercising their models.
FAST: dict[str, dict[str, str]] = {
    "tpe": {"n_startup_trials": "4"},
    "multivariate-tpe": {"n_startup_trials": "4"},
    "bayesianoptimization": {"n_initial_points": "3"},
    "gp": {"n_initial_points": "3"},
}

# The optional package each algorithm needs.
DEPENDENCY = {"cmaes": "cmaes", "bayesianoptimization": "skopt", "gp": "torch"}


def skip_without_dependency(algorithm: str) -> None:
    module = DEPENDENCY.get(algorithm)
    if module is not None and importlib.util.find_spec(module) is None:
        pytest.skip(f"{algorithm} needs {module}")


def param(name: str, type_: str, **space: Any) -> dict[str, Any]:
    return {"name": name, "parameterType": type_, "feasibleSpace": space}


CONTINUOUS = [
    param("x", "double", min="-5", max="5"),
    param("y", "double", min="-5", max="5"),
]

# Every kind of dimension: int with a step, log-scaled double, plain double, discrete,
# categorical. Grid needs a step on every double, and Optuna refuses a step on a log scale.
MIXED = [
    param("units", "int", min="8", max="64", step="8"),
    param("lr", "double", min="0.0001", max="0.1", distribution="logUniform"),
    param("dropout", "double", min="0", max="0.5"),
    param("batch", "discrete", list=["16", "32", "64.5"]),
    param("optimizer", "categorical", list=["sgd", "adam", "rmsprop"]),
]
MIXED_GRID = [
    param("units", "int", min="8", max="64", step="8"),
    param("lr", "double", min="0.001", max="0.1", step="0.033", distribution="logUniform"),
    param("dropout", "double", min="0", max="0.5", step="0.1"),
    param("batch", "discrete", list=["16", "32", "64.5"]),
    param("optimizer", "categorical", list=["sgd", "adam", "rmsprop"]),
]


# Hyperband needs a budget parameter (``resource_name``) and, as in Katib, a parallelTrialCount of
# at least eta**s_max. make_spec() (and so suggester()) adds both to any space for hyperband: an
# extra double parameter, whose first rung (27 configurations at budget 1) outlasts every loop of
# the contract suite, so the generic checks see fresh random draws as for the other samplers.
HYPERBAND_RESOURCE = param("budget", "double", min="1", max="27")
HYPERBAND_SETTINGS = {"resource_name": "budget", "r_l": "27", "eta": "3"}
HYPERBAND_PARALLEL = 27


def experiment(
    algorithm: str,
    parameters: Sequence[Mapping[str, Any]],
    settings: Mapping[str, str] | None = None,
    objective: str = "minimize",
    parallel: int = 3,
) -> dict[str, Any]:
    """A minimal Katib Experiment (no trial template: an ask/tell experiment).

    For the algorithms that need several objectives, ``loss`` comes with a second objective,
    ``loss2`` (see :func:`make_trial`).
    """
    data: dict[str, Any] = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "algorithm-test"},
        "spec": {
            "objective": {"type": objective, "objectiveMetricName": "loss"},
            "algorithm": {
                "algorithmName": algorithm,
                "algorithmSettings": [{"name": k, "value": v} for k, v in (settings or {}).items()],
            },
            "parameters": list(parameters),
            "maxTrialCount": 100,
            "parallelTrialCount": parallel,
        },
    }
    if algorithm in MULTI_OBJECTIVE_ONLY:
        del data["spec"]["objective"]
        data["spec"]["objectives"] = [
            {"type": objective, "objectiveMetricName": "loss"},
            {"type": "minimize", "objectiveMetricName": "loss2"},
        ]
    return data


# PBT's settings Katib requires (n_population at its minimum, 5).
PBT_SETTINGS = {
    "suggestion_trial_dir": "/var/log/katib/checkpoints/",
    "n_population": "5",
    "truncation_threshold": "0.2",
}


def make_spec(
    algorithm: str,
    parameters: Sequence[Mapping[str, Any]],
    settings: Mapping[str, str] | None = None,
    objective: str = "minimize",
) -> ExperimentSpec:
    parallel = 3
    if algorithm == "pbt":
        settings = {**PBT_SETTINGS, **(settings or {})}
    if algorithm == "hyperband":
        if all(p["name"] != HYPERBAND_RESOURCE["name"] for p in parameters):
            parameters = [*parameters, HYPERBAND_RESOURCE]
        settings = {**HYPERBAND_SETTINGS, **(settings or {})}
        parallel = HYPERBAND_PARALLEL
    return load_spec(experiment(algorithm, parameters, settings, objective, parallel)).spec


def suggester(
    algorithm: str,
    parameters: Sequence[Mapping[str, Any]],
    settings: Mapping[str, str] | None = None,
    objective: str = "minimize",
) -> Suggester:
    skip_without_dependency(algorithm)
    merged = {**FAST.get(algorithm, {}), **(settings or {})}
    return create_suggester(make_spec(algorithm, parameters, merged, objective))


def make_trial(
    number: int,
    parameters: dict[str, ParamValue],
    state: TrialState = TrialState.SUCCEEDED,
    objective: float | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> Trial:
    return Trial(
        name=f"trial-{number}",
        number=number,
        parameters=parameters,
        state=state,
        objective=objective,
        # A second objective for multi-objective studies, in conflict with the first.
        metrics={} if objective is None else {"loss": objective, "loss2": 1 / (1 + objective)},
        attrs=dict(attrs or {}),
    )


def quadratic(p: Mapping[str, ParamValue]) -> float:
    """A 2-D bowl with its minimum 0 at (1, -2)."""
    x, y = float(p["x"]), float(p["y"])
    return (x - 1.0) ** 2 + (y + 2.0) ** 2


def loss(p: Mapping[str, ParamValue]) -> float:
    """Any deterministic function of every parameter type, for spaces other than (x, y)."""
    return sum(zlib.crc32(f"{k}={v}".encode()) % 97 for k, v in sorted(p.items())) / 97.0


def run(
    s: Suggester,
    rounds: int,
    batch: int,
    objective: Callable[[Mapping[str, ParamValue]], float],
    history: list[Trial] | None = None,
) -> list[Trial]:
    """Ask ``batch`` suggestions per round and record each as a finished trial.

    The trials keep the suggestions' attrs, as the controller stores them.
    """
    history = [] if history is None else history
    for _ in range(rounds):
        for suggestion in s.suggest(history, batch):
            history.append(
                make_trial(
                    len(history),
                    suggestion.parameters,
                    objective=objective(suggestion.parameters),
                    attrs=suggestion.attrs,
                )
            )
    return history


def point(parameters: Mapping[str, ParamValue]) -> tuple[ParamValue, ...]:
    return tuple(parameters[k] for k in sorted(parameters))
