"""Reading a spec: text or file -> pydantic models -> Katib's rules, every problem with its path."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tuner.errors import FieldError, SpecError
from tuner.limits import MAX_DEPTH, TooDeep, check_depth
from tuner.spec.models import Experiment
from tuner.spec.validation import validate, with_names


def load_spec(source: str | Path | Mapping[str, Any]) -> Experiment:
    """Parse and validate a spec from a path, YAML/JSON text or a mapping.

    Raises:
        SpecError: with one :class:`FieldError` per problem.
    """
    data = _read(source)
    if not isinstance(data, Mapping):
        raise SpecError([FieldError("<root>", "the spec must be a mapping (an Experiment object)")])
    try:
        check_depth(data)
    except TooDeep as e:
        raise SpecError([FieldError("<document>", str(e))]) from None
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as e:
        raise SpecError(with_names([_pydantic_error(err) for err in e.errors()], data)) from e
    problems = validate(experiment)
    if problems:
        raise SpecError(with_names(problems, data))
    return experiment


def _read(source: str | Path | Mapping[str, Any]) -> Any:
    if isinstance(source, Mapping):
        return source
    if isinstance(source, Path) or ("\n" not in source and not source.lstrip().startswith("{")):
        path = Path(source)
        try:
            text = path.read_text()
        except OSError as e:
            raise SpecError([FieldError(str(path), f"cannot read spec file: {e.strerror}")]) from e
    else:
        text = source
    try:
        check_yaml_depth(text)
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<document>"
        raise SpecError([FieldError(where, f"not valid YAML/JSON: {e}")]) from e
    except TooDeep as e:
        raise SpecError([FieldError("<document>", str(e))]) from None


_EventParser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed
_OPEN = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSE = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def check_yaml_depth(text: str, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`TooDeep` when YAML (or JSON) text nests deeper than ``limit``.

    Reads parser events only, stopping at the first level too deep: the composer recurses once
    per level (a RecursionError past ~1000), and PyYAML's pure-Python scanner slows down with
    every open level (a second for 3,000 ``[``). Other syntax errors are left to the loader.
    """
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_EventParser):
            if isinstance(event, _OPEN):
                depth += 1
                if depth > limit:
                    raise TooDeep(limit)
            elif isinstance(event, _CLOSE):
                depth -= 1
    except yaml.YAMLError as e:
        if "maximum nesting depth" in str(e):  # libyaml reads ahead and stops at 1000 levels
            raise TooDeep(limit) from None
        # Any other syntax error: the loader that follows reports it in its own words.


def format_path(loc: Sequence[int | str]) -> str:
    """``("spec", "parameters", 1, "feasibleSpace")`` → ``spec.parameters[1].feasibleSpace``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


_PYDANTIC_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}


def _pydantic_error(err: Mapping[str, Any]) -> FieldError:
    # Drop pydantic's internal locations (function-after[...], union member names).
    loc = [p for p in err["loc"] if isinstance(p, int) or not re.match(r"^[a-z-]+\[", str(p))]
    message = _PYDANTIC_MESSAGES.get(err["type"], err["msg"])
    if err["type"] in ("enum", "literal_error"):
        message = f"{err['msg']} (got {err.get('input')!r})"
    return FieldError(format_path(loc), message)
