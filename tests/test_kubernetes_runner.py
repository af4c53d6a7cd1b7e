"""The Kubernetes runner without a cluster: what it accepts, the Job it makes, its verdicts.

The pure parts live in tuner.k8s (tests/test_k8s_gjson.py, tests/test_k8s_jobs.py,
tests/test_k8s_watching.py); the runner against a real apiserver is tested in
tests/k8s/test_kubernetes_runner.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import experiment_dict

pytest.importorskip("kubernetes")
from kubernetes import client

from tuner.k8s.gjson import compile_condition
from tuner.k8s.jobs import experiment_owner_reference, job_name
from tuner.runners.kubernetes import KubernetesHandle, KubernetesRunner
from tuner.spec import JOB_FAILURE_CONDITION, JOB_SUCCESS_CONDITION, Experiment, load_spec
from tuner.templates import render_trial
from tuner.trials import Trial


@pytest.fixture
def runner() -> Iterator[KubernetesRunner]:
    # A client configuration pointing nowhere: these tests send no request.
    r = KubernetesRunner(
        client.ApiClient(client.Configuration()),
        owner_reference=lambda e: experiment_owner_reference(e.name, "uid-1"),
    )
    yield r
    r.close()
    r.api.close()


def experiment(**template: Any) -> Experiment:
    data = experiment_dict()
    data["spec"]["trialTemplate"].update(template)
    return load_spec(data)


def test_conditions_outside_the_gjson_subset_are_rejected() -> None:
    bad = experiment(successCondition="status.#(type~1)")
    (error,) = KubernetesRunner.problems(bad)
    assert error.path == "spec.trialTemplate.successCondition"
    assert KubernetesRunner.problems(experiment()) == []


def test_manifest_carries_the_runners_owner(runner: KubernetesRunner) -> None:
    exp = experiment()
    trial = Trial(name="exp-0001", number=1, parameters={"x": 0.5, "n": 1})
    job = runner.manifest(exp, trial, render_trial(exp, trial), {"TUNER_TRIAL": "exp-0001"})
    assert job["metadata"]["name"] == job_name(exp, trial) == "exp-0001"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


def test_handle_verdict_follows_the_template_conditions(runner: KubernetesRunner) -> None:
    handle = KubernetesHandle(
        runner,
        namespace="default",
        name="exp-0001",
        uid="u1",
        trial_label="exp-0001",
        container="main",
        retain=False,
        success=compile_condition(JOB_SUCCESS_CONDITION),
        failure=compile_condition(JOB_FAILURE_CONDITION),
    )
    assert handle.ref == "exp-0001"
    assert handle.verdict({"status": {}}) is None
    assert handle.verdict({"status": {"conditions": [{"type": "Complete", "status": "True"}]}})
    failed = {"status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    assert handle.verdict(failed) is False
