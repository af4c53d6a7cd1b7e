"""Check a trial's ``batch/v1`` Job against the Job's structure, as Katib's validator does.

Katib converts the template into its Go ``batchv1.Job`` and refuses it when a field does not
survive the conversion (an unknown field, a list written as a mapping). Here the same structure
comes from ``job_schema.json`` (written by :mod:`tuner.k8s.schema_gen` from the ``kubernetes``
client's models), so the check runs in the default install. Scalars are not checked against
their types: a ``${trialParameters.x}`` placeholder may stand where a number goes.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

from tuner.errors import FieldError

_MODEL_PREFIX = re.compile(r"^(Core)?V\d+((alpha|beta)\d+)?")


@cache
def _schema() -> dict[str, Any]:
    text = resources.files("tuner.spec").joinpath("job_schema.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def job_structure_errors(job: Any, path: str) -> list[FieldError]:
    """Every unknown field and mis-shaped value of ``job`` (a Job manifest) under ``path``."""
    schema = _schema()
    errors: list[FieldError] = []
    _check(job, schema["root"], path, schema["types"], errors)
    return errors


def _check(
    value: Any, kind: Any, path: str, types: dict[str, Any], errors: list[FieldError]
) -> None:
    if value is None or kind == "any":
        return  # null is "unset" in Kubernetes manifests
    if isinstance(kind, list):
        if not isinstance(value, list):
            errors.append(FieldError(path, f"must be a list (got {_shape(value)})"))
            return
        for i, item in enumerate(value):
            _check(item, kind[0], f"{path}[{i}]", types, errors)
        return
    if isinstance(kind, dict):
        if not isinstance(value, dict):
            errors.append(FieldError(path, f"must be a mapping (got {_shape(value)})"))
            return
        for key, item in value.items():
            _check(item, kind["*"], f"{path}.{key}", types, errors)
        return
    fields = types.get(kind)
    if fields is None:
        if isinstance(value, dict | list):
            errors.append(FieldError(path, f"must be a {_name(kind)} value (got {_shape(value)})"))
        return
    if not isinstance(value, dict):
        errors.append(FieldError(path, f"must be a mapping ({_name(kind)}; got {_shape(value)})"))
        return
    for key, item in value.items():
        if key not in fields:
            errors.append(FieldError(f"{path}.{key}", f"unknown field of {_name(kind)}"))
            continue
        _check(item, fields[key], f"{path}.{key}", types, errors)


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _name(kind: str) -> str:
    """``V1PodSpec`` -> ``PodSpec``: the Kubernetes kind, without the client's prefix."""
    return _MODEL_PREFIX.sub("", kind)
