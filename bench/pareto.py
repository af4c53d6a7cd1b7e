"""The Pareto front and the hypervolume history, against Optuna's own code on the same trials.

Trials: ``N`` finished trials with ``K`` objectives (minimized), values drawn at random from a
grid of 50 levels per objective (so ties and duplicates occur), seed 0. Timed
(``time.perf_counter``, best of 3):

* front: :func:`tuner.pareto.pareto_front` vs Optuna's
  ``optuna.study._multi_objective._get_pareto_front_trials_by_trials`` (what
  ``Study.best_trials`` runs) on the same trials as ``FrozenTrial``s; both answers are checked
  to be the same set;
* hypervolume history: :func:`tuner.pareto.hypervolume_history` vs recomputing
  ``optuna._hypervolume.compute_hypervolume`` over every prefix of the trials (what a plot of
  the hypervolume after each trial needs without the incremental front); the last values are
  checked to agree. The recomputation runs only up to 2000 trials.

Run: ``.venv/bin/python bench/pareto.py``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
from optuna._hypervolume import compute_hypervolume
from optuna.distributions import FloatDistribution
from optuna.study import StudyDirection
from optuna.study._multi_objective import _get_pareto_front_trials_by_trials

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tuner.pareto import hypervolume_history, pareto_front
from tuner.space import Objective
from tuner.trials import Trial, TrialState


def best_of(runs: int, call: Callable[[], object]) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        out = call()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    print(f"optuna {optuna.__version__}, numpy {np.__version__}")
    print("| N | K | front size | tuner front (ms) | optuna front (ms) | optuna / tuner "
          "| tuner HV history (ms) | HV per prefix (ms) | per prefix / tuner |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for k in (2, 3):
        for n in (500, 2000, 10000):
            values = rng.integers(0, 50, size=(n, k)).astype(float) / 50
            names = [f"m{i}" for i in range(k)]
            objectives = tuple(Objective(m) for m in names)
            trials = [
                Trial(
                    f"t{i}", i, {}, TrialState.SUCCEEDED, metrics=dict(zip(names, row, strict=True))
                )
                for i, row in enumerate(values)
            ]
            frozen = [
                optuna.trial.create_trial(
                    values=list(row),
                    params={"x": 0.0},
                    distributions={"x": FloatDistribution(0, 1)},
                )
                for row in values
            ]
            for i, f in enumerate(frozen):
                f.number = i
            ours_s, ours = best_of(3, lambda t=trials, o=objectives: pareto_front(t, o))
            directions = [StudyDirection.MINIMIZE] * k
            theirs_s, theirs = best_of(
                3, lambda f=frozen, d=directions: _get_pareto_front_trials_by_trials(f, d)
            )
            assert {t.number for t in ours} == {t.number for t in theirs}  # type: ignore[attr-defined]
            hv_s, (history, reference) = best_of(
                3, lambda t=trials, o=objectives: hypervolume_history(t, o)
            )
            naive = "-"
            ratio = "-"
            if n <= 2000:
                ref = np.array(reference)
                naive_s, last = best_of(
                    1,
                    lambda v=values, r=ref, m=n: [
                        compute_hypervolume(v[: i + 1], r) for i in range(m)
                    ][-1],
                )
                assert abs(last - history[-1][1]) < 1e-9 * max(1.0, last)
                naive, ratio = f"{naive_s * 1000:.0f}", f"{naive_s / hv_s:.0f}x"
            print(
                f"| {n} | {k} | {len(ours)} | {ours_s * 1000:.1f} | {theirs_s * 1000:.1f} "
                f"| {theirs_s / ours_s:.1f}x | {hv_s * 1000:.1f} | {naive} | {ratio} |"
            )


if __name__ == "__main__":
    main()
