"""The Katib search space as Optuna distributions, and the way back.

Mapping (one :class:`~tuner.space.Parameter` → one Optuna distribution):

========================  ==================================================================
Katib parameter           Optuna distribution
========================  ==================================================================
``int``                   ``IntDistribution(min, max, step or 1, log)``
``double``                ``FloatDistribution(min, max, step, log)``
``discrete``              ``CategoricalDistribution`` of the numbers (as Katib's own Optuna
                          service does; TPE then treats them as unordered choices)
``categorical``           ``CategoricalDistribution`` of the strings
========================  ==================================================================

Decisions worth knowing:

* **Distributions.** Optuna has no normal or log-normal prior. ``normal`` is sampled on a linear
  scale like ``uniform``, and ``logNormal`` on a log scale like ``logUniform`` (the feasible
  space stays ``[min, max]`` in both cases). The same rule holds for every Optuna-backed
  algorithm.
* **Step with a log scale.** Optuna cannot sample a log-scaled value on a step grid, so
  ``double`` parameters with both ``step`` and a log distribution, and ``int`` parameters with a
  log distribution and a ``step`` other than 1, are rejected by :func:`space_problems` (grid
  search enumerates such grids and accepts them).
* **Ranges not divisible by ``step``.** ``max`` is lowered to the last point of the grid
  (``min + k * step``), as Optuna would do, but without Optuna's warning.

History values go the other way through :func:`optuna_params`: values are converted to the
parameter's type, checked against the feasible space, and snapped onto the distribution's grid
and bounds (floating-point noise from storage must not make Optuna reject a trial). A value that
is not in the space (the spec changed since the trial ran) makes the whole trial unusable.
"""

from __future__ import annotations

import contextlib
import decimal
import math
from collections.abc import Mapping, Sequence
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from tuner.space import Parameter, ParameterKind, SearchSpace
from tuner.trials import ParamValue

__all__ = [
    "distribution",
    "distributions",
    "optuna_params",
    "point_key",
    "space_problems",
]


def space_problems(space: SearchSpace) -> list[str]:
    """Parameters the Optuna-backed algorithms cannot represent, one message each."""
    problems = []
    for p in space:
        if not p.log:
            continue
        step = p.step
        if p.kind is ParameterKind.DOUBLE and step is not None:
            problems.append(
                f"parameter {p.name!r}: step cannot be combined with distribution "
                f"{p.distribution} for a double (Optuna samples log-scaled values "
                "continuously); remove step or use a linear distribution"
            )
        elif p.kind is ParameterKind.INT and step is not None and step != 1:
            problems.append(
                f"parameter {p.name!r}: an int with distribution "
                f"{p.distribution} supports only step 1 (got {step:g})"
            )
    return problems


def distribution(p: Parameter) -> BaseDistribution:
    """The Optuna distribution of one (valid, see :func:`space_problems`) parameter."""
    if p.kind is ParameterKind.INT:
        low, high = int(p.low), int(p.high)
        step = int(p.step or 1)
        high = low + (high - low) // step * step
        return IntDistribution(low, high, log=p.log, step=step)
    if p.kind is ParameterKind.DOUBLE:
        step_f = p.step
        if step_f is None or p.log:
            return FloatDistribution(p.low, p.high, log=p.log)
        return FloatDistribution(p.low, _grid_high(p.low, p.high, step_f), step=step_f)
    return CategoricalDistribution(list(p.choices))


def _grid_high(low: float, high: float, step: float) -> float:
    # The same decimal arithmetic as Optuna's own adjustment, so that Optuna finds nothing to fix.
    d_low, d_high, d_step = (decimal.Decimal(str(x)) for x in (low, high, step))
    remainder = (d_high - d_low) % d_step
    if remainder == 0:
        return high
    return float((d_high - d_low) // d_step * d_step + d_low)


def distributions(space: SearchSpace) -> dict[str, BaseDistribution]:
    """The Optuna search space, in the space's parameter order."""
    return {p.name: distribution(p) for p in space}


def optuna_params(
    parameters: Sequence[Parameter],
    space: Mapping[str, BaseDistribution],
    values: Mapping[str, Any],
) -> dict[str, Any] | None:
    """A stored trial's parameters as Optuna external values, or ``None`` if not in the space.

    Parameters the spec no longer has are ignored; a missing or out-of-space value rejects the
    trial.
    """
    out: dict[str, Any] = {}
    for p in parameters:
        if p.name not in values:
            return None
        try:
            value = p.convert(values[p.name])
        except (TypeError, ValueError, OverflowError):
            return None
        if not p.contains(value):
            return None
        snapped = _snap(space[p.name], value)
        if snapped is None:
            return None
        out[p.name] = snapped
    return out


def _snap(dist: BaseDistribution, value: ParamValue) -> Any:
    if isinstance(dist, CategoricalDistribution):
        for choice in dist.choices:
            if choice == value:
                return choice
        return None
    assert not isinstance(value, str)
    if isinstance(dist, IntDistribution):
        k = round((value - dist.low) / dist.step)
        return min(max(dist.low + k * dist.step, dist.low), dist.high)
    assert isinstance(dist, FloatDistribution)
    v = float(value)
    if dist.step is not None:
        v = dist.low + round((v - dist.low) / dist.step) * dist.step
    return min(max(v, dist.low), dist.high)


def point_key(parameters: Sequence[Parameter], values: Mapping[str, Any]) -> tuple[Any, ...]:
    """A hashable identity of a parameter set, tolerant to float noise (12 significant digits).

    Used to recognise, in the history, the trials made from suggestions this process handed out.
    ``1`` and ``1.0`` are the same key, as they are the same discrete value.
    """
    key: list[Any] = []
    for p in parameters:
        v = values.get(p.name)
        with contextlib.suppress(TypeError, ValueError, OverflowError):
            v = p.convert(v)
        if isinstance(v, float) and math.isfinite(v):
            v = float(f"{v:.12g}")
        key.append(v)
    return tuple(key)
