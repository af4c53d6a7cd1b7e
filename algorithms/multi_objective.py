"""Several objectives and constraints in the Optuna-backed algorithms.

Algorithms for several objectives (``spec.objectives``), through Optuna:

* ``nsga2`` → ``NSGAIISampler``: ``random_state``, ``population_size`` (default 50),
  ``crossover_prob`` (default 0.9), ``swapping_prob`` (default 0.5);
* ``nsga3`` → ``NSGAIIISampler``: as ``nsga2``;
* ``motpe`` → ``TPESampler`` on the multi-objective study (as ``tpe``'s settings); ``tpe`` and
  ``multivariate-tpe`` work on several objectives too;
* ``random``.

Every other algorithm models one objective and is refused for two or more. NSGA-II/III keep their
generations on the Optuna trials of the in-memory study: after a restart they start a new first
generation (from random draws), as CMA-ES starts a new search distribution.

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
    "SCHEMAS",
    "constraint_attrs",
    "directions",
    "make_genetic_sampler",
    "outcome",
]

CONSTRAINTS_KEY = "constraints"
"""The prefix of the system attributes in which Optuna's samplers read constraint values."""

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
    if algorithm == "nsga2":
        return NSGAIISampler(**kwargs)
    return NSGAIIISampler(**kwargs)
