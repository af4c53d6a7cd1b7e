"""Grid search (``algorithmName: grid``): every point of the cartesian product, each once.

The rules are on :class:`GridSuggester`.
"""

from __future__ import annotations

import decimal
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuner.algorithms.base import Suggestion
from tuner.algorithms.settings import Problems, Schema, Setting, at_least
from tuner.space import Parameter, ParameterKind, Study
from tuner.trials import ParamValue, Trial

__all__ = ["MAX_POINTS", "GridSuggester", "create", "validate_settings"]

MAX_POINTS = 1_000_000


def schema(name: str = "grid") -> Schema:
    """The grid's settings: ``random_state`` (Katib documents it for grid), the order's seed."""
    return Schema(name, (Setting("random_state", at_least(0), description="seed of the order"),))


def _decimal(value: float | None) -> decimal.Decimal:
    assert value is not None
    return decimal.Decimal(repr(value))


def _axis_size(p: Parameter) -> int | None:
    """Number of grid points of a parameter; ``None`` if it needs a step."""
    if p.kind is ParameterKind.INT:
        return (int(p.high) - int(p.low)) // int(p.step or 1) + 1
    if p.kind is ParameterKind.DOUBLE:
        if p.step is None:
            return None
        return int((_decimal(p.high) - _decimal(p.low)) // _decimal(p.step)) + 1
    return len(p.choices)


def validate_settings(
    name: str, settings: Mapping[str, str], study: Study
) -> list[tuple[str, str]]:
    """Problems with the grid settings and with the space as a grid."""
    problems: Problems = schema(name).parse(settings)[1]
    if not study.complete:
        return problems  # the spec validator reports the parameters; no size to compute
    size = 1
    for p in study.space:
        n = _axis_size(p)
        if n is None:
            problems.append(
                ("", f"parameter {p.name!r}: a double needs feasibleSpace.step for grid search")
            )
            continue
        size *= n
    if size > MAX_POINTS:
        problems.append(
            (
                "",
                f"the grid has {size:,} points, more than the limit of {MAX_POINTS:,}; "
                "use coarser steps or shorter lists, or a sampling algorithm (random, sobol, tpe)",
            )
        )
    return problems


def create(name: str, settings: Mapping[str, str], study: Study) -> GridSuggester:
    """Build the grid suggester of a validated spec.

    Raises:
        ValueError: if the settings or the space do not pass :func:`validate_settings`.
    """
    problems = validate_settings(name, settings, study)
    if problems:
        raise ValueError("invalid grid: " + "; ".join(f"{k}: {m}" if k else m for k, m in problems))
    values, _ = schema(name).parse(settings)
    return GridSuggester(study, values.get("random_state"))


@dataclass(frozen=True)
class _Axis:
    parameter: Parameter
    values: tuple[ParamValue, ...]

    @classmethod
    def of(cls, p: Parameter) -> _Axis:
        if p.kind is ParameterKind.INT:
            values: tuple[ParamValue, ...] = tuple(
                range(int(p.low), int(p.high) + 1, int(p.step or 1))
            )
        elif p.kind is ParameterKind.DOUBLE:
            low, step = _decimal(p.low), _decimal(p.step)
            n = _axis_size(p)
            assert n is not None
            values = tuple(float(low + k * step) for k in range(n))
        else:
            values = p.choices
        return cls(p, values)

    def index(self, raw: Any) -> int | None:
        """The grid index of a stored value, or ``None`` if the value is not on this axis."""
        p = self.parameter
        try:
            value = p.convert(raw)
        except (TypeError, ValueError, OverflowError):
            return None
        if not p.kind.numeric:
            return next((i for i, v in enumerate(self.values) if v == value), None)
        assert not isinstance(value, str)
        if not math.isfinite(value):
            return None
        first = float(self.values[0])
        step = float(self.values[1]) - first if len(self.values) > 1 else 1.0
        k = (value - first) / step
        i = round(k)
        if abs(k - i) > 1e-6 or not 0 <= i < len(self.values):
            return None
        return i


class GridSuggester:
    """A :class:`~tuner.algorithms.base.Suggester` enumerating the grid.

    The axes, as Katib builds them:

    * ``int``: ``min, min + step, ...`` up to ``max`` (``step`` defaults to 1);
    * ``double``: the same, and ``step`` is required (a validation error otherwise, as in Katib).
      Points are computed in decimal arithmetic from the shortest text of each number, so
      ``min: 0.1, step: 0.1`` gives ``0.3`` rather than ``0.30000000000000004``;
    * ``discrete`` and ``categorical``: the list, in order.

    The ``distribution`` is ignored: a ``logUniform`` grid is still ``min + k * step`` (Katib
    does the same). Grids of more than :data:`MAX_POINTS` points are rejected at validation.

    Order and the history as the record
    -----------------------------------
    Points come in ``itertools.product`` order (the first parameter varies slowest). With the
    ``random_state`` setting (which Katib documents for ``grid``) the order is a permutation seeded
    by it instead, so that a budget smaller than the grid still spreads over the space.

    A point is suggested only if no trial of ``history`` (in any state) has it, so each point is
    tried once even across restarts, and the result is a pure function of (settings, history,
    count). When the grid is used up, fewer points (eventually none) are returned. The suggester
    keeps the set of taken points and a cursor below which every point is taken, so a call costs
    O(new trials + count) amortised; both are rebuilt if trials ever leave the history.
    """

    def __init__(self, study: Study, random_state: int | None = None) -> None:
        self._axes = [_Axis.of(p) for p in study.space]
        self._size = math.prod(len(a.values) for a in self._axes)
        self._order = (
            None
            if random_state is None
            else np.random.default_rng(random_state).permutation(self._size)
        )
        self._lock = threading.Lock()
        self._reset()

    @property
    def size(self) -> int:
        return self._size

    def _reset(self) -> None:
        self._names: set[str] = set()
        self._taken: set[int] = set()
        self._cursor = 0  # every position below it is taken

    def suggest(self, history: Sequence[Trial], count: int) -> list[Suggestion]:
        if count <= 0:
            return []
        with self._lock:
            if self._names and not self._names <= {t.name for t in history}:
                self._reset()
            for trial in history:
                if trial.name not in self._names:
                    self._names.add(trial.name)
                    index = self._flat_index(trial.parameters)
                    if index is not None:
                        self._taken.add(index)
            while self._cursor < self._size and self._at(self._cursor) in self._taken:
                self._cursor += 1
            out: list[Suggestion] = []
            position = self._cursor
            while len(out) < count and position < self._size:
                index = self._at(position)
                if index not in self._taken:
                    out.append(Suggestion(parameters=self._point(index)))
                position += 1
            return out

    def _at(self, position: int) -> int:
        return position if self._order is None else int(self._order[position])

    def _flat_index(self, parameters: Mapping[str, Any]) -> int | None:
        flat = 0
        for axis in self._axes:
            name = axis.parameter.name
            i = axis.index(parameters[name]) if name in parameters else None
            if i is None:
                return None
            flat = flat * len(axis.values) + i
        return flat

    def _point(self, flat: int) -> dict[str, ParamValue]:
        point: dict[str, ParamValue] = {}
        for axis in reversed(self._axes):
            flat, i = divmod(flat, len(axis.values))
            point[axis.parameter.name] = axis.values[i]
        return {a.parameter.name: point[a.parameter.name] for a in self._axes}
