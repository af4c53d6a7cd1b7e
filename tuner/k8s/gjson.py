"""Success and failure conditions of Job trial templates: the GJSON subset Katib uses.

Pure: no Kubernetes client. A condition is compiled once (:func:`compile_condition`, which
rejects syntax outside the subset) and then evaluated against a Job as plain JSON.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

__all__ = ["Condition", "compile_condition"]


Condition = Callable[[Any], bool]
"""A compiled condition: whether it holds for a JSON document (a Job, camelCase keys)."""

_QUERY = re.compile(
    r"^#\((?P<key>[^=!<>%]+?)\s*(?P<op>==|!=|<=|>=|<|>|%|!%)\s*(?P<value>.+?)\)(?P<all>#?)$"
)


@functools.lru_cache(maxsize=256)
def compile_condition(expression: str) -> Condition:
    """Compile a GJSON condition like ``status.conditions.#(type=="Complete")#|#(status=="True")#``.

    Supported: dotted keys, array indexes, ``#`` (length), queries ``#(key op value)`` (first
    match) and ``#(key op value)#`` (all matches) with ``== != < <= > >= %`` (``%``: glob ``*``),
    and ``|`` pipes. After an all-matches query, the following dotted keys apply to every match,
    as in GJSON. The condition holds when the result exists and is not empty, false or null.

    Raises:
        ValueError: for syntax outside that subset.
    """
    segments = [_split(part, ".") for part in _split(expression, "|")]
    if not expression.strip() or any(not c for seg in segments for c in seg):
        raise ValueError(f"empty path component in condition {expression!r}")
    steps = [[_component(c) for c in seg] for seg in segments]

    def evaluate(document: Any) -> bool:
        value: Any = document
        for seg in steps:
            mapped = False
            for step in seg:
                value, mapped = step(value, mapped)
                if value is _MISSING:
                    return False
        return _truthy(value)

    return evaluate


_MISSING: Any = object()
_Step = Callable[[Any, bool], tuple[Any, bool]]


def _split(text: str, sep: str) -> list[str]:
    parts, depth, quote, current = [], 0, False, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current += text[i : i + 2]
            i += 2
            continue
        if ch == '"':
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if ch == sep and not quote and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
        i += 1
    if quote or depth:
        raise ValueError(f"unbalanced quotes or parentheses in {text!r}")
    parts.append(current)
    return parts


def _component(text: str) -> _Step:
    if text == "#":

        def length(value: Any, mapped: bool) -> tuple[Any, bool]:
            if mapped:
                return [len(v) for v in value if isinstance(v, list)], True
            return (len(value), False) if isinstance(value, list) else (_MISSING, False)

        return length
    if text.startswith("#("):
        m = _QUERY.match(text)
        if m is None:
            raise ValueError(f"unsupported query {text!r}")
        key = [k.replace("\\.", ".") for k in _split(m["key"].strip(), ".")]
        op, every = m["op"], bool(m["all"])
        try:
            literal = json.loads(m["value"])
        except json.JSONDecodeError as e:
            raise ValueError(f"query value in {text!r} must be a JSON literal") from e

        def matches(item: Any) -> bool:
            for k in key:
                if not isinstance(item, dict) or k not in item:
                    return False
                item = item[k]
            return _compare(item, op, literal)

        def query(value: Any, mapped: bool) -> tuple[Any, bool]:
            if not isinstance(value, list):
                return _MISSING, False
            hits = [v for v in value if matches(v)]
            if every:
                return hits, True
            return (hits[0], False) if hits else (_MISSING, False)

        return query
    name = text.replace("\\.", ".")

    def get(value: Any, mapped: bool) -> tuple[Any, bool]:
        if mapped:
            return [_get(v, name) for v in value if _get(v, name) is not _MISSING], True
        return _get(value, name), False

    return get


def _get(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return value.get(key, _MISSING)
    if isinstance(value, list) and key.isdigit():
        index = int(key)
        return value[index] if index < len(value) else _MISSING
    return _MISSING


def _compare(item: Any, op: str, literal: Any) -> bool:
    if op in ("%", "!%"):
        pattern = "^" + ".*".join(re.escape(p) for p in str(literal).split("*")) + "$"
        hit = isinstance(item, str) and re.match(pattern, item) is not None
        return hit if op == "%" else not hit
    if op == "==":
        return bool(item == literal)
    if op == "!=":
        return bool(item != literal)
    try:
        ops: dict[str, Callable[[Any, Any], bool]] = {
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
        }
        return ops[op](item, literal)
    except TypeError:
        return False


def _truthy(value: Any) -> bool:
    return value is not _MISSING and value not in (None, False, "", [], {})
