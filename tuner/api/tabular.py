"""Leaderboard rows as flat records: one column per parameter and per metric.

Used by the CSV leaderboard and by the client's DataFrames. Pure standard library, so that
``tuner.client`` can import it without FastAPI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

BASE_COLUMNS = ("trial", "status", "objective")
TAIL_COLUMNS = ("steps", "reason")


def flatten_rows(
    rows: Sequence[Mapping[str, Any]],
    parameters: Sequence[str] = (),
    metrics: Sequence[str] = (),
    extra: Sequence[str] = (),
) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and flat records for leaderboard-shaped rows.

    Parameter and metric columns carry their own names, in the order given (then any others
    the rows hold, in order of appearance). A name that clashes with an earlier column is
    prefixed with ``parameters.`` or ``metrics.``.

    Args:
        rows: leaderboard rows (``trial``, ``status``, ``parameters``, ``objective``,
            ``metrics``, ``steps``, ``reason``), possibly with more keys.
        parameters: parameter names in spec order.
        metrics: metric names, the objective first.
        extra: more top-level keys to keep as columns after the standard ones.
    """
    param_names = _ordered(parameters, (r.get("parameters") or {} for r in rows))
    metric_names = _ordered(metrics, (r.get("metrics") or {} for r in rows))
    columns: list[str] = list(BASE_COLUMNS)
    tail = list(dict.fromkeys(c for c in (*TAIL_COLUMNS, *extra) if c not in BASE_COLUMNS))
    param_cols = {p: _unique(p, "parameters", columns, tail) for p in param_names}
    metric_cols = {m: _unique(m, "metrics", columns, tail) for m in metric_names}
    columns += tail
    records = []
    for row in rows:
        record: dict[str, Any] = {c: row.get(c) for c in BASE_COLUMNS}
        params = row.get("parameters") or {}
        for p, column in param_cols.items():
            record[column] = params.get(p)
        values = row.get("metrics") or {}
        for m, column in metric_cols.items():
            record[column] = values.get(m)
        for c in tail:
            record[c] = row.get(c)
        records.append({c: record.get(c) for c in columns})
    return columns, records


def _ordered(first: Sequence[str], mappings: Any) -> list[str]:
    names = list(dict.fromkeys(first))
    seen = set(names)
    for mapping in mappings:
        for key in mapping:
            if key not in seen:
                seen.add(key)
                names.append(key)
    return names


def _unique(name: str, prefix: str, columns: list[str], reserved: Sequence[str]) -> str:
    column = name if name not in columns and name not in reserved else f"{prefix}.{name}"
    columns.append(column)
    return column
