"""Multi-objective search quality: ZDT1, ZDT2, ZDT3 and DTLZ2 (pymoo) by hypervolume.

Each run is one algorithm on one problem with one seed and a budget of trials:

* a tuner algorithm (``nsga2``, ``motpe``, ``auto``) runs exactly as an experiment's suggester:
  ``create_suggester`` builds it from a :class:`~tuner.space.Study` with one ``minimize`` objective
  per problem objective (``spec.objectives``), the space ``x0..x{n-1}`` in ``[0, 1]``,
  ``maxTrialCount`` = the budget, ``parallelTrialCount`` 1 and ``random_state`` = the seed; each
  step is ``suggest(history, 1)`` and the evaluation is appended to ``history`` as a Succeeded
  trial carrying every objective in its metrics (the ask/tell path, no database or processes);
* the reference, ``optuna-nsga2``, is plain Optuna: ``NSGAIISampler(seed=seed)`` with its defaults
  (population 50, as tuner's ``nsga2``), the same floats, ``study.optimize``.

The score is the hypervolume of the non-dominated points found, at a reference point fixed per
problem (``REFERENCE``), after each of the ``--checkpoints`` trial counts, and that hypervolume
divided by the hypervolume of the problem's true Pareto front at the same point (1.0 = the true
front; pymoo's ``HV`` indicator for both). One JSON line per run goes to the results file, runs
already there are skipped (an interrupted run resumes), and the tables are printed at the end.

Run: ``.venv/bin/python bench/quality/multi_objective.py --jobs 2``. Needs ``pip install -e
'.[bench]'`` (pymoo).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from multiprocessing import Pool
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]
from bench._common import one_blas_thread, quiet_search_logs  # noqa: E402

one_blas_thread()

import numpy as np  # noqa: E402
import optuna  # noqa: E402
from pymoo.indicators.hv import HV  # noqa: E402
from pymoo.problems import get_problem  # noqa: E402

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
from tuner.trials import Trial, TrialState  # noqa: E402

quiet_search_logs()

OPTUNA_NSGA2 = "optuna-nsga2"
ALGORITHMS = ("nsga2", "motpe", "auto", OPTUNA_NSGA2)

PROBLEMS: dict[str, tuple[int, int]] = {
    "zdt1": (10, 2),
    "zdt2": (10, 2),
    "zdt3": (10, 2),
    "dtlz2": (7, 3),
}
"""name -> (variables, objectives)."""

REFERENCE: dict[str, tuple[float, ...]] = {
    "zdt1": (1.1, 1.1),
    "zdt2": (1.1, 1.1),
    "zdt3": (1.1, 1.1),
    "dtlz2": (1.1, 1.1, 1.1),
}
"""The hypervolume reference point of each problem: 1.1 x the nadir of the true front (1 in
every objective for these four), the usual choice; points outside it add nothing."""

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results" / "multi_objective.jsonl"


def true_hypervolume(name: str) -> float:
    """The true front's hypervolume at ``REFERENCE[name]`` (exact where a formula is simple)."""
    r = REFERENCE[name]
    if name == "zdt1":
        return r[0] * r[1] - 1.0 / 3.0  # the area under f2 = 1 - sqrt(f1) on [0, 1] is 1/3
    if name == "zdt2":
        return r[0] * r[1] - 2.0 / 3.0  # the area under f2 = 1 - f1^2 on [0, 1] is 2/3
    if name == "dtlz2":
        return r[0] * r[1] * r[2] - math.pi / 6.0  # the box minus an eighth of the unit ball
    # ZDT3's front is five disconnected arcs: pymoo's dense sample of them.
    front = get_problem(name, n_var=PROBLEMS[name][0]).pareto_front(n_points=5000)
    return float(HV(ref_point=np.asarray(r))(np.asarray(front)))


def hypervolume(name: str, points: Sequence[Sequence[float]]) -> float:
    ref = np.asarray(REFERENCE[name])
    inside = [p for p in points if all(v < ri for v, ri in zip(p, ref, strict=True))]
    if not inside:
        return 0.0
    return float(HV(ref_point=ref)(np.asarray(inside)))


def study(algorithm: str, name: str, budget: int, seed: int) -> Study:
    n_var, n_obj = PROBLEMS[name]
    objectives = tuple(Objective(f"f{i + 1}", Direction.MINIMIZE) for i in range(n_obj))
    return Study(
        space=SearchSpace(
            tuple(Parameter(f"x{i}", ParameterKind.DOUBLE, 0.0, 1.0) for i in range(n_var))
        ),
        objective=objectives[0],
        objectives=objectives,
        algorithm=AlgorithmChoice(algorithm, {"random_state": str(seed)}),
        parallel_trial_count=1,
        max_trial_count=budget,
    )


def run_tuner(algorithm: str, name: str, budget: int, seed: int) -> tuple[list[list[float]], str]:
    n_var, _ = PROBLEMS[name]
    problem = get_problem(name, n_var=n_var, **({"n_obj": 3} if name == "dtlz2" else {}))
    suggester = create_suggester(study(algorithm, name, budget, seed))
    chosen = str(getattr(suggester, "chosen", algorithm))
    history: list[Trial] = []
    values: list[list[float]] = []
    for n in range(budget):
        (suggestion,) = suggester.suggest(history, 1)
        x = np.asarray([float(suggestion.parameters[f"x{i}"]) for i in range(n_var)])
        f = [float(v) for v in problem.evaluate(x)]
        values.append(f)
        metrics = {f"f{i + 1}": v for i, v in enumerate(f)}
        history.append(
            Trial(
                name=f"t{n}",
                number=n,
                parameters=dict(suggestion.parameters),
                state=TrialState.SUCCEEDED,
                objective=f[0],
                metrics=metrics,
            )
        )
    return values, chosen


def run_optuna_nsga2(name: str, budget: int, seed: int) -> list[list[float]]:
    n_var, n_obj = PROBLEMS[name]
    problem = get_problem(name, n_var=n_var, **({"n_obj": 3} if name == "dtlz2" else {}))
    s = optuna.create_study(
        directions=["minimize"] * n_obj, sampler=optuna.samplers.NSGAIISampler(seed=seed)
    )

    def objective(trial: optuna.Trial) -> tuple[float, ...]:
        x = np.asarray([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(n_var)])
        return tuple(float(v) for v in problem.evaluate(x))

    s.optimize(objective, n_trials=budget)
    return [list(t.values) for t in s.trials if t.values is not None]


Task = tuple[str, str, int, int, tuple[int, ...]]  # algorithm, problem, budget, seed, checkpoints


def work(t: Task) -> dict[str, Any]:
    algorithm, name, budget, seed, checkpoints = t
    start = time.perf_counter()
    if algorithm == OPTUNA_NSGA2:
        values, chosen = run_optuna_nsga2(name, budget, seed), OPTUNA_NSGA2
    else:
        values, chosen = run_tuner(algorithm, name, budget, seed)
    seconds = time.perf_counter() - start
    return {
        "algorithm": algorithm,
        "problem": name,
        "budget": budget,
        "seed": seed,
        "seconds": round(seconds, 3),
        "chosen": chosen,
        "hv": {str(c): hypervolume(name, values[:c]) for c in checkpoints if c <= len(values)},
    }


def key(algorithm: str, name: str, budget: int, seed: int) -> str:
    return f"{algorithm}/{name}/{budget}/{seed}"


def load(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tasks(args: argparse.Namespace, done: set[str]) -> Iterator[Task]:
    checkpoints = tuple(sorted({c for c in args.checkpoints if c < args.budget} | {args.budget}))
    for seed in args.seeds:
        for name in args.problems:
            for algorithm in args.algorithms:
                if key(algorithm, name, args.budget, seed) not in done:
                    yield algorithm, name, args.budget, seed, checkpoints


def table(rows: list[dict[str, Any]], budget: int) -> str:
    """Median hypervolume (and its share of the true front's) per problem and algorithm, at each
    checkpoint, with the number of seeds each tuner algorithm beats Optuna's NSGA-II."""
    out = [
        f"| problem (ref) | trials | {' | '.join(ALGORITHMS)} | wins vs {OPTUNA_NSGA2} "
        f"({', '.join(ALGORITHMS[:-1])}) |",
        "|" + "---|" * (len(ALGORITHMS) + 3),
    ]
    rows = [r for r in rows if r["budget"] == budget]
    for name in PROBLEMS:
        true_hv = true_hypervolume(name)
        mine = [r for r in rows if r["problem"] == name]
        counts = sorted({int(c) for r in mine for c in r["hv"]})
        for c in counts:
            cells, by_seed = [], {}
            for algorithm in ALGORITHMS:
                hvs = {r["seed"]: r["hv"][str(c)] for r in mine if r["algorithm"] == algorithm}
                by_seed[algorithm] = hvs
                if not hvs:
                    cells.append("-")
                    continue
                m = statistics.median(hvs.values())
                cells.append(f"{m:.3f} ({m / true_hv:.2f})")
            ref = by_seed[OPTUNA_NSGA2]
            wins = []
            for algorithm in ALGORITHMS[:-1]:
                common = sorted(set(ref) & set(by_seed[algorithm]))
                better = sum(by_seed[algorithm][s] > ref[s] for s in common)
                worse = sum(by_seed[algorithm][s] < ref[s] for s in common)
                wins.append(f"{better}-{worse}/{len(common)}")
            ref_text = ",".join(f"{v:g}" for v in REFERENCE[name])
            out.append(f"| {name} ({ref_text}) | {c} | {' | '.join(cells)} | {', '.join(wins)} |")
    seconds = {
        a: statistics.median([r["seconds"] for r in rows if r["algorithm"] == a] or [0.0])
        for a in ALGORITHMS
    }
    out.append("")
    out.append(
        "Median seconds per run: " + ", ".join(f"{a} {s:.1f}" for a, s in seconds.items()) + "."
    )
    out.append(
        "True-front hypervolume: "
        + ", ".join(f"{n} {true_hypervolume(n):.4f}" for n in PROBLEMS)
        + "."
    )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algorithms", type=lambda s: s.split(","), default=list(ALGORITHMS))
    parser.add_argument("--problems", type=lambda s: s.split(","), default=list(PROBLEMS))
    parser.add_argument(
        "--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2, 3, 4]
    )
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument(
        "--checkpoints", type=lambda s: [int(v) for v in s.split(",")], default=[100]
    )
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    done = {key(r["algorithm"], r["problem"], r["budget"], r["seed"]) for r in load(args.results)}
    todo = [] if args.report_only else list(tasks(args, done))
    with Pool(max(1, args.jobs)) as pool, args.results.open("a") as out:
        for row in pool.imap_unordered(work, todo):
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(
                f"{row['algorithm']} {row['problem']} seed {row['seed']}: "
                f"hv {row['hv'][str(row['budget'])]:.3f} in {row['seconds']:.1f}s",
                file=sys.stderr,
            )
    print(table(load(args.results), args.budget))


if __name__ == "__main__":
    main()
