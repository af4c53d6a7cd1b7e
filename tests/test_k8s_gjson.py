"""The GJSON subset of Katib's success and failure conditions (pure: no Kubernetes client)."""

from __future__ import annotations

from typing import Any

import pytest

from tuner.k8s.gjson import compile_condition
from tuner.spec import JOB_FAILURE_CONDITION, JOB_SUCCESS_CONDITION


def job(*conditions: dict[str, str]) -> dict[str, Any]:
    return {"status": {"conditions": list(conditions)}}


def test_katib_job_conditions() -> None:
    ok, bad = compile_condition(JOB_SUCCESS_CONDITION), compile_condition(JOB_FAILURE_CONDITION)
    complete = job({"type": "Complete", "status": "True"})
    failed = job({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"})
    running = job()
    stale = job({"type": "Failed", "status": "False"})
    assert (ok(complete), bad(complete)) == (True, False)
    assert (ok(failed), bad(failed)) == (False, True)
    assert (ok(running), bad(running), ok({}), bad(stale)) == (False, False, False, False)


def test_other_gjson_forms() -> None:
    assert compile_condition("status.succeeded")({"status": {"succeeded": 1}})
    assert not compile_condition("status.succeeded")({"status": {}})
    assert compile_condition('status.conditions.#(type=="Complete").status')(
        job({"type": "Complete", "status": "True"})
    )
    assert compile_condition("status.conditions.#")(job({"type": "x"}))
    assert compile_condition('status.conditions.#(reason%"Backoff*")#')(
        job({"type": "Failed", "reason": "BackoffLimitExceeded"})
    )
    for broken in ("", "a..b", 'status.#(type=="x"', "status.#(type~1)"):
        with pytest.raises(ValueError):
            compile_condition(broken)
