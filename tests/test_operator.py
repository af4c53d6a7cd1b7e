"""The operator's pure parts: resource -> experiment, spec edits, and the status it writes
(validated against the CRD's status schema). The watch loop runs in tests/k8s/test_e2e.py."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import experiment_dict
from tuner.errors import FieldError, SpecError
from tuner.templates import RESOURCE_UID_ANNOTATION

pytest.importorskip("kubernetes", reason="needs the client: pip install -e '.[kubernetes]'")
jsonschema = pytest.importorskip("jsonschema")

from tuner.operator.status import (  # noqa: E402  (the package imports kubernetes)
    edit_rejected_condition,
    edits_ignored_condition,
    experiment_from_resource,
    failed_status,
    resource_owner_reference,
    resource_status,
    spec_changes,
    spec_error_text,
)

CRD = Path(__file__).resolve().parents[1] / "deploy" / "crd" / "experiments.tuner.dev.yaml"


def status_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema["properties"]["status"]


def resource(name: str = "exp", **spec: Any) -> dict[str, Any]:
    data = experiment_dict(name, **spec)
    data["apiVersion"] = "tuner.dev/v1beta1"
    data["metadata"].update(
        uid="0b5e-uid",
        resourceVersion="42",
        generation=3,
        labels={"team": "a"},
        annotations={
            "kubectl.kubernetes.io/last-applied-configuration": "{...}",
            "note": "kept",
        },
    )
    return data


def test_experiment_from_resource_keeps_the_uid_for_owner_references() -> None:
    experiment = experiment_from_resource(resource())
    meta = experiment.metadata
    assert meta.annotations == {"note": "kept", RESOURCE_UID_ANNOTATION: "0b5e-uid"}
    assert meta.labels == {"team": "a"}
    assert "resourceVersion" not in (meta.model_extra or {})
    owner = resource_owner_reference(experiment)
    assert owner is not None
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Experiment", "exp", "0b5e-uid")
    assert owner["apiVersion"] == "tuner.dev/v1beta1" and owner["controller"] is True
    plain = experiment_from_resource(resource())
    plain.metadata.annotations.clear()
    assert resource_owner_reference(plain) is None


def test_invalid_resource_raises_with_field_paths() -> None:
    bad = resource()
    bad["spec"]["parameters"][0]["feasibleSpace"] = {"min": "3", "max": "1"}
    with pytest.raises(SpecError) as raised:
        experiment_from_resource(bad)
    assert any(e.path.startswith("spec.parameters[0]") for e in raised.value.errors)


def test_spec_changes_split_budget_from_the_rest() -> None:
    stored = experiment_from_resource(resource())
    edited = copy.deepcopy(resource())
    edited["spec"]["maxTrialCount"] = 9
    del edited["spec"]["maxFailedTrialCount"]
    edited["spec"]["objective"]["goal"] = 0.1
    budget, ignored = spec_changes(experiment_from_resource(edited), stored)
    assert budget == {"maxTrialCount": 9, "maxFailedTrialCount": None}
    assert ignored == ["spec.objective"]
    assert spec_changes(stored, stored) == ({}, [])


def summary(optimal: bool) -> dict[str, Any]:
    now = datetime(2024, 5, 1, tzinfo=UTC).isoformat()
    best = {
        "bestTrialName": "exp-0002",
        "parameterAssignments": [{"name": "x", "value": 0.25}, {"name": "n", "value": 3}],
        "observation": {
            "metrics": [{"name": "accuracy", "value": 0.9}, {"name": "loss", "value": 0.06}]
        },
    }
    return {
        "phase": "Running",
        "reason": None,
        "message": None,
        "conditions": [
            {
                "type": "Created",
                "status": "True",
                "reason": "ExperimentCreated",
                "message": "m",
                "lastTransitionTime": now,
            },
            {
                "type": "Running",
                "status": "True",
                "reason": "ExperimentRunning",
                "message": None,
                "lastTransitionTime": now,
            },
        ],
        "trials": 5,
        "trialCounts": {"Running": 2, "Succeeded": 2, "Failed": 1},
        "currentOptimalTrial": best if optimal else None,
        "totalSteps": 30,
        "stepsWithoutStopping": 30,
        "startTime": now,
        "completionTime": None,
    }


@pytest.mark.parametrize("optimal", [True, False])
def test_status_fits_the_crd_schema(optimal: bool) -> None:
    status = resource_status(
        summary(optimal),
        generation=3,
        objective="loss",
        metric_ranges={"loss": (0.06, 0.26, 0.06)},
        conditions=[{"type": "SpecChangeIgnored", "status": "True", "reason": "r", "message": "m"}],
    )
    jsonschema.validate(status, status_schema())
    assert status["observedGeneration"] == 3
    assert (status["trialsRunning"], status["trialsSucceeded"], status["trialsFailed"]) == (2, 2, 1)
    assert status["trialsKilled"] == 0
    assert "completionTime" not in status and "reason" not in status  # no nulls
    assert [c["type"] for c in status["conditions"]] == ["Created", "Running", "SpecChangeIgnored"]
    assert "message" not in status["conditions"][1]
    if optimal:
        best = status["currentOptimalTrial"]
        assert best["objectiveValue"] == 0.06
        assert best["parameterAssignments"] == [
            {"name": "x", "value": "0.25"},
            {"name": "n", "value": "3"},
        ]
        metrics = {m["name"]: m for m in best["observation"]["metrics"]}
        assert metrics["loss"] == {"name": "loss", "min": "0.06", "max": "0.26", "latest": "0.06"}
        assert metrics["accuracy"]["latest"] == "0.9"  # no range given: the stored value
    else:
        assert "currentOptimalTrial" not in status


def test_failed_status_fits_the_crd_schema() -> None:
    status = failed_status("InvalidSpec", "invalid spec: spec.x: bad", 1)
    jsonschema.validate(status, status_schema())
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidSpec")


def test_edit_conditions_say_what_was_not_applied_and_fit_the_crd_schema() -> None:
    error = SpecError([FieldError("spec.maxTrialCount", "must be positive")])
    rejected = edit_rejected_condition(error)
    assert (rejected["type"], rejected["reason"]) == ("SpecChangeRejected", "InvalidSpec")
    assert rejected["message"].endswith("spec.maxTrialCount: must be positive")
    ignored = edits_ignored_condition(["spec.algorithm", "spec.objective"])
    assert ignored["type"] == "SpecChangeIgnored"
    assert ignored["message"].startswith("spec.algorithm, spec.objective changed and are ignored")
    status = failed_status("InvalidSpec", spec_error_text(error), 2)
    status["conditions"] += [rejected, ignored]
    jsonschema.validate(status, status_schema())


def test_the_deployments_command_line_parses() -> None:
    from tuner.cli.parser import build_parser as _parser

    deployment = Path(__file__).resolve().parents[1] / "deploy" / "base" / "deployment.yaml"
    container = yaml.safe_load(deployment.read_text())["spec"]["template"]["spec"]["containers"][0]
    args = _parser().parse_args(container["args"])
    assert (args.runner, args.no_operator, args.namespace_scope) == ("kubernetes", False, None)
    env = {e["name"] for e in container["env"]}
    assert "TUNER_API_URL" in env  # --trial-api-url's default


def test_leader_lease_names_separate_installations_and_scopes() -> None:
    from tuner.operator.election import lease_name, micro_time

    assert lease_name("default") == "tuner-operator"
    assert lease_name("blue") == "tuner-operator-blue"
    assert lease_name("default", "team-a") == "tuner-operator-team-a"
    assert lease_name("blue", "team-a") == "tuner-operator-blue-team-a"
    stamp = micro_time(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC))
    assert stamp == "2026-01-02T03:04:05.000006Z"  # a MicroTime the apiserver accepts


def test_rest_resources_are_recognized_and_aged() -> None:
    from tuner.operator.mirror import STORED_ANNOTATION, resource_age, stored_over_rest

    marked = {"metadata": {"annotations": {STORED_ANNOTATION: "api"}}}
    assert stored_over_rest(marked)
    assert not stored_over_rest({"metadata": {"annotations": {}}})
    assert not stored_over_rest({})
    old = {"metadata": {"creationTimestamp": "2020-01-01T00:00:00Z"}}
    assert resource_age(old) > 3600
    assert resource_age({"metadata": {}}) == 0.0  # unknown: young, the REST request may be storing
