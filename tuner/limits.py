"""Every size limit of the service's input, in one place, the same on SQLite and PostgreSQL.

The limits are checked at the edge (spec models, API schemas, body parsing), so that a value the
database cannot hold is refused there with a clear 4xx and never reaches a query:

- names: experiment names are DNS labels (63 characters, the ``experiments.name`` column);
  trial names fit ``trials.name`` (128);
- metric names fit ``observations.metric`` and ``trial_metrics.name`` (128);
- steps and offsets fit a 32-bit ``INTEGER`` (PostgreSQL's ``integer`` is 32-bit, SQLite's is
  64-bit: the smaller one is the rule for both);
- text has no NUL character (PostgreSQL's ``text`` cannot hold one, SQLite's can);
- a JSON or YAML body nests at most :data:`MAX_DEPTH` levels (deeper ones would exhaust
  Python's recursion in the parser, the validators or the JSON encoder).

No framework is imported here: the domain, the spec and the API all read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_METRIC_NAME_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_OFFSET",
    "MAX_RANGE_POINTS",
    "MAX_STEP",
    "MAX_TRIAL_NAME_LENGTH",
    "NO_NUL",
    "TooDeep",
    "check_depth",
    "nul_free",
]

MAX_NAME_LENGTH = 63
"""An experiment's (and namespace's) name: a Kubernetes DNS label."""

MAX_TRIAL_NAME_LENGTH = 128
"""A trial's name (``<experiment>-<number>``), the ``trials.name`` column."""

MAX_METRIC_NAME_LENGTH = 128
"""A metric's name, the ``observations.metric`` and ``trial_metrics.name`` columns."""

MAX_STEP = 2**31 - 1
"""The largest step of an observation: a 32-bit ``INTEGER`` column on both databases."""

MAX_OFFSET = 2**31 - 1
"""The largest paging offset a list endpoint takes (``OFFSET`` is 64-bit; this is plenty)."""

MAX_DEPTH = 64
"""How deeply a JSON or YAML request body may nest (a Katib spec needs about 15 levels)."""

MAX_RANGE_POINTS = 10**15
"""The most grid points ``(max - min) / step`` a stepped range may have (float precision ends
near 2**53; Decimal arithmetic of the suggesters keeps 28 digits)."""

NO_NUL = r"^[^\x00]*$"
"""A JSON-schema pattern: text without NUL (PostgreSQL cannot store it)."""


class TooDeep(ValueError):
    """A document nests deeper than :data:`MAX_DEPTH`."""

    def __init__(self, limit: int = MAX_DEPTH) -> None:
        super().__init__(f"the document nests deeper than {limit} levels")


def check_depth(data: Any, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`TooDeep` when lists and mappings in ``data`` nest deeper than ``limit``.

    Iterative (no recursion), so it is safe on any parsed document.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, Mapping):
            children: Any = value.values()
        elif isinstance(value, list | tuple):
            children = value
        else:
            continue
        if depth > limit:
            raise TooDeep(limit)
        stack.extend((child, depth + 1) for child in children)


def nul_free(value: str) -> str:
    """``value`` unchanged; ``ValueError`` if it holds a NUL character."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value
