"""Write the structure of a ``batch/v1`` Job that spec validation checks trial templates against.

The ``kubernetes`` client's models hold the Kubernetes OpenAPI schema (``openapi_types`` and
``attribute_map`` of every model). This module walks them from ``V1Job`` and writes the small
table :mod:`tuner.spec.jobschema` reads, so that validating a spec needs neither the client
(an optional extra) nor a JSON-schema library. Regenerate after upgrading the client::

    python -m tuner.k8s.schema_gen > tuner/spec/job_schema.json
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from kubernetes.client import models

_LIST = re.compile(r"^List\[(.+)\]$")
_DICT = re.compile(r"^Dict\[str, (.+)\]$")
_SCALARS = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
"""Client type names of JSON scalars; ``object`` (IntOrString, raw JSON) and ``datetime`` are
kept loose (``any``)."""


def field_type(name: str, pending: list[str]) -> Any:
    """A client type name as the table writes it; model names are queued for a visit."""
    if m := _LIST.match(name):
        return [field_type(m.group(1), pending)]
    if m := _DICT.match(name):
        return {"*": field_type(m.group(1), pending)}
    if name in _SCALARS:
        return _SCALARS[name]
    if hasattr(models, name):
        pending.append(name)
        return name
    return "any"


def job_schema() -> dict[str, Any]:
    """``{"root": "V1Job", "types": {model: {jsonField: type}}}`` of every model a Job reaches."""
    types: dict[str, dict[str, Any]] = {}
    pending = ["V1Job"]
    while pending:
        name = pending.pop()
        if name in types:
            continue
        model = getattr(models, name)
        types[name] = {
            model.attribute_map[attr]: field_type(kind, pending)
            for attr, kind in sorted(model.openapi_types.items())
        }
    return {"root": "V1Job", "types": dict(sorted(types.items()))}


def main() -> None:
    json.dump(job_schema(), sys.stdout, separators=(",", ":"), sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
