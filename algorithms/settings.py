"""One declarative schema for the ``algorithmSettings`` of every algorithm and stopping rule.

Katib writes settings as ``{name, value}`` string pairs. A :class:`Schema` lists the settings an
algorithm or a rule accepts (name, parser with its bounds, default, description); its
:meth:`Schema.parse` turns a ``Mapping[str, str]`` into typed values plus a list of
``(setting, problem)`` messages, which the spec validator turns into field paths
(``spec.algorithm.algorithmSettings[2]``). ``""`` as the setting names the choice as a whole.

The parsers raise :class:`ValueError` with the message to report. Two wordings exist, kept as
users see them today: the suggestion algorithms' (``must be an integer >= 0, got 'x'``) and the
stopping rules', which tell a value that is not a number from one out of bounds.

Example:
    >>> schema = Schema("demo", (Setting("n", at_least(1), default=3, description="trials"),))
    >>> schema.parse({"n": "0"})
    ({}, [('n', "must be an integer >= 1, got '0'")])
    >>> schema.parse({})
    ({'n': 3}, [])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Parser",
    "Problems",
    "Schema",
    "Setting",
    "at_least",
    "bounded_float",
    "integer",
    "one_of",
    "open_interval",
    "text",
]

Parser = Callable[[str], Any]
"""Reads one setting's text; raises :class:`ValueError` with the message to report."""

Problems = list[tuple[str, str]]
"""``(setting name or "", message)`` per problem; empty when valid."""


def _fmt(x: float) -> str:
    return f"{x:.6g}"


# -- the suggestion algorithms' wording


def at_least(minimum: int) -> Parser:
    """An integer ``>= minimum``."""

    def parse(value: str) -> int:
        try:
            n = int(value.strip())
        except ValueError:
            raise ValueError(f"must be an integer >= {minimum}, got {value!r}") from None
        if n < minimum:
            raise ValueError(f"must be an integer >= {minimum}, got {value!r}")
        return n

    return parse


def open_interval(low: float, high: float | None, description: str) -> Parser:
    """A finite float in ``(low, high)``, or ``(low, inf)`` when ``high`` is ``None``."""

    def parse(value: str) -> float:
        try:
            x = float(value.strip())
        except ValueError:
            raise ValueError(f"must be {description}, got {value!r}") from None
        if not (math.isfinite(x) and x > low and (high is None or x < high)):
            raise ValueError(f"must be {description}, got {value!r}")
        return x

    return parse


def one_of(choices: Sequence[str], unsupported: Mapping[str, str] | None = None) -> Parser:
    """One of ``choices``; values in ``unsupported`` are rejected with their own message."""

    def parse(value: str) -> str:
        if value in choices:
            return value
        if unsupported and value in unsupported:
            raise ValueError(unsupported[value])
        raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")

    return parse


# -- the stopping rules' wording


def integer(low: int) -> Parser:
    """An integer ``>= low``; a text that is no integer is reported as such."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
        if value < low:
            raise ValueError(f"must be an integer >= {low}, got {value}")
        return value

    return parse


def bounded_float(
    low: float | None = None, high: float | None = None, *, low_open: bool = False
) -> Parser:
    """A finite float in ``[low, high]`` (``(low, high]`` with ``low_open``); bounds optional."""

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{text!r} is not a finite number")
        if low is not None and (value < low or (low_open and value == low)):
            raise ValueError(f"must be {'>' if low_open else '>='} {_fmt(low)}, got {text}")
        if high is not None and value > high:
            raise ValueError(f"must be <= {_fmt(high)}, got {text}")
        return value

    return parse


def text(value: str) -> str:
    """Any text (a parameter name, for instance); never fails."""
    return value


# -- the schema


@dataclass(frozen=True)
class Setting:
    """One accepted setting.

    Args:
        name: the setting's name as written in ``algorithmSettings``.
        parse: reads the text (see the parser factories of this module).
        default: the value when the setting is absent (``None``: no value).
        required: whether the setting must be given.
        description: what the setting means, for messages and docs.
        missing: the message when a required setting is absent; ``{owner}`` and
            ``{description}`` are filled in.
    """

    name: str
    parse: Parser
    default: Any = None
    required: bool = False
    description: str = ""
    missing: str = "is required by {owner}"


@dataclass(frozen=True)
class Schema:
    """The settings an algorithm or rule (``owner``) accepts, in the order users are told.

    Args:
        owner: the algorithm or rule name, for messages.
        settings: the accepted settings.
    """

    owner: str
    settings: tuple[Setting, ...]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.settings]

    def get(self, name: str) -> Setting | None:
        return next((s for s in self.settings if s.name == name), None)

    def parse(self, raw: Mapping[str, str]) -> tuple[dict[str, Any], Problems]:
        """Typed values (defaults filled in) and every problem.

        Unknown and unparsable settings are reported in the order of ``raw``, then the required
        settings that are absent, in the schema's order.
        """
        values: dict[str, Any] = {}
        problems: Problems = []
        for key, text in raw.items():
            setting = self.get(key)
            if setting is None:
                problems.append(
                    (key, f"unknown setting for {self.owner}; known: {', '.join(self.names)}")
                )
                continue
            try:
                values[key] = setting.parse(text)
            except ValueError as e:
                problems.append((key, str(e)))
        for setting in self.settings:
            if setting.name in raw:
                continue
            if setting.required:
                message = setting.missing.format(owner=self.owner, description=setting.description)
                problems.append((setting.name, message))
            elif setting.default is not None:
                values[setting.name] = setting.default
        return values, problems

    def renamed(self, owner: str) -> Schema:
        """The same schema for another algorithm name (``tpe`` and ``multivariate-tpe``)."""
        return Schema(owner, self.settings)
