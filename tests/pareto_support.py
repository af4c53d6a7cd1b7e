"""A multi-objective spec for the tests, and the non-dominated set computed the plain way."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from tests.helpers import DATA, experiment_dict
from tuner.templates import job_trial_template

OBJECTIVES = [
    {"objectiveMetricName": "f1", "type": "minimize"},
    {"objectiveMetricName": "f2", "type": "minimize"},
]


def two_objective_dict(
    name: str,
    algorithm: str = "nsga2",
    settings: Mapping[str, str] | None = None,
    trials: int = 12,
    **extra: Any,
) -> dict[str, Any]:
    """Trials run tests/data/two_objectives.py on a 5 x 3 grid of points (so some repeat)."""
    extra = {"objectives": OBJECTIVES, **extra}
    data = experiment_dict(
        name,
        algorithm={
            "algorithmName": algorithm,
            "algorithmSettings": [
                {"name": k, "value": v} for k, v in (settings or {"random_state": "7"}).items()
            ],
        },
        parameters=[
            {
                "name": "x",
                "parameterType": "double",
                "feasibleSpace": {"min": "0", "max": "1", "step": "0.25"},
            },
            {
                "name": "y",
                "parameterType": "double",
                "feasibleSpace": {"min": "0", "max": "1", "step": "0.5"},
            },
        ],
        trialTemplate=job_trial_template(
            [
                sys.executable,
                str(DATA / "two_objectives.py"),
                "--x=${trialParameters.x}",
                "--y=${trialParameters.y}",
            ],
            ["x", "y"],
        ),
        maxTrialCount=trials,
        parallelTrialCount=2,
        **extra,
    )
    del data["spec"]["objective"]
    return data


def non_dominated(
    rows: Sequence[Mapping[str, Any]],
    objectives: Sequence[Mapping[str, str]] = OBJECTIVES,
    constraints: Sequence[Mapping[str, Any]] = (),
) -> set[str]:
    """The names of the rows (trials as the API lists them) no other row dominates.

    Written apart from tuner.pareto, on purpose: pairwise comparisons, signs by direction.
    """

    def usable(row: Mapping[str, Any]) -> bool:
        if row["status"] not in ("Succeeded", "EarlyStopped"):
            return False
        metrics = row["metrics"]
        for c in constraints:
            v = metrics.get(c["metricName"])
            if not isinstance(v, float | int):
                return False
            if ("max" in c and v > c["max"]) or ("min" in c and v < c["min"]):
                return False
        return all(
            isinstance(metrics.get(o["objectiveMetricName"]), float | int)
            and math.isfinite(metrics[o["objectiveMetricName"]])
            for o in objectives
        )

    def loss(row: Mapping[str, Any]) -> list[float]:
        sign = {"minimize": 1.0, "maximize": -1.0}
        return [sign[o["type"]] * row["metrics"][o["objectiveMetricName"]] for o in objectives]

    pool = [r for r in rows if usable(r)]
    front = set()
    for a in pool:
        beaten = False
        for b in pool:
            la, lb = loss(a), loss(b)
            if all(y <= x for x, y in zip(la, lb, strict=True)) and la != lb:
                beaten = True
                break
        if not beaten:
            front.add(a["trial"])
    return front
