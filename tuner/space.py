"""The search space and the objective as plain typed values: what the algorithms and rules read.

Katib writes a parameter as strings (``min: "0.01"``, ``step``, ``list``, ``distribution``).
:func:`parse_parameter` reads those strings once, into a frozen :class:`Parameter`; from then
on every conversion and bounds check goes through that value. A :class:`Study` gathers what a
suggestion algorithm or a stopping rule may know of an experiment (space, objective,
parallelism, its own name and settings); ``ExperimentSpec.study`` builds it once per spec.

No framework is imported here: ``tuner.spec`` depends on this module, never the reverse.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from tuner.constraints import Constraint
from tuner.limits import MAX_RANGE_POINTS
from tuner.trials import ParamValue

__all__ = [
    "LOG_DISTRIBUTIONS",
    "AlgorithmChoice",
    "Direction",
    "HasStudy",
    "Objective",
    "Parameter",
    "ParameterKind",
    "SearchSpace",
    "SpaceError",
    "Study",
    "parse_parameter",
    "study_of",
]


class ParameterKind(StrEnum):
    """Katib's ``parameterType``."""

    INT = "int"
    DOUBLE = "double"
    DISCRETE = "discrete"
    CATEGORICAL = "categorical"

    @property
    def numeric(self) -> bool:
        """Whether the parameter is a range (``int``, ``double``) rather than a list."""
        return self in (ParameterKind.INT, ParameterKind.DOUBLE)


class Direction(StrEnum):
    """Katib's ``objective.type``."""

    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


LOG_DISTRIBUTIONS = ("logUniform", "logNormal")
"""Katib distributions sampled on a log scale (``normal`` is sampled like ``uniform``)."""


def number(value: Any) -> int | float:
    """A discrete value as Python number: ``"3"`` and ``3`` give ``3``, ``"3.0"`` gives ``3.0``."""
    f = float(value)
    if isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value)):
        return int(f)
    return f


@dataclass(frozen=True)
class Parameter:
    """One dimension of the search space, typed and valid by construction.

    Args:
        name: the parameter's name in the spec and in trial parameters.
        kind: ``int`` and ``double`` are ranges ``[low, high]``, optionally on the grid
            ``low + k * step``; ``discrete`` (numbers) and ``categorical`` (strings) are
            ``choices``.
        low: lower bound of a range (NaN for lists).
        high: upper bound of a range (NaN for lists).
        step: grid step of a range, or ``None``.
        log: whether a range is sampled on a log scale (``logUniform``, ``logNormal``).
        choices: the values of a list parameter, typed (numbers for ``discrete``).
        distribution: Katib's ``distribution`` as written, for messages (``None`` if unset).

    Raises:
        ValueError: the fields do not describe a valid parameter.

    Example:
        >>> p = Parameter("lr", ParameterKind.DOUBLE, 1e-4, 1e-1, log=True)
        >>> p.convert("0.01"), p.contains(0.5)
        (0.01, False)
    """

    name: str
    kind: ParameterKind
    low: float = math.nan
    high: float = math.nan
    step: float | None = None
    log: bool = False
    choices: tuple[ParamValue, ...] = ()
    distribution: str | None = None

    def __post_init__(self) -> None:
        if self.kind.numeric:
            if self.choices:
                raise ValueError(f"{self.name}: a {self.kind} parameter takes no choices")
            if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low <= self.high):
                raise ValueError(f"{self.name}: needs finite bounds with low <= high")
            if self.log and self.low <= 0:
                raise ValueError(f"{self.name}: a log scale needs low > 0")
            if self.step is not None and not (
                math.isfinite(self.step)
                and self.step > 0
                and (self.step <= self.high - self.low or self.low == self.high)
            ):
                raise ValueError(f"{self.name}: step must lie in (0, high - low]")
            if self.kind is ParameterKind.INT and not all(
                float(x).is_integer() for x in (self.low, self.high, self.step or 1.0)
            ):
                raise ValueError(f"{self.name}: an int parameter needs integer bounds and step")
            for _, message in range_limits(self.kind, self.low, self.high, self.step):
                raise ValueError(f"{self.name}: {message}")
            return
        if not math.isnan(self.low) or not math.isnan(self.high) or self.step or self.log:
            raise ValueError(f"{self.name}: a {self.kind} parameter takes only choices")
        if not self.choices or len(set(self.choices)) != len(self.choices):
            raise ValueError(f"{self.name}: needs a non-empty list of distinct choices")

    def convert(self, value: Any) -> ParamValue:
        """Bring a value (from a suggester, JSON or a user) to this parameter's Python type.

        Raises:
            TypeError, ValueError, OverflowError: the value cannot be read as that type.
        """
        if self.kind is ParameterKind.INT:
            return round(float(value))
        if self.kind is ParameterKind.DOUBLE:
            return float(value)
        if self.kind is ParameterKind.DISCRETE:
            return number(value)
        return str(value)

    def contains(self, value: ParamValue) -> bool:
        """Whether ``value`` (already converted) lies in the space: bounds, step grid, list."""
        if not self.kind.numeric:
            return any(value == c for c in self.choices)
        if isinstance(value, str):
            return False
        if self.kind is ParameterKind.INT and not float(value).is_integer():
            return False
        lo, hi = self.low, self.high
        tol = 1e-9 * max(1.0, abs(hi - lo))
        if not (lo - tol <= value <= hi + tol):
            return False
        if self.step:
            k = (value - lo) / self.step
            return abs(k - round(k)) < 1e-6
        return True


class SpaceError(ValueError):
    """Katib strings that do not make a :class:`Parameter`.

    Attributes:
        problems: ``(field, message)`` per problem; ``field`` names the ``feasibleSpace`` entry
            (``"min"``, ``"list[2]"``) or is ``""`` for the feasible space as a whole.
    """

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{k}: {m}" if k else m for k, m in problems))
        self.problems = list(problems)


MAX_INT_BOUND = 2**53
"""The largest magnitude of an ``int`` parameter's bounds: every integer up to it is exact as
a float (the spec's strings are read as floats), and numpy's samplers take it."""


def range_limits(
    kind: ParameterKind, low: float, high: float, step: float | None
) -> list[tuple[str, str]]:
    """Problems of a valid-looking range that no suggester could sample (``(field, message)``).

    The width ``high - low`` must be a finite float (``-1e308..1e308`` is not), an ``int``
    range must stay within +-2**53, and a step must leave at most
    :data:`~tuner.limits.MAX_RANGE_POINTS` grid points (``step: 1e-300`` would not).
    """
    problems: list[tuple[str, str]] = []
    width = high - low
    if not math.isfinite(width):
        problems.append(("max", "max - min is too large to compute (not a finite number)"))
        return problems
    if kind is ParameterKind.INT and max(abs(low), abs(high)) > MAX_INT_BOUND:
        problems.append(("", f"int bounds must lie within -2**53 and 2**53 ({MAX_INT_BOUND})"))
    if step is not None and step > 0 and width / step > MAX_RANGE_POINTS:
        problems.append(
            ("step", f"too small: (max - min) / step exceeds {MAX_RANGE_POINTS:.0e} grid points")
        )
    return problems


def _float(value: str | None, key: str, problems: list[tuple[str, str]]) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except ValueError:
        problems.append((key, f"{value!r} is not a number"))
        return None
    if not math.isfinite(f):
        problems.append((key, f"{value!r} is not a finite number"))
        return None
    return f


def parse_parameter(
    name: str,
    kind: ParameterKind,
    *,
    minimum: str | None = None,
    maximum: str | None = None,
    step: str | None = None,
    values: Sequence[str] | None = None,
    distribution: str | None = None,
) -> Parameter:
    """Read a Katib ``feasibleSpace`` (string fields) into a :class:`Parameter`, once.

    ``minimum``, ``maximum``, ``step``, ``values`` and ``distribution`` are the feasible space's
    ``min``, ``max``, ``step``, ``list`` and ``distribution``, as written.

    Raises:
        SpaceError: with every problem found, in Katib's wording.
    """
    problems: list[tuple[str, str]] = []
    log = distribution in LOG_DISTRIBUTIONS
    if kind.numeric:
        if values:
            problems.append(("list", f"not supported for parameterType {kind.value}"))
        for key, raw in (("min", minimum), ("max", maximum)):
            if raw is None:
                problems.append((key, f"must be specified for parameterType {kind.value}"))
        lo = _float(minimum, "min", problems)
        hi = _float(maximum, "max", problems)
        st = _float(step, "step", problems)
        if kind is ParameterKind.INT:
            for key, v, raw in (("min", lo, minimum), ("max", hi, maximum), ("step", st, step)):
                if v is not None and not v.is_integer():
                    problems.append((key, f"must be an integer for parameterType int, got {raw!r}"))
        if lo is not None and hi is not None:
            if lo > hi:  # min == max is a fixed value (Katib's hyperband example has one)
                problems.append(("min", f"must not exceed max ({minimum} > {maximum})"))
            elif log and lo <= 0:
                problems.append(("min", f"must be positive for distribution {distribution}"))
            if st is not None and st <= 0:
                problems.append(("step", "must be greater than 0"))
            elif st is not None and lo < hi and st > hi - lo:
                problems.append(("step", "must not exceed max - min"))
            if lo < hi:
                problems += range_limits(kind, lo, hi, st)
        if problems:
            raise SpaceError(problems)
        assert lo is not None and hi is not None
        return Parameter(name, kind, lo, hi, st, log, distribution=distribution)
    if minimum is not None or maximum is not None or step is not None:
        problems.append(("", f"min, max and step are not supported for parameterType {kind.value}"))
    if not values:
        problems.append(("list", f"must be a non-empty list for parameterType {kind.value}"))
    else:
        if len(set(values)) != len(values):
            problems.append(("list", "values must be unique"))
        if kind is ParameterKind.DISCRETE:
            for j, item in enumerate(values):
                _float(item, f"list[{j}]", problems)
    # A distribution is accepted and has no effect here, as in Katib, whose defaulting webhook
    # writes ``uniform`` into every parameter (so exported Experiments carry it).
    if problems:
        raise SpaceError(problems)
    assert values
    choices = tuple(number(v) for v in values) if kind is ParameterKind.DISCRETE else tuple(values)
    if len(set(choices)) != len(choices):  # "1" and "1.0" are the same number
        raise SpaceError([("list", "values must be unique")])
    return Parameter(name, kind, choices=choices)


@dataclass(frozen=True)
class SearchSpace:
    """The parameters of an experiment, in the spec's order, with unique names."""

    parameters: tuple[Parameter, ...] = ()
    _by_name: dict[str, Parameter] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {p.name: p for p in self.parameters}
        if len(by_name) != len(self.parameters):
            raise ValueError("parameter names must be unique")
        object.__setattr__(self, "_by_name", by_name)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self.parameters)

    def __len__(self) -> int:
        return len(self.parameters)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Parameter:
        return self._by_name[name]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def convert(self, values: Mapping[str, Any]) -> dict[str, ParamValue]:
        """Every parameter's value of ``values``, converted, in the space's order.

        Raises:
            KeyError: a parameter is missing from ``values``.
        """
        return {p.name: p.convert(values[p.name]) for p in self.parameters}


@dataclass(frozen=True)
class Objective:
    """What "better" means for an experiment.

    Args:
        metric: the objective metric's name.
        direction: minimize or maximize.
        goal: the value that ends the experiment once reached, or ``None``.
        additional_metrics: the other metrics trials report.
    """

    metric: str
    direction: Direction = Direction.MINIMIZE
    goal: float | None = None
    additional_metrics: tuple[str, ...] = ()

    @property
    def minimize(self) -> bool:
        return self.direction is Direction.MINIMIZE

    def better(self, a: float, b: float) -> bool:
        """Whether objective value ``a`` is strictly better than ``b``."""
        return a < b if self.minimize else a > b

    def goal_reached(self, value: float) -> bool:
        if self.goal is None or math.isnan(value):
            return False
        return value <= self.goal if self.minimize else value >= self.goal


@dataclass(frozen=True)
class AlgorithmChoice:
    """A suggestion algorithm or stopping rule by name, with its settings as Katib writes them."""

    name: str
    settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Study:
    """What an algorithm or a stopping rule may know of an experiment.

    Args:
        space: the search space.
        objective: the objective.
        algorithm: the suggestion algorithm chosen.
        early_stopping: the stopping rule chosen, if any.
        parallel_trial_count: how many trials may run at once.
        objectives: with several objectives (``spec.objectives``), all of them, ``objective``
            being the first; empty for a single-objective experiment.
        constraints: the constraints on metrics (``spec.constraints``).
        max_trial_count: the experiment's budget of trials (``maxTrialCount``), if any.
        complete: ``False`` only while a spec is being validated and some of its parameters
            did not parse; ``space`` then holds the others, and checks that need every
            parameter are skipped (the parameter errors are reported first).
    """

    space: SearchSpace
    objective: Objective
    algorithm: AlgorithmChoice = AlgorithmChoice("random")
    early_stopping: AlgorithmChoice | None = None
    parallel_trial_count: int = 1
    complete: bool = True
    max_trial_count: int | None = None
    objectives: tuple[Objective, ...] = ()
    constraints: tuple[Constraint, ...] = ()

    @property
    def multi_objective(self) -> bool:
        """Whether the experiment has two or more objectives."""
        return len(self.objectives) >= 2


class HasStudy(Protocol):
    """Anything that knows its :class:`Study` (``ExperimentSpec`` does)."""

    @property
    def study(self) -> Study: ...


def study_of(source: Study | HasStudy) -> Study:
    """``source`` itself if it is a :class:`Study`, else its ``study``."""
    return source if isinstance(source, Study) else source.study
