"""Search quality on real tasks: scikit-learn models on its bundled datasets, by cross-validated
score.

Tasks (datasets shipped inside scikit-learn, nothing downloaded; California housing is not, so it
is left out):

* ``digits-svc``: ``SVC`` on digits, ``C`` and ``gamma`` on log scales;
* ``cancer-rf``: ``RandomForestClassifier`` on breast cancer, three integer and one float parameter;
* ``digits-knn``: ``KNeighborsClassifier`` on digits, an integer, a categorical and a discrete
  parameter (so ``auto`` picks ``tpe``, its rule for list parameters).

The score of a configuration is the mean accuracy over the same 3 shuffled stratified folds
(``random_state=0``) for every algorithm and seed; it is maximised. A tuner algorithm (``auto``,
``tpe``, ``random``) runs in-process as an experiment's suggester (``create_suggester`` +
``suggest(history, 1)``, ``maxTrialCount`` = the budget, ``random_state`` = the seed); the
reference is Optuna's default ``TPESampler(seed=seed)`` on the same space. Early stopping is not
measured here (see BENCHMARKS.md).

Run: ``.venv/bin/python bench/quality/sklearn_tasks.py --jobs 2`` (results appended to
``bench/quality/results/sklearn.jsonl``, finished runs skipped, tables printed at the end).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]
from bench._common import OPTUNA_TPE, one_blas_thread, quiet_search_logs  # noqa: E402

one_blas_thread()

import optuna  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_score  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

from tuner.algorithms.registry import create_suggester  # noqa: E402
from tuner.space import (  # noqa: E402
    AlgorithmChoice,
    Direction,
    Objective,
    Parameter,
    ParameterKind,
    SearchSpace,
    Study,
)
from tuner.trials import ParamValue, Trial, TrialState  # noqa: E402

quiet_search_logs()

ALGORITHMS = ("auto", "tpe", "random", OPTUNA_TPE)
DEFAULT_RESULTS = Path(__file__).resolve().parent / "results" / "sklearn.jsonl"


@dataclass(frozen=True)
class Task:
    dataset: Callable[..., Any]
    model: Callable[[Mapping[str, ParamValue]], Any]
    space: tuple[Parameter, ...]


def _p(name: str, kind: ParameterKind, low: float, high: float, log: bool = False) -> Parameter:
    return Parameter(name, kind, low, high, log=log)


TASKS: dict[str, Task] = {
    "digits-svc": Task(
        load_digits,
        lambda p: SVC(C=p["C"], gamma=p["gamma"]),
        (
            _p("C", ParameterKind.DOUBLE, 1e-3, 1e3, log=True),
            _p("gamma", ParameterKind.DOUBLE, 1e-5, 1e-1, log=True),
        ),
    ),
    "cancer-rf": Task(
        load_breast_cancer,
        lambda p: RandomForestClassifier(
            n_estimators=p["n_estimators"],
            max_depth=p["max_depth"],
            min_samples_leaf=p["min_samples_leaf"],
            max_features=p["max_features"],
            random_state=0,
        ),
        (
            _p("n_estimators", ParameterKind.INT, 10, 100),
            _p("max_depth", ParameterKind.INT, 1, 12),
            _p("min_samples_leaf", ParameterKind.INT, 1, 20),
            _p("max_features", ParameterKind.DOUBLE, 0.05, 1.0),
        ),
    ),
    "digits-knn": Task(
        load_digits,
        lambda p: KNeighborsClassifier(
            n_neighbors=p["n_neighbors"], weights=p["weights"], p=p["p"]
        ),
        (
            _p("n_neighbors", ParameterKind.INT, 1, 40),
            Parameter("weights", ParameterKind.CATEGORICAL, choices=("uniform", "distance")),
            Parameter("p", ParameterKind.DISCRETE, choices=(1, 2)),
        ),
    ),
}


def score(task: Task, parameters: Mapping[str, ParamValue]) -> float:
    x, y = task.dataset(return_X_y=True)
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    return float(cross_val_score(task.model(parameters), x, y, cv=folds).mean())


def run_tuner(algorithm: str, task: Task, budget: int, seed: int) -> tuple[list[float], str]:
    study = Study(
        space=SearchSpace(task.space),
        objective=Objective("accuracy", Direction.MAXIMIZE),
        algorithm=AlgorithmChoice(algorithm, {"random_state": str(seed)}),
        parallel_trial_count=1,
        max_trial_count=budget,
    )
    suggester = create_suggester(study)
    chosen = str(getattr(suggester, "chosen", algorithm))
    history: list[Trial] = []
    for n in range(budget):
        (suggestion,) = suggester.suggest(history, 1)
        y = score(task, suggestion.parameters)
        history.append(
            Trial(
                name=f"t{n}",
                number=n,
                parameters=dict(suggestion.parameters),
                state=TrialState.SUCCEEDED,
                objective=y,
                metrics={"accuracy": y},
            )
        )
    return [float(t.objective or 0.0) for t in history], chosen


def run_optuna_tpe(task: Task, budget: int, seed: int) -> list[float]:
    s = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))

    def objective(trial: optuna.Trial) -> float:
        p: dict[str, ParamValue] = {}
        for q in task.space:
            if q.kind is ParameterKind.INT:
                p[q.name] = trial.suggest_int(q.name, int(q.low), int(q.high), log=q.log)
            elif q.kind is ParameterKind.DOUBLE:
                p[q.name] = trial.suggest_float(q.name, q.low, q.high, log=q.log)
            else:
                value = trial.suggest_categorical(q.name, list(q.choices))
                assert value is not None
                p[q.name] = value
        return score(task, p)

    s.optimize(objective, n_trials=budget)
    return [float(t.value) for t in s.trials if t.value is not None]


def work(job: tuple[str, str, int, int]) -> dict[str, Any]:
    algorithm, name, budget, seed = job
    start = time.perf_counter()
    if algorithm == OPTUNA_TPE:
        values, chosen = run_optuna_tpe(TASKS[name], budget, seed), OPTUNA_TPE
    else:
        values, chosen = run_tuner(algorithm, TASKS[name], budget, seed)
    best, curve = 0.0, []
    for v in values:
        best = max(best, v)
        curve.append(round(best, 5))
    return {
        "algorithm": algorithm,
        "task": name,
        "budget": budget,
        "seed": seed,
        "seconds": round(time.perf_counter() - start, 2),
        "chosen": chosen,
        "best": curve,
    }


def load(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def table(rows: list[dict[str, Any]], budget: int, checkpoints: list[int]) -> str:
    """Median best CV accuracy per task and algorithm after each checkpoint, and per-seed wins
    (better-worse/seeds) of each tuner algorithm against Optuna's TPE at the full budget."""
    rows = [r for r in rows if r["budget"] == budget]
    out = [
        f"| task | trials | {' | '.join(ALGORITHMS)} | vs {OPTUNA_TPE} at {budget} "
        f"({', '.join(ALGORITHMS[:-1])}) |",
        "|" + "---|" * (len(ALGORITHMS) + 3),
    ]
    for name in TASKS:
        mine = [r for r in rows if r["task"] == name]
        ends = {
            a: {r["seed"]: r["best"][-1] for r in mine if r["algorithm"] == a} for a in ALGORITHMS
        }
        ref = ends[OPTUNA_TPE]
        wins = []
        for a in ALGORITHMS[:-1]:
            common = set(ref) & set(ends[a])
            better = sum(ends[a][s] > ref[s] for s in common)
            worse = sum(ends[a][s] < ref[s] for s in common)
            wins.append(f"{better}-{worse}/{len(common)}")
        for c in [*checkpoints, budget]:
            cells = []
            for a in ALGORITHMS:
                got = [
                    r["best"][c - 1] for r in mine if r["algorithm"] == a and len(r["best"]) >= c
                ]
                cells.append(f"{statistics.median(got):.4f}" if got else "-")
            last = ", ".join(wins) if c == budget else ""
            out.append(f"| {name} | {c} | {' | '.join(cells)} | {last} |")
    chosen = sorted({f"{r['task']}: {r['chosen']}" for r in rows if r["algorithm"] == "auto"})
    out += ["", "auto chose: " + "; ".join(chosen) + "."]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algorithms", type=lambda s: s.split(","), default=list(ALGORITHMS))
    parser.add_argument("--tasks", type=lambda s: s.split(","), default=list(TASKS))
    parser.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument(
        "--checkpoints", type=lambda s: [int(v) for v in s.split(",")], default=[10]
    )
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    args = parser.parse_args()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["algorithm"], r["task"], r["budget"], r["seed"]) for r in load(args.results)}
    jobs = [
        (a, t, args.budget, s)
        for s in args.seeds
        for t in args.tasks
        for a in args.algorithms
        if (a, t, args.budget, s) not in done
    ]
    with Pool(max(1, args.jobs)) as pool, args.results.open("a") as out:
        for row in pool.imap_unordered(work, jobs):
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(
                f"{row['algorithm']} {row['task']} seed {row['seed']}: "
                f"{row['best'][-1]:.4f} in {row['seconds']:.1f}s",
                file=sys.stderr,
            )
    print(table(load(args.results), args.budget, [c for c in args.checkpoints if c < args.budget]))


if __name__ == "__main__":
    main()
