"""Which algorithms accept several objectives (cheap to import: no Optuna here)."""

from __future__ import annotations

from tuner.space import Study

__all__ = ["MULTI_OBJECTIVE", "MULTI_OBJECTIVE_ONLY", "multi_objective_problems"]

MULTI_OBJECTIVE = ("auto", "nsga2", "nsga3", "motpe", "random", "tpe", "multivariate-tpe")
"""The algorithms that accept two or more objectives (see :mod:`.multi_objective`)."""

MULTI_OBJECTIVE_ONLY = ("nsga2", "nsga3", "motpe")
"""The algorithms that need two or more objectives."""


def multi_objective_problems(name: str, study: Study) -> list[tuple[str, str]]:
    """Why ``name`` cannot run ``study``'s objectives, or ``[]``."""
    if study.multi_objective and name not in MULTI_OBJECTIVE:
        return [
            (
                "",
                f"{name} optimizes a single objective; with {len(study.objectives)} objectives "
                f"in spec.objectives use one of {', '.join(MULTI_OBJECTIVE)}",
            )
        ]
    if not study.multi_objective and name in MULTI_OBJECTIVE_ONLY:
        return [("", f"{name} needs two or more objectives in spec.objectives")]
    return []
