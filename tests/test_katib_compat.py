"""The pure parts of the katib-compat mode: resources of Katib's ``kubeflow.org`` group, the
status in Katib's shape and the Trial objects' contents (the cluster side runs in
tests/k8s/test_katib_sdk.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.helpers import experiment_dict
from tuner.storage import ExperimentRecord
from tuner.templates import RESOURCE_UID_ANNOTATION
from tuner.trials import ExperimentPhase, Trial, TrialState

pytest.importorskip("kubernetes", reason="needs the client: pip install -e '.[kubernetes]'")

from tuner.operator.status import (
    GROUP_ANNOTATION,
    experiment_from_resource,
    katib_conditions,
    katib_status,
    resource_owner_reference,
    resource_status,
    trial_lists,
)
from tuner.operator.suggestion_object import suggestion_spec, suggestion_status
from tuner.operator.trial_objects import fingerprint, trial_spec

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def katib_resource(**annotations: str) -> dict[str, Any]:
    data = experiment_dict("exp")
    data["apiVersion"] = "kubeflow.org/v1beta1"
    data["metadata"].update(uid="u-1", annotations=annotations)
    return data


def test_a_kubeflow_resource_owns_its_jobs_through_its_own_api_version() -> None:
    experiment = experiment_from_resource(katib_resource())
    assert experiment.metadata.annotations[GROUP_ANNOTATION] == "kubeflow.org"
    assert experiment.metadata.annotations[RESOURCE_UID_ANNOTATION] == "u-1"
    owner = resource_owner_reference(experiment)
    assert owner is not None
    assert (owner["apiVersion"], owner["kind"], owner["uid"]) == (
        "kubeflow.org/v1beta1",
        "Experiment",
        "u-1",
    )


def test_a_tuner_resource_cannot_claim_another_group() -> None:
    data = katib_resource(**{GROUP_ANNOTATION: "kubeflow.org"})
    data["apiVersion"] = "tuner.dev/v1beta1"
    experiment = experiment_from_resource(data)
    assert GROUP_ANNOTATION not in experiment.metadata.annotations
    owner = resource_owner_reference(experiment)
    assert owner is not None and owner["apiVersion"] == "tuner.dev/v1beta1"


def summary(phase: str, conditions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "phase": phase,
        "reason": "ExperimentMaxTrialsReached",
        "conditions": conditions,
        "trials": 4,
        "trialCounts": {"Created": 1, "Running": 1, "Succeeded": 2},
        "currentOptimalTrial": {
            "bestTrialName": "exp-2",
            "parameterAssignments": [{"name": "x", "value": 0.5}],
            "observation": {"metrics": [{"name": "loss", "value": 0.0}]},
        },
        "startTime": T0.isoformat(),
    }


def test_katib_status_has_katibs_counts_lists_and_conditions() -> None:
    ended = [
        {"type": "Created", "status": "True", "reason": "ExperimentCreated", "message": "m"},
        {
            "type": "Running",
            "status": "False",
            "reason": "ExperimentNotRunning",
            "message": "Experiment is not running",
            "lastTransitionTime": T0.isoformat(),
        },
        {"type": "Succeeded", "status": "True", "reason": "ExperimentMaxTrialsReached"},
    ]
    base = resource_status(
        summary("Succeeded", ended),
        generation=1,
        objective="loss",
        metric_ranges={"loss": (0.0, 0.3, 0.0)},
    )
    lists = trial_lists(
        [
            ("exp-1", TrialState.SUCCEEDED),
            ("exp-2", TrialState.SUCCEEDED),
            ("exp-3", TrialState.RUNNING),
            ("exp-4", TrialState.CREATED),
        ]
    )
    status = katib_status(base, lists)
    assert status["succeededTrialList"] == ["exp-1", "exp-2"]
    assert status["runningTrialList"] == ["exp-3"]
    assert status["pendingTrialList"] == ["exp-4"]
    assert "failedTrialList" not in status  # empty lists are left out, as Katib does
    assert (status["trialsPending"], status["trialsRunning"], status["trialsSucceeded"]) == (
        1,
        1,
        2,
    )
    assert "trialsCreated" not in status
    running = next(c for c in status["conditions"] if c["type"] == "Running")
    assert (running["status"], running["reason"]) == ("False", "ExperimentRunning")
    assert running["lastUpdateTime"] == T0.isoformat()
    assert status["conditions"][-1]["type"] == "Succeeded"  # Katib's printer column: the last
    best = status["currentOptimalTrial"]
    assert best["bestTrialName"] == "exp-2"
    assert best["observation"]["metrics"] == [
        {"name": "loss", "min": "0.0", "max": "0.3", "latest": "0.0"}
    ]
    assert best["parameterAssignments"] == [{"name": "x", "value": "0.5"}]


def test_a_stopped_experiment_reads_failed_to_katibs_clients() -> None:
    (c,) = katib_conditions([{"type": "Stopped", "status": "True", "reason": "ExperimentStopped"}])
    assert (c["type"], c["reason"]) == ("Failed", "ExperimentStopped")


def test_trial_spec_is_small_and_changes_are_fingerprinted() -> None:
    experiment = experiment_from_resource(katib_resource())
    trial = Trial(name="exp-abc", number=1, parameters={"lr": 0.01}, state=TrialState.RUNNING)
    spec = trial_spec(experiment, trial)
    assert spec["parameterAssignments"] == [{"name": "lr", "value": "0.01"}]
    assert (
        spec["objective"]["objectiveMetricName"] == experiment.spec.objective.objective_metric_name
    )
    assert "runSpec" not in spec and "trialTemplate" not in spec
    before = fingerprint(trial)
    trial.metrics["loss"] = 0.2
    assert fingerprint(trial) != before


def test_the_suggestion_summarizes_the_experiment() -> None:
    running = ExperimentRecord(
        id=1,
        namespace="default",
        name="exp",
        uid="u",
        experiment=experiment_from_resource(katib_resource()),
        phase=ExperimentPhase.RUNNING,
        reason=None,
        message=None,
        created_at=T0,
        started_at=T0,
        completed_at=None,
    )
    spec = suggestion_spec(running, 3)
    assert spec["requests"] == 3 and spec["algorithm"]["algorithmName"]
    status = suggestion_status(running, 3)
    assert status["suggestionCount"] == 3
    assert [(c["type"], c["status"]) for c in status["conditions"]] == [
        ("Created", "True"),
        ("Running", "True"),
    ]
    ended = replace(
        running,
        phase=ExperimentPhase.SUCCEEDED,
        reason="ExperimentMaxTrialsReached",
        completed_at=T0,
    )
    status = suggestion_status(ended, 3)
    assert [(c["type"], c["status"]) for c in status["conditions"]][1:] == [
        ("Running", "False"),
        ("Succeeded", "True"),
    ]
    assert status["conditions"][-1]["reason"] == "ExperimentMaxTrialsReached"
    assert status["completionTime"] == T0.isoformat()
