"""Pure parts of the Kubernetes runner: names, conditions, outcomes (no cluster needed).

The runner against a real apiserver is tested in tests/k8s/test_kubernetes_runner.py.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("kubernetes")

from tuner.k8s.gjson import compile_condition
from tuner.k8s.jobs import dns_label, image_pull_problem, is_dns_label, job_outcome
from tuner.spec import JOB_FAILURE_CONDITION, JOB_SUCCESS_CONDITION


def job(*conditions: dict[str, str]) -> dict[str, Any]:
    return {"status": {"conditions": list(conditions)}}


def pod(state: dict[str, Any], last: dict[str, Any] | None = None, name: str = "p") -> Any:
    status = {"name": "main", "image": "img", "state": state, "lastState": last or {}}
    return {"metadata": {"name": name}, "status": {"containerStatuses": [status]}}


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


@pytest.mark.parametrize("length", [1, 40, 63, 64, 68, 200])
def test_dns_labels_at_any_length(length: int) -> None:
    text = ("Exp_" + "x" * length)[:length] + "-0001"
    label = dns_label(text)
    assert is_dns_label(label) and label == dns_label(text)
    assert dns_label("exp-0001") == "exp-0001"
    assert dns_label("a" * 70 + "-0001") != dns_label("a" * 70 + "-0002")


def test_outcomes_name_the_reason() -> None:
    backoff = job({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"})
    out = job_outcome(
        backoff, [pod({"terminated": {"exitCode": 3, "reason": "Error"}})], "main", False
    )
    assert (out.reason, out.exit_code) == ("BackoffLimitExceeded", 3)
    assert out.message.startswith("exit code 3")
    oom = [pod({"terminated": {"exitCode": 137, "reason": "OOMKilled"}})]
    assert job_outcome(backoff, oom, "main", False).reason == "OOMKilled"
    deadline = job({"type": "Failed", "status": "True", "reason": "DeadlineExceeded"})
    assert job_outcome(deadline, [], "main", False).reason == "DeadlineExceeded"
    done = job_outcome(job({"type": "Complete", "status": "True"}), [], "main", True)
    assert (done.succeeded, done.reason, done.exit_code) == (True, "Completed", 0)


def test_image_pull_errors_are_found() -> None:
    waiting = pod({"waiting": {"reason": "ImagePullBackOff", "message": "back-off pulling"}})
    assert image_pull_problem([waiting]) == ("ImagePullBackOff", "container main: back-off pulling")
    assert image_pull_problem([pod({"waiting": {"reason": "ContainerCreating"}})]) is None
    assert image_pull_problem([pod({"running": {}})]) is None
