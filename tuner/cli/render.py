"""What the read commands print: tables (rich) and text, from the rows of any source."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tuner.cli.source import ExperimentInfo, ExperimentStatus, OptimalTrial, TrialRow
from tuner.errors import SpecError

if TYPE_CHECKING:
    from rich.console import Console


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def leaderboard_table(info: ExperimentInfo, rows: Sequence[TrialRow]) -> None:
    """Leaderboard rows, best first, with a column per parameter and per metric."""
    from rich.table import Table

    parameters, metrics = info.parameters, info.metrics
    table = Table(title=f"Leaderboard: {info.namespace}/{info.name}")
    table.add_column("#", justify="right")
    table.add_column("trial")
    table.add_column("status")
    for p in parameters:
        table.add_column(p, justify="right")
    for m in metrics:
        table.add_column(m, justify="right", style="bold" if m == metrics[0] else "")
    table.add_column("steps", justify="right")
    for rank, row in enumerate(rows, 1):
        table.add_row(
            str(rank),
            row.trial,
            row.status,
            *[fmt(row.parameters.get(p)) for p in parameters],
            *[fmt(row.metrics.get(m)) for m in metrics],
            str(row.steps),
        )
    console().print(table)


def trials_table(title: str, rows: Sequence[TrialRow]) -> None:
    """Trials with their parameters, objective, steps and message."""
    from rich.table import Table

    table = Table(title=f"Trials: {title}")
    for column in ("trial", "status", "parameters", "objective", "steps", "message"):
        table.add_column(column)
    for row in rows:
        params = " ".join(f"{k}={fmt(v)}" for k, v in row.parameters.items())
        table.add_row(
            row.trial, row.status, params, fmt(row.objective), str(row.steps), row.message or ""
        )
    console().print(table)


def status_text(title: str, status: ExperimentStatus) -> None:
    """Phase (with reason and message), trial counts, steps and the optimal trial, one line each.

    Numbers have 6 significant digits (:func:`number`), so the text is the same from the
    database and from a server, whatever float noise the values carry.
    """
    print(f"{title}: {status.phase}", end="")
    print(f" ({status.reason}: {status.message})" if status.reason else "")
    counts = ", ".join(f"{k} {v}" for k, v in status.trial_counts.items() if v)
    print(f"trials: {status.trials} ({counts or 'none'})")
    without = status.steps_without_stopping
    print(f"steps: totalSteps {status.total_steps}", end="")
    print(f", stepsWithoutStopping {without}" if without is not None else "")
    chosen = status.document.get("algorithm")
    if chosen:
        print(f"algorithm: {chosen['algorithmName']} chose {chosen['chosen']} ({chosen['reason']})")
    optimal = status.optimal
    if optimal:
        print(f"optimal trial: {_trial_line(optimal)}")
    if status.front:
        print(f"Pareto front: {len(status.front)} trial(s)")
        for trial in status.front:
            print(f"  {_trial_line(trial)}")


def _trial_line(trial: OptimalTrial) -> str:
    params = ", ".join(f"{name}={number(value)}" for name, value in trial.parameters)
    values = ", ".join(f"{name}={number(value)}" for name, value in trial.metrics)
    return f"{trial.name} ({params}) -> {values}"


def print_spec_errors(error: SpecError) -> None:
    print(f"error: invalid Experiment spec ({len(error.errors)} problem(s)):", file=sys.stderr)
    for e in error.errors:
        print(f"  {e.path}: {e.message}", file=sys.stderr)


def console() -> Console:
    """A console for tables; piped output (CI logs, files) gets a wide one, not cut columns."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=200)


def number(value: Any) -> str:
    """A value in text output: floats with 6 significant digits (``0.3``, not
    ``0.30000000000000004``), ``-`` for nothing, anything else as is."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def fmt(value: Any) -> str:
    """A table cell: ``-`` for nothing, 4 significant digits for floats."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
