"""One BBOB run: a tuner algorithm in-process, or Optuna's TPE, on one ``ioh`` problem.

A tuner algorithm runs exactly as an experiment's suggester: ``create_suggester`` builds it
from a spec's :class:`~tuner.space.Study` (space ``x0..x{d-1}`` in ``[-5, 5]``, minimise,
``maxTrialCount`` = the budget, ``parallelTrialCount`` 1, ``random_state`` = the seed), and each
step is ``suggest(history, 1)`` followed by the evaluation appended to ``history`` as a
Succeeded trial (the ask/tell path without a database or trial processes).

The reference is plain Optuna: ``TPESampler(seed=seed)`` with Optuna's defaults, the same
``[-5, 5]`` floats, ``study.optimize``.

Both return the best-so-far regret ``f(x) - f*`` after every evaluation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import ioh
import optuna

from bench._common import OPTUNA_TPE, quiet_search_logs
from tuner.algorithms.registry import create_suggester
from tuner.space import (
    AlgorithmChoice,
    Direction,
    Objective,
    Parameter,
    ParameterKind,
    SearchSpace,
    Study,
)
from tuner.trials import Trial, TrialState

quiet_search_logs()


@dataclass(frozen=True)
class Run:
    """The outcome of one run.

    Attributes:
        regrets: best-so-far ``f(x) - f*`` after each evaluation.
        seconds: wall time of the run.
        chosen: what ``auto`` chose (else the algorithm itself).
    """

    regrets: list[float]
    seconds: float
    chosen: str


def problem(function: int, dimension: int, instance: int) -> ioh.problem.RealSingleObjective:
    return ioh.get_problem(
        function, instance=instance, dimension=dimension, problem_class=ioh.ProblemClass.BBOB
    )


def study(algorithm: str, dimension: int, budget: int, seed: int) -> Study:
    """The study of an experiment tuning ``x0..x{d-1}`` in ``[-5, 5]`` with ``algorithm``."""
    space = SearchSpace(
        tuple(Parameter(f"x{i}", ParameterKind.DOUBLE, -5.0, 5.0) for i in range(dimension))
    )
    return Study(
        space=space,
        objective=Objective("f", Direction.MINIMIZE),
        algorithm=AlgorithmChoice(algorithm, {"random_state": str(seed)}),
        parallel_trial_count=1,
        max_trial_count=budget,
    )


def _best_so_far(values: list[float], optimum: float) -> list[float]:
    out, best = [], float("inf")
    for v in values:
        best = min(best, v - optimum)
        out.append(best)
    return out


def run_tuner(
    algorithm: str, function: int, dimension: int, instance: int, budget: int, seed: int
) -> Run:
    """``budget`` suggestions of tuner's ``algorithm`` on one problem."""
    f = problem(function, dimension, instance)
    s = study(algorithm, dimension, budget, seed)
    start = time.perf_counter()
    suggester = create_suggester(s)
    chosen = str(getattr(suggester, "chosen", algorithm))
    history: list[Trial] = []
    values: list[float] = []
    for n in range(budget):
        (suggestion,) = suggester.suggest(history, 1)
        x = [float(suggestion.parameters[f"x{i}"]) for i in range(dimension)]
        y = float(f(x))
        values.append(y)
        history.append(
            Trial(
                name=f"t{n}",
                number=n,
                parameters=dict(suggestion.parameters),
                state=TrialState.SUCCEEDED,
                objective=y,
                metrics={"f": y},
            )
        )
    seconds = time.perf_counter() - start
    return Run(_best_so_far(values, f.optimum.y), seconds, chosen)


def run_optuna_tpe(function: int, dimension: int, instance: int, budget: int, seed: int) -> Run:
    """``budget`` trials of Optuna's default ``TPESampler(seed=seed)`` on one problem."""
    f = problem(function, dimension, instance)
    start = time.perf_counter()
    optuna_study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))

    def objective(trial: optuna.Trial) -> float:
        return float(f([trial.suggest_float(f"x{i}", -5.0, 5.0) for i in range(dimension)]))

    optuna_study.optimize(objective, n_trials=budget)
    values = [float(t.value) for t in optuna_study.trials if t.value is not None]
    seconds = time.perf_counter() - start
    return Run(_best_so_far(values, f.optimum.y), seconds, OPTUNA_TPE)


def run(algorithm: str, function: int, dimension: int, instance: int, budget: int) -> Run:
    """One run; the seed is the instance number, the same for every algorithm."""
    if algorithm == OPTUNA_TPE:
        return run_optuna_tpe(function, dimension, instance, budget, seed=instance)
    return run_tuner(algorithm, function, dimension, instance, budget, seed=instance)
