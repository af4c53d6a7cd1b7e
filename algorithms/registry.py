"""Algorithms by Katib ``algorithmName``.

Importing this module is cheap: each entry names its module, which is imported (with optuna)
only when a suggester is built or its settings validated.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from tuner.algorithms.multi_choice import multi_objective_problems
from tuner.space import HasStudy, Study, study_of

if TYPE_CHECKING:
    from tuner.algorithms.base import Suggester


class AlgorithmModule(Protocol):
    def validate_settings(
        self, name: str, settings: Mapping[str, str], study: Study
    ) -> list[tuple[str, str]]: ...

    def create(self, name: str, settings: Mapping[str, str], study: Study) -> Suggester: ...


# algorithmName -> module implementing validate_settings() and create()
_ALGORITHMS: dict[str, str] = {
    "auto": "tuner.algorithms.auto",
    "random": "tuner.algorithms.optuna_samplers",
    "tpe": "tuner.algorithms.optuna_samplers",
    "multivariate-tpe": "tuner.algorithms.optuna_samplers",
    "cmaes": "tuner.algorithms.optuna_samplers",
    "sobol": "tuner.algorithms.optuna_samplers",
    "bayesianoptimization": "tuner.algorithms.optuna_samplers",
    "gp": "tuner.algorithms.optuna_samplers",
    "grid": "tuner.algorithms.grid",
    "hyperband": "tuner.algorithms.hyperband",
    "pbt": "tuner.algorithms.pbt",
    "nsga2": "tuner.algorithms.optuna_samplers",
    "nsga3": "tuner.algorithms.optuna_samplers",
    "motpe": "tuner.algorithms.optuna_samplers",
}


# An algorithm of any name served by a Katib Suggestion service (algorithm setting
# suggestionServiceAddress, see tuner.katib_grpc.remote), or named in this process's table
# (`tuner serve --suggestion-service NAME=HOST:PORT`), which takes precedence over _ALGORITHMS.
SERVICE_SETTING = "suggestionServiceAddress"
_SERVED = "tuner.katib_grpc.remote"
_SERVICES: dict[str, str] = {}


def use_suggestion_service(name: str, address: str) -> None:
    """Serve ``algorithmName: name`` from the Katib Suggestion service at ``address`` (this
    process only: a spec submitted here gets the address written into its settings)."""
    _SERVICES[name] = address


def service_settings(name: str, settings: Mapping[str, str]) -> Mapping[str, str]:
    """``settings``, with the address of the service that serves ``name`` if the table has one
    and they do not name one themselves."""
    if name in _SERVICES and SERVICE_SETTING not in settings:
        return {**settings, SERVICE_SETTING: _SERVICES[name]}
    return settings


# Katib's neural architecture search algorithms: refused, with the reason.
NAS_ALGORITHMS = ("enas", "darts")
NAS_REFUSAL = "NAS is not supported by tuner"


def algorithm_names() -> list[str]:
    return sorted(_ALGORITHMS)


def _module(name: str, settings: Mapping[str, str]) -> AlgorithmModule:
    path = _SERVED if SERVICE_SETTING in settings else _ALGORITHMS[name]
    module: AlgorithmModule = importlib.import_module(path)
    return module


def validate_algorithm(
    name: str, settings: Mapping[str, str], study: Study | HasStudy
) -> list[tuple[str, str]]:
    """Problems with an algorithm choice: ``[(setting name or "", message)]``."""
    settings = service_settings(name, settings)
    if SERVICE_SETTING in settings:
        return _module(name, settings).validate_settings(name, settings, study_of(study))
    if name in NAS_ALGORITHMS:
        return [
            (
                "",
                f"{NAS_REFUSAL}: {name!r} is one of Katib's neural architecture search "
                "algorithms (with spec.nasConfig); tuner tunes the hyperparameters of "
                f"spec.parameters with {', '.join(algorithm_names())}",
            )
        ]
    if name not in _ALGORITHMS:
        return [("", f"unknown algorithm {name!r}; known: {', '.join(algorithm_names())}")]
    problems = multi_objective_problems(name, study_of(study))
    return problems or _module(name, settings).validate_settings(name, settings, study_of(study))


def create_suggester(source: Study | HasStudy) -> Suggester:
    """Build the suggester a study (or a validated spec, through its ``study``) asks for.

    Raises:
        ValueError: the algorithm's settings are not valid.
    """
    study = study_of(source)
    name = study.algorithm.name
    settings = service_settings(name, study.algorithm.settings)
    return _module(name, settings).create(name, settings, study)
