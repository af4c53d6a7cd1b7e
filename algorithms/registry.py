"""Algorithms by Katib ``algorithmName``.

Importing this module is cheap: each entry names its module, which is imported (with optuna)
only when a suggester is built or its settings validated.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tuner.algorithms.base import Suggester
    from tuner.spec import ExperimentSpec


class AlgorithmModule(Protocol):
    def validate_settings(
        self, name: str, settings: Mapping[str, str], spec: ExperimentSpec
    ) -> list[tuple[str, str]]: ...

    def create(self, name: str, settings: Mapping[str, str], spec: ExperimentSpec) -> Suggester: ...


# algorithmName -> module implementing validate_settings() and create()
_ALGORITHMS: dict[str, str] = {
    "random": "tuner.algorithms.optuna_samplers",
    "tpe": "tuner.algorithms.optuna_samplers",
    "multivariate-tpe": "tuner.algorithms.optuna_samplers",
    "cmaes": "tuner.algorithms.optuna_samplers",
    "sobol": "tuner.algorithms.optuna_samplers",
    "bayesianoptimization": "tuner.algorithms.optuna_samplers",
    "grid": "tuner.algorithms.grid",
    "hyperband": "tuner.algorithms.hyperband",
}


def algorithm_names() -> list[str]:
    return sorted(_ALGORITHMS)


def _module(name: str) -> AlgorithmModule:
    module: AlgorithmModule = importlib.import_module(_ALGORITHMS[name])
    return module


def validate_algorithm(
    name: str, settings: Mapping[str, str], spec: ExperimentSpec
) -> list[tuple[str, str]]:
    """Problems with an algorithm choice: ``[(setting name or "", message)]``."""
    if name not in _ALGORITHMS:
        return [("", f"unknown algorithm {name!r}; known: {', '.join(algorithm_names())}")]
    return _module(name).validate_settings(name, settings, spec)


def create_suggester(spec: ExperimentSpec) -> Suggester:
    """Build the suggester a (validated) spec asks for."""
    name = spec.algorithm.algorithm_name
    return _module(name).create(name, spec.algorithm.settings, spec)
