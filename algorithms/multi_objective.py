"""Several objectives and constraints in the Optuna-backed algorithms.

Algorithms for several objectives (``spec.objectives``), through Optuna:

* ``nsga2`` → ``NSGAIISampler``: ``random_state``, ``population_size`` (default 50),
  ``crossover_prob`` (default 0.9), ``swapping_prob`` (default 0.5);
* ``nsga3`` → ``NSGAIIISampler``: as ``nsga2``;
* ``motpe`` → ``TPESampler`` on the multi-objective study (as ``tpe``'s settings); ``tpe`` and
  ``multivariate-tpe`` work on several objectives too;
* ``random``.

Every other algorithm models one objective and is refused for two or more. NSGA-II/III keep each
trial's generation on its Optuna trial; it is also recorded in the trial's attrs
(``nsga.generation``), so a study rebuilt after a restart gives the stored trials their
generations back and the evolution goes on where it was.

Constraints (``spec.constraints``) reach the samplers as Optuna 5 expects them: each complete
trial's violations (``<= 0`` when a constraint holds) are stored in its system attributes under
``constraints:<metric>:<max|min>``, the keys ``Trial.set_constraint`` writes, and Optuna's TPE,
NSGA-II/III, GP and CMA-ES samplers read them from there (Optuna 5 deprecated
``constraints_func``, which only computed and stored these values after each trial). Other
samplers ignore constraints; the ranking still puts infeasible trials last.
"""

from __future__ import annotations

import math
from typing import Any

from optuna.samplers import BaseSampler, NSGAIIISampler, NSGAIISampler
from optuna.study import StudyDirection
from optuna.trial import TrialState as OptunaState

from tuner.algorithms.settings import Schema, Setting, at_least, open_interval
from tuner.constraints import violations
from tuner.space import Study
from tuner.trials import Trial

__all__ = [
    "CONSTRAINTS_KEY",
    "GENERATION_ATTR",
    "SCHEMAS",
    "constraint_attrs",
    "directions",
    "generation_attrs",
    "make_genetic_sampler",
    "outcome",
    "restored_generation",
]

CONSTRAINTS_KEY = "constraints"
"""The prefix of the system attributes in which Optuna's samplers read constraint values."""

GENERATION_ATTR = "nsga.generation"
"""The trial attr that records an NSGA-II/III trial's generation."""

_GENETIC_SAMPLERS: dict[str, type[NSGAIISampler] | type[NSGAIIISampler]] = {
    "nsga2": NSGAIISampler,
    "nsga3": NSGAIIISampler,
}

_PROBABILITY = open_interval(0.0, 1.0, "a number in the open interval (0, 1)")
_GENETIC = (
    Setting("random_state", at_least(0), description="seed of every draw"),
    Setting("population_size", at_least(2), 50, description="trials per generation"),
    Setting("crossover_prob", _PROBABILITY, 0.9, description="chance of a crossover"),
    Setting("swapping_prob", _PROBABILITY, 0.5, description="uniform crossover's swap chance"),
)
SCHEMAS = {"nsga2": Schema("nsga2", _GENETIC), "nsga3": Schema("nsga3", _GENETIC)}


def directions(study: Study) -> list[StudyDirection]:
    """The Optuna study's directions: one per objective."""
    objectives = study.objectives or (study.objective,)
    return [StudyDirection.MINIMIZE if o.minimize else StudyDirection.MAXIMIZE for o in objectives]


def constraint_attrs(study: Study, trial: Trial) -> dict[str, float]:
    """The system attributes that tell Optuna ``trial``'s constraint values."""
    return {
        f"{CONSTRAINTS_KEY}:{c.metric}:{'max' if c.max is not None else 'min'}": v
        for c, v in zip(study.constraints, violations(trial, study.constraints), strict=True)
    }


def outcome(trial: Trial, study: Study) -> tuple[OptunaState, list[float] | None, dict[str, float]]:
    """How Optuna sees a history trial: its state, its values (one per objective), and its
    constraint attributes (empty without constraints or unless complete)."""
    if not trial.state.finished:
        return OptunaState.RUNNING, None, {}
    if study.multi_objective:
        raw = [trial.metrics.get(o.metric) for o in study.objectives]
    else:
        raw = [trial.objective]
    if not trial.state.completed or any(v is None or not math.isfinite(v) for v in raw):
        return OptunaState.FAIL, None, {}
    values = [float(v) for v in raw if v is not None]
    return OptunaState.COMPLETE, values, constraint_attrs(study, trial)


def generation_attrs(algorithm: str, system_attrs: dict[str, Any]) -> dict[str, Any]:
    """The trial attrs recording the generation a genetic sampler gave an asked trial."""
    sampler = _GENETIC_SAMPLERS.get(algorithm)
    if sampler is None:
        return {}
    generation = system_attrs.get(sampler._get_generation_key())
    return {} if generation is None else {GENERATION_ATTR: generation}


def restored_generation(algorithm: str, trial: Trial) -> dict[str, Any]:
    """The system attribute giving a re-added trial its recorded generation back."""
    sampler = _GENETIC_SAMPLERS.get(algorithm)
    generation = trial.attrs.get(GENERATION_ATTR)
    if sampler is None or not isinstance(generation, int):
        return {}
    return {sampler._get_generation_key(): generation}


def make_genetic_sampler(
    algorithm: str,
    sampler_seed: int | None,
    *,
    population_size: int,
    crossover_prob: float,
    swapping_prob: float,
) -> BaseSampler:
    """``nsga2``'s or ``nsga3``'s sampler."""
    kwargs: dict[str, Any] = {
        "population_size": population_size,
        "crossover_prob": crossover_prob,
        "swapping_prob": swapping_prob,
        "seed": sampler_seed,
    }
    return _GENETIC_SAMPLERS[algorithm](**kwargs)
