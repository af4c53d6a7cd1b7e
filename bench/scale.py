"""Scale: the table of issue 15 in one command, each row beside a baseline source tree.

Rows (``bench/scale_k8s.py`` and ``bench/scale_local.py`` say how each is measured):

* ``wide``: one experiment of N concurrent trials on the real control plane with the process
  kubelet's fast mode (N = 1,000; ``--quick`` 200): suggestion -> Job created p99, Job
  completion -> trial stored p99, trials running at once, service RSS at the most running,
  its threads and its TCP connections to the apiserver (watches, log streams, pooled requests);
* ``many``: 100 experiments x 20 concurrent trials (``--quick`` 10 x 20), the same measures;
* ``cpu``: a 10,000-trial experiment (``--quick`` 2,000) with StdOut metrics and
  ``medianstop``, on the LOCAL runner (5 ``loss=`` lines per trial; the k8s one is too slow
  for 10,000 trials on 2 shared cores): the controller's CPU per trial, first vs last 1,000;
* ``local``: ``tuner run`` of 1,000 trivial trials at parallelism 8 vs ``xargs -P 8``
  (``--quick`` 200).

``--baseline DIR`` runs every row a second time with ``DIR`` as the source tree (for example
the commit before issue 15: ``git archive 6bd7f5d | tar -x -C /tmp/base``), so the table
sets the current design beside this one. Results go to ``--out`` (JSON, one entry per row and
tree, kept across runs: ``--rows`` reruns some), and the table is printed from it.

Run: ``.venv/bin/python bench/scale.py [--quick] [--baseline DIR] [--rows wide,many,cpu,local]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import machine, markdown_table, mean  # noqa: E402
from bench.scale_local import controller_cpu, trivial_vs_xargs  # noqa: E402

ROWS = ("wide", "many", "cpu", "local")


def sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"wide": 200, "many": (10, 20), "cpu": 2000, "local": 200, "hold": 15.0}
    return {"wide": 1000, "many": (100, 20), "cpu": 10000, "local": 1000, "hold": 30.0}


def measure(row: str, source: Path, size: dict[str, Any], this_tree: bool) -> dict[str, Any]:
    # The options of this tree's flow control are not known to a baseline's `tuner serve`.
    extra = ["--kube-api-qps", "400", "--kube-api-burst", "600"] if this_tree else []
    if row in ("wide", "many"):
        from bench.scale_k8s import run_k8s

        experiments, trials = (1, size["wide"]) if row == "wide" else size["many"]
        return run_k8s(source, experiments, trials, size["hold"], extra)
    if row == "cpu":
        return controller_cpu(source, size["cpu"])
    walls = trivial_vs_xargs(source, size["local"], 2)
    return {
        "trials": size["local"],
        "xargs_s": mean(walls["xargs"]),
        "tuner_s": mean(walls["tuner"]),
    }


def quantiles(result: dict[str, Any], key: str) -> str:
    """``p99 s (p50)`` of a measure, or ``-`` where a run did not record it."""
    if f"{key}_p99" not in result:
        return "-"
    return f"{result[f'{key}_p99']:.2f} s ({result[f'{key}_p50']:.2f})"


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = []
    header = ["measure", "target", "this tree", "baseline"]
    rows = []

    def both(row: str, show: Any) -> list[str]:
        return [
            show(results[f"{row}:{tree}"]) if f"{row}:{tree}" in results else "-"
            for tree in ("this", "baseline")
        ]

    def k8s(row: str, label: str) -> None:
        def n(r: dict[str, Any]) -> str:
            return f"{r['trials']} trials"

        rows.append([f"{label}: run", "", *both(row, n)])
        rows.append(
            [
                f"{label}: suggestion -> Job created, p99 (p50)",
                "<= 1 s",
                *both(row, lambda r: f"{r['created_p99']:.2f} s ({r['created_p50']:.2f})"),
            ]
        )
        rows.append(
            [
                f"{label}: the same Jobs created by a bare client (floor), p99 (p50)",
                "",
                *both(row, lambda r: quantiles(r, "floor")),
            ]
        )
        rows.append(
            [
                f"{label}: Job completion -> trial stored, p99 (p50)",
                "<= 2 s",
                *both(row, lambda r: quantiles(r, "completed")),
            ]
        )
        rows.append(
            [
                f"{label}: container end -> trial stored, p99 (p50)",
                "",
                *both(row, lambda r: quantiles(r, "stored")),
            ]
        )
        rows.append(
            [
                f"{label}: trials running at once (most)",
                "all",
                *both(row, lambda r: str(r["peak_running"])),
            ]
        )
        rows.append(
            [
                f"{label}: service RSS at the most running",
                "< 1 GB",
                *both(row, lambda r: f"{r['rss_at_most_running_mb']:.0f} MB"),
            ]
        )
        rows.append(
            [
                f"{label}: TCP connections to the apiserver / threads (peak)",
                "O(namespaces)",
                *both(row, lambda r: f"{r['connections']} / {r['threads']}"),
            ]
        )
        rows.append([f"{label}: wall", "", *both(row, lambda r: f"{r['wall_s']:.0f} s")])

    k8s("wide", "one experiment, all trials concurrent")
    k8s("many", "many experiments x 20")
    rows.append(
        [
            "medianstop, local runner: controller CPU per trial, first vs last window",
            "flat",
            *both(
                "cpu",
                lambda r: (
                    f"{r['first_ms']:.1f} vs {r['last_ms']:.1f} ms "
                    f"({r['trials']} trials, window {r['window']})"
                ),
            ),
        ]
    )
    rows.append(
        [
            "local trivial trials, parallelism 8: tuner run / xargs -P 8",
            "<= 1.5x",
            *both(
                "local",
                lambda r: (
                    f"{r['tuner_s']:.2f} / {r['xargs_s']:.2f} s = "
                    f"{r['tuner_s'] / r['xargs_s']:.2f}x ({r['trials']})"
                ),
            ),
        ]
    )
    lines.append(markdown_table(header, rows, "lrrr"))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (see the docstring)")
    parser.add_argument("--baseline", type=Path, help="a source tree to run every row with too")
    parser.add_argument("--rows", default=",".join(ROWS), help="rows to run (comma-separated)")
    parser.add_argument("--out", type=Path, default=Path("scale-results.json"))
    parser.add_argument("--cpu-trials", type=int, help="trials of the cpu row (default 10,000)")
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = (
        json.loads(args.out.read_text()) if args.out.exists() else {}
    )
    size = sizes(args.quick)
    if args.cpu_trials:
        size["cpu"] = args.cpu_trials
    print(machine(), file=sys.stderr)
    for row in args.rows.split(","):
        trees = [("this", ROOT)] + ([("baseline", args.baseline)] if args.baseline else [])
        for tree, source in trees:
            print(f"{row} ({tree}: {source}) ...", file=sys.stderr, flush=True)
            try:
                results[f"{row}:{tree}"] = measure(row, source, size, tree == "this")
            except RuntimeError as e:  # one failed row does not lose the others
                print(f"  {row} ({tree}) failed: {e}", file=sys.stderr)
                continue
            args.out.write_text(json.dumps(results, indent=1))
            print(f"  {json.dumps(results[f'{row}:{tree}'])}", file=sys.stderr)
    print(table(results))


if __name__ == "__main__":
    main()
