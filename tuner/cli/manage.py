"""The commands that list and change experiments: list, stop, resume, delete, budget, logs.

Each works on the database (``--db``) or on a ``tuner serve`` (``--server``) through the one
:class:`~tuner.cli.source.ExperimentSource` interface, and prints the same either way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from contextlib import closing

from tuner.cli.options import EXIT_OK
from tuner.cli.render import console, fmt, print_json
from tuner.cli.source import ExperimentItem, ExperimentStatus, open_source
from tuner.errors import InvalidRequest


def list_command(args: argparse.Namespace) -> int:
    with closing(open_source(args)) as source:
        items = source.list_experiments(phase=args.phase, limit=args.limit)
    if args.json:
        print_json([i.to_json() for i in items])
    else:
        experiments_table(args.namespace, items)
    return EXIT_OK


def stop_command(args: argparse.Namespace) -> int:
    with closing(open_source(args)) as source:
        status = source.stop(args.name)
    print_phase(f"{args.namespace}/{args.name}", status)
    return EXIT_OK


def resume_command(args: argparse.Namespace) -> int:
    with closing(open_source(args)) as source:
        status = source.resume(args.name)
    print_phase(f"{args.namespace}/{args.name}", status)
    if not args.server:
        print("`tuner run SPEC` with this database drives it (or a `tuner serve` when it starts)")
    return EXIT_OK


def delete_command(args: argparse.Namespace) -> int:
    with closing(open_source(args)) as source:
        source.delete(args.name)
    print(f"experiment {args.namespace}/{args.name} deleted")
    return EXIT_OK


def budget_command(args: argparse.Namespace) -> int:
    changes: dict[str, int | None] = {
        key: value
        for key, value in (
            ("maxTrialCount", args.max_trial_count),
            ("parallelTrialCount", args.parallel_trial_count),
            ("maxFailedTrialCount", args.max_failed_trial_count),
        )
        if value is not None
    }
    if not changes:
        raise InvalidRequest(
            "nothing to change: give --max-trial-count, --parallel-trial-count "
            "or --max-failed-trial-count"
        )
    with closing(open_source(args)) as source:
        status = source.edit_budget(args.name, changes)
    print_phase(f"{args.namespace}/{args.name}", status)
    return EXIT_OK


def logs_command(args: argparse.Namespace) -> int:
    with closing(open_source(args)) as source:
        text = source.logs(args.name, args.trial)
    sys.stdout.write(text)
    return EXIT_OK


def print_phase(ref: str, status: ExperimentStatus) -> None:
    """One line: the experiment's phase, with its reason and message when it has them."""
    line = f"experiment {ref}: {status.phase}"
    if status.reason:
        line += f" ({status.reason})"
    if status.message:
        line += f": {status.message}"
    print(line)


def experiments_table(namespace: str, items: Sequence[ExperimentItem]) -> None:
    """Experiments newest first: phase, trial count, the optimal trial and its metrics."""
    from rich.table import Table

    table = Table(title=f"Experiments in {namespace}")
    for column in ("name", "phase", "trials", "optimal trial", "metrics"):
        table.add_column(column, justify="right" if column == "trials" else "left")
    for item in items:
        optimal = item.status.optimal
        metrics = " ".join(f"{k}={fmt(v)}" for k, v in optimal.metrics) if optimal else ""
        table.add_row(
            item.name,
            item.status.phase,
            str(item.status.trials),
            optimal.name if optimal else _front(item.status.front),
            metrics,
        )
    console().print(table)


def _front(front: Sequence[object]) -> str:
    """Several objectives: how many trials are on the Pareto front (see `tuner pareto`)."""
    return f"{len(front)} on the Pareto front" if front else ""
