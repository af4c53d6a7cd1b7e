"""Search quality on BBOB (through ``ioh``): runs every (algorithm, function, dimension, instance,
budget) and appends one JSON line per run to a results file; ``bench/quality/report.py`` makes
the tables.

Budgets are ``k * d`` trials for each ``k`` of ``--budgets`` (20 and 100). An algorithm that does
not read the budget (all but ``auto``) runs once at the largest budget, and its smaller budgets
are the prefixes of that run (the same suggestions it would have made with the smaller budget:
the suggesters never read ``maxTrialCount``). ``auto`` reads the budget, so it runs once per
budget. The seed of a run is the instance number, the same for every algorithm.

Runs already in the results file are skipped, so an interrupted run resumes.

Run: ``.venv/bin/python bench/quality/bbob.py --jobs 2`` (see ``--help`` for subsets), then
``.venv/bin/python bench/quality/report.py`` for the tables. Needs ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from multiprocessing import Pool
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]
from bench._common import one_blas_thread  # noqa: E402

one_blas_thread()

import runners  # noqa: E402

READS_BUDGET = {"auto"}
"""Algorithms whose suggestions depend on ``maxTrialCount``: one run per budget."""

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results" / "bbob.jsonl"

Task = tuple[str, int, int, int, int]  # algorithm, function, dimension, instance, budget


def _ints(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def tasks(args: argparse.Namespace) -> Iterator[Task]:
    for algorithm in args.algorithms.split(","):
        for d in args.dims:
            budgets = [k * d for k in args.budgets]
            if algorithm not in READS_BUDGET:
                budgets = [max(budgets)]
            for budget in budgets:
                for f in args.functions:
                    for i in args.instances:
                        yield algorithm, f, d, i, budget


def key(t: Task) -> str:
    return "/".join(map(str, t))


def work(t: Task) -> dict[str, Any]:
    algorithm, f, d, i, budget = t
    r = runners.run(algorithm, f, d, i, budget)
    return {
        "algorithm": algorithm,
        "function": f,
        "dimension": d,
        "instance": i,
        "budget": budget,
        "seconds": round(r.seconds, 3),
        "chosen": r.chosen,
        "regrets": [float(f"{v:.6g}") for v in r.regrets],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algorithms", default="random,tpe,cmaes,optuna-tpe,auto")
    p.add_argument("--functions", type=_ints, default=_ints("1-24"))
    p.add_argument("--dims", type=_ints, default=[2, 5, 10])
    p.add_argument("--instances", type=_ints, default=_ints("1-5"))
    p.add_argument("--budgets", type=_ints, default=[20, 100], help="multiples of d")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    args = p.parse_args()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if args.results.exists():
        for line in args.results.read_text().splitlines():
            row = json.loads(line)
            done.add(
                key(
                    (
                        row["algorithm"],
                        row["function"],
                        row["dimension"],
                        row["instance"],
                        row["budget"],
                    )
                )
            )
    todo = [t for t in tasks(args) if key(t) not in done]
    print(f"{len(todo)} runs to do ({len(done)} already in {args.results})", flush=True)
    start = time.perf_counter()
    with Pool(args.jobs) as pool, args.results.open("a") as out:
        for n, row in enumerate(pool.imap_unordered(work, todo), 1):
            out.write(json.dumps(row) + "\n")
            out.flush()
            if n % 50 == 0 or n == len(todo):
                print(f"{n}/{len(todo)} {time.perf_counter() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
