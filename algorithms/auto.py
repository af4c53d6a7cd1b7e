"""``auto``: the algorithm chosen for the experiment from its space, budget and objectives.

:func:`choose` is a pure function of the spec's :class:`~tuner.space.Study` (the same spec
always gets the same algorithm, on any machine: no installed package and no history is read).
The suggester built for ``auto`` is the chosen algorithm's, seeded with ``auto``'s
``random_state``; it logs the choice once and records it in every trial's attrs
(``algorithm``), and :func:`choose` gives it to the experiment's status.

The rule, measured on BBOB, ZDT and DTLZ by ``bench/quality`` (see BENCHMARKS.md):

* several objectives: ``motpe`` below :data:`NSGA2_BUDGET` trials, ``nsga2`` from there or
  without a budget;
* a space with a ``categorical`` or ``discrete`` parameter, or no ``maxTrialCount``: ``tpe``
  (it models list parameters; CMA-ES samples them at random);
* only ``int``/``double`` parameters and a budget: ``multivariate-tpe`` below
  :data:`CMAES_BUDGET` trials, ``cmaes`` from there (it needs generations to adapt its search
  distribution, and then converges faster than TPE).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tuner.algorithms.base import Suggester, Suggestion
from tuner.space import AlgorithmChoice, Study
from tuner.trials import Trial

__all__ = [
    "AUTO",
    "Choice",
    "choose",
    "create",
    "objective_count",
    "status",
    "validate_settings",
]

log = logging.getLogger(__name__)

AUTO = "auto"
CHOSEN_ATTR = "algorithm"
"""The trial attr that records the algorithm ``auto`` chose."""
SETTINGS = ("random_state",)
"""The settings ``auto`` takes; they are passed on to the chosen algorithm."""

CMAES_BUDGET = 200
NSGA2_BUDGET = 1000
"""The budget from which ``nsga2`` is chosen rather than ``motpe`` for several objectives: at
300 trials multi-objective TPE beat Optuna's NSGA-II on 27 of 29 ZDT/DTLZ seeds, while NSGA-II
(tuner's equals Optuna's) needs 1,000 to 2,000 trials to reach the same hypervolume; MOTPE's
cost per suggestion grows with the history, so beyond this the evolutionary search takes over."""
"""The budget (``maxTrialCount``) from which ``cmaes`` is chosen rather than
``multivariate-tpe`` for a space of numbers: with fewer trials CMA-ES has too few generations
to adapt its search distribution (on BBOB it lost to TPE at 100 trials in 5 dimensions and won
from 200 trials, in 2, 5 and 10 dimensions)."""


def objective_count(study: Study) -> int:
    """How many objectives the experiment optimises (``spec.objectives``, else one)."""
    return max(1, len(study.objectives))


@dataclass(frozen=True)
class Choice:
    """What ``auto`` runs, with which settings, and why (one sentence, for the log and the
    status). ``auto``'s own ``random_state`` is added to ``settings``."""

    algorithm: str
    reason: str
    settings: Mapping[str, str] = field(default_factory=dict)


def choose(study: Study) -> Choice:
    """The algorithm ``auto`` runs for ``study``: a pure function of the spec."""
    objectives = objective_count(study)
    if objectives > 1:
        budget = study.max_trial_count
        if budget is not None and budget < NSGA2_BUDGET:
            return Choice(
                "motpe",
                f"{objectives} objectives and fewer than {NSGA2_BUDGET} trials ({budget}): "
                "multi-objective TPE",
            )
        return Choice("nsga2", f"{objectives} objectives: NSGA-II searches for the Pareto front")
    lists = [p.name for p in study.space if not p.kind.numeric]
    if lists:
        return Choice(
            "tpe",
            f"categorical or discrete parameters ({', '.join(lists)}): TPE models list parameters",
        )
    budget = study.max_trial_count
    if budget is None:
        return Choice("tpe", "no maxTrialCount: TPE suits a budget of any size")
    if budget < CMAES_BUDGET:
        return Choice(
            "multivariate-tpe",
            f"only numeric parameters and fewer than {CMAES_BUDGET} trials ({budget}): "
            "multivariate TPE",
        )
    return Choice(
        "cmaes",
        f"only numeric parameters and at least {CMAES_BUDGET} trials ({budget}): CMA-ES",
    )


def _chosen_study(study: Study, settings: Mapping[str, str]) -> Study:
    choice = choose(study)
    passed = {**choice.settings, **{k: v for k, v in settings.items() if k in SETTINGS}}
    return dataclasses.replace(study, algorithm=AlgorithmChoice(choice.algorithm, passed))


def validate_settings(
    name: str, settings: Mapping[str, str], study: Study
) -> list[tuple[str, str]]:
    """Problems with ``auto``'s settings, and with the chosen algorithm on this space."""
    from tuner.algorithms.registry import validate_algorithm

    problems = [
        (k, f"not a setting of {AUTO} (it takes {', '.join(SETTINGS)})")
        for k in settings
        if k not in SETTINGS
    ]
    chosen = _chosen_study(study, settings)
    problems += validate_algorithm(chosen.algorithm.name, chosen.algorithm.settings, chosen)
    return problems


class AutoSuggester:
    """The chosen algorithm's suggester; each suggestion records the choice in its attrs."""

    def __init__(self, inner: Suggester, choice: Choice) -> None:
        self.inner = inner
        self.choice = choice

    @property
    def chosen(self) -> str:
        return self.choice.algorithm

    def suggest(self, history: Sequence[Trial], count: int) -> list[Suggestion]:
        return [
            Suggestion(s.parameters, {**s.attrs, CHOSEN_ATTR: self.chosen})
            for s in self.inner.suggest(history, count)
        ]


def create(name: str, settings: Mapping[str, str], study: Study) -> AutoSuggester:
    """The chosen algorithm's suggester, with ``auto``'s settings; logs the choice."""
    from tuner.algorithms.registry import create_suggester

    choice = choose(study)
    log.info("algorithm auto chose %s: %s", choice.algorithm, choice.reason)
    return AutoSuggester(create_suggester(_chosen_study(study, settings)), choice)


def status(study: Study) -> dict[str, str]:
    """What an ``auto`` experiment's status shows of the choice (``{}`` for other algorithms):
    ``{"algorithmName": "auto", "chosen": ..., "reason": ...}``."""
    if study.algorithm.name != AUTO:
        return {}
    choice = choose(study)
    return {"algorithmName": AUTO, "chosen": choice.algorithm, "reason": choice.reason}
