"""Tables of ``bench/quality/bbob.py``'s results, in Markdown, for BENCHMARKS.md.

A *cell* is (function, dimension, budget ``k * d``). An algorithm's score in a cell is the median,
over the instances, of ``log10(max(regret, 1e-8))`` where regret is ``f(best) - f*`` after the
budget. It *wins* a cell against a baseline when its score is lower, *loses* when higher, ties
otherwise (both at the 1e-8 floor, or equal). Two algorithms are compared on the instances both
ran (a subset run covers fewer). The sign test is scipy's two-sided
``binomtest(wins, wins + losses)``; ties are left out.

Run: ``.venv/bin/python bench/quality/report.py [--results FILE]``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from scipy.stats import binomtest

sys.path[:0] = [str(Path(__file__).resolve().parent)]

from bbob import DEFAULT_RESULTS, READS_BUDGET  # noqa: E402

FLOOR = 1e-8
Cell = tuple[int, int, int]  # function, dimension, k


def rows_of(paths: list[Path]) -> list[dict[str, Any]]:
    return [json.loads(line) for path in paths for line in path.read_text().splitlines()]


def load(
    rows: list[dict[str, Any]],
) -> tuple[dict[str, dict[Cell, dict[int, float]]], dict[str, list[float]]]:
    """Final regret per (algorithm, cell, instance), and seconds per trial per algorithm."""
    regrets: dict[str, dict[Cell, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    cost: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        alg, f, d, i = row["algorithm"], row["function"], row["dimension"], row["instance"]
        run = row["regrets"]
        cost[alg].append(row["seconds"] / len(run))
        for k in (20, 100):
            budget = k * d
            if alg in READS_BUDGET:
                if row["budget"] == budget:
                    regrets[alg][(f, d, k)][i] = run[-1]
            elif len(run) >= budget:
                regrets[alg][(f, d, k)][i] = run[budget - 1]
    return regrets, cost


def score(by_instance: dict[int, float], instances: set[int] | None = None) -> float:
    """The median log regret over ``instances`` (default: all the cell's instances)."""
    keys = by_instance.keys() if instances is None else instances
    return statistics.median(math.log10(max(by_instance[i], FLOOR)) for i in keys)


def compare(
    regrets: dict[str, dict[Cell, dict[int, float]]], alg: str, base: str, cells: list[Cell]
) -> tuple[int, int, int]:
    wins = ties = losses = 0
    for c in cells:
        shared = set(regrets[alg][c]) & set(regrets[base][c])
        a, b = score(regrets[alg][c], shared), score(regrets[base][c], shared)
        if math.isclose(a, b, abs_tol=1e-9):
            ties += 1
        elif a < b:
            wins += 1
        else:
            losses += 1
    return wins, ties, losses


def common_cells(regrets: dict[str, dict[Cell, dict[int, float]]], *algs: str) -> list[Cell]:
    """Cells where every algorithm ran an instance in common (compared on those instances)."""
    first = regrets[algs[0]]
    return sorted(
        c
        for c in first
        if all(c in regrets[a] and set(regrets[a][c]) & set(first[c]) for a in algs)
    )


def p_value(wins: int, losses: int) -> str:
    if wins + losses == 0:
        return "-"
    return f"{binomtest(wins, wins + losses).pvalue:.2g}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, nargs="+", default=[DEFAULT_RESULTS])
    args = p.parse_args()
    rows = rows_of(args.results)
    regrets, cost = load(rows)
    algorithms = [a for a in regrets if a not in ("random", "optuna-tpe")]
    print("| algorithm | budget | baseline | cells | wins | ties | losses | wins % | sign test p |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for alg in algorithms:
        for k in (20, 100):
            for base in ("random", "optuna-tpe"):
                cells = [c for c in common_cells(regrets, alg, base) if c[2] == k]
                if not cells:
                    continue
                w, t, lo = compare(regrets, alg, base, cells)
                print(
                    f"| {alg} | {k}·d | {base} | {len(cells)} | {w} | {t} | {lo} "
                    f"| {100 * w / len(cells):.0f}% | {p_value(w, lo)} |"
                )
    print()
    print("Per dimension, wins/ties/losses over the functions (instances compared):")
    print()
    print("| algorithm | d | budget | vs random | vs optuna-tpe | instances |")
    print("|---|---:|---|---|---|---|")
    for alg in algorithms:
        for d in sorted({c[1] for c in regrets[alg]}):
            for k in (20, 100):
                out, shared = [], set()
                for base in ("random", "optuna-tpe"):
                    cells = [c for c in common_cells(regrets, alg, base) if c[1:] == (d, k)]
                    wtl = compare(regrets, alg, base, cells)
                    out.append("/".join(map(str, wtl)) if cells else "-")
                    for c in cells:
                        shared |= set(regrets[alg][c]) & set(regrets[base][c])
                if out != ["-", "-"]:
                    used = ",".join(map(str, sorted(shared)))
                    print(f"| {alg} | {d} | {k}·d | {out[0]} | {out[1]} | {used} |")
    print()
    print("Median over functions of the cell score (median log10 regret), per dimension:")
    print()
    keys = sorted({(c[1], c[2]) for a in regrets for c in regrets[a]})
    print("| algorithm | " + " | ".join(f"d={d}, {k}·d" for d, k in keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for alg in sorted(regrets):
        row = []
        for d, k in keys:
            scores = [score(v) for c, v in regrets[alg].items() if c[1:] == (d, k)]
            row.append(f"{statistics.median(scores):.2f} ({len(scores)})" if scores else "-")
        print(f"| {alg} | " + " | ".join(row) + " |")
    print()
    print("| algorithm | runs | median ms per trial | max ms per trial |")
    print("|---|---:|---:|---:|")
    for alg in sorted(cost):
        ms = [1000 * s for s in cost[alg]]
        print(f"| {alg} | {len(ms)} | {statistics.median(ms):.1f} | {max(ms):.1f} |")
    chosen: Counter[tuple[int, int, str]] = Counter()
    for row in rows:
        if row["algorithm"] == "auto":
            chosen[(row["dimension"], row["budget"], row["chosen"])] += 1
    if chosen:
        print()
        print("auto chose: " + ", ".join(f"d={d} budget {b}: {a}" for d, b, a in sorted(chosen)))


if __name__ == "__main__":
    main()
