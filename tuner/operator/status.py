"""Experiment resources and the service's experiments, as plain data (no cluster needed).

The resource -> experiment mapping (:func:`experiment_from_resource`: the spec through
:func:`tuner.spec.load_spec`, the resource's uid kept in :data:`UID_ANNOTATION`, from which
:func:`resource_owner_reference` gives the trial Jobs an ownerReference to the resource); spec
edits (:func:`spec_changes`: only the budget fields :data:`BUDGET_FIELDS` can be edited); and the
status written back (:func:`resource_status`: :func:`tuner.views.experiment_summary` shaped to the
CRD's status schema, phase, reason, conditions, trial counts and the current optimal trial, never
a list of trials, so its size stays flat; :func:`failed_status` for a resource that cannot run).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tuner.errors import SpecError
from tuner.k8s.jobs import experiment_owner_reference
from tuner.spec import Experiment, load_spec
from tuner.storage import ExperimentRecord
from tuner.templates import RESOURCE_UID_ANNOTATION
from tuner.trials import TrialState

GROUP, VERSION, PLURAL = "tuner.dev", "v1beta1", "experiments"
API_VERSION = f"{GROUP}/{VERSION}"
KATIB_GROUP = "kubeflow.org"
"""Katib's own API group, reconciled as well when its Experiment CRD is installed."""
UID_ANNOTATION = RESOURCE_UID_ANNOTATION
GROUP_ANNOTATION = "tuner.dev/resource-group"
"""The API group of the resource an experiment came from (absent: :data:`GROUP`)."""
BUDGET_FIELDS = ("maxTrialCount", "parallelTrialCount", "maxFailedTrialCount")
INVALID_SPEC = "InvalidSpec"
_DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/",)  # last-applied-configuration: a spec copy

Key = tuple[str, str]
"""A resource's ``(namespace, name)``."""


def resource_owner_reference(experiment: Experiment) -> Mapping[str, Any] | None:
    """The ownerReference of an experiment's Jobs: its Experiment resource, if it has one."""
    uid = experiment.metadata.annotations.get(UID_ANNOTATION)
    if not uid:
        return None
    return experiment_owner_reference(
        experiment.name, uid, f"{experiment_group(experiment)}/{VERSION}"
    )


def experiment_group(experiment: Experiment) -> str:
    """The API group of the resource an experiment came from (:data:`GROUP_ANNOTATION`)."""
    return experiment.metadata.annotations.get(GROUP_ANNOTATION) or GROUP


def resource_group(record: ExperimentRecord) -> str:
    """The API group of the resource a stored experiment came from."""
    return experiment_group(record.experiment)


def resource_uid(record: ExperimentRecord) -> str | None:
    """The uid of the resource an experiment came from (``None``: submitted through the API)."""
    return record.experiment.metadata.annotations.get(UID_ANNOTATION)


def experiment_from_resource(obj: Mapping[str, Any]) -> Experiment:
    """The Experiment spec of a resource, its uid kept in :data:`UID_ANNOTATION`.

    Raises:
        SpecError: when the spec is invalid.
    """
    meta = obj.get("metadata") or {}
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if not k.startswith(_DROPPED_ANNOTATIONS)
    }
    annotations[UID_ANNOTATION] = str(meta.get("uid", ""))
    annotations.pop(GROUP_ANNOTATION, None)  # said by the resource's apiVersion only
    group = str(obj.get("apiVersion") or API_VERSION).partition("/")[0]
    if group != GROUP:
        annotations[GROUP_ANNOTATION] = group
    metadata: dict[str, Any] = {
        "name": meta.get("name"),
        "namespace": meta.get("namespace") or "default",
        "annotations": annotations,
    }
    if meta.get("labels"):
        metadata["labels"] = meta["labels"]
    return load_spec(
        {
            "apiVersion": obj.get("apiVersion", API_VERSION),
            "kind": obj.get("kind", "Experiment"),
            "metadata": metadata,
            "spec": obj.get("spec") or {},
        }
    )


def spec_changes(resource: Experiment, stored: Experiment) -> tuple[dict[str, Any], list[str]]:
    """``(budget changes for Service.edit_budget, names of other changed spec fields)``."""
    new, old = resource.dump()["spec"], stored.dump()["spec"]
    budget = {k: new.get(k) for k in BUDGET_FIELDS if new.get(k) != old.get(k)}
    ignored = sorted(
        f"spec.{k}"
        for k in set(new) | set(old)
        if k not in BUDGET_FIELDS and new.get(k) != old.get(k)
    )
    return budget, ignored


def spec_error_text(error: SpecError) -> str:
    """The field paths and messages of a spec error, on one line."""
    return "; ".join(f"{x.path}: {x.message}" for x in error.errors)


def edit_rejected_condition(error: SpecError) -> dict[str, Any]:
    """The status condition of an edited spec that is invalid (the stored one still runs)."""
    return {
        "type": "SpecChangeRejected",
        "status": "True",
        "reason": INVALID_SPEC,
        "message": f"the edited spec was not applied: {spec_error_text(error)}",
    }


def edits_ignored_condition(ignored: Sequence[str]) -> dict[str, Any]:
    """The status condition of edits to spec fields other than the budget (see
    :func:`spec_changes`)."""
    return {
        "type": "SpecChangeIgnored",
        "status": "True",
        "reason": "OnlyBudgetEditable",
        "message": (
            f"{', '.join(ignored)} changed and are ignored: only "
            f"{', '.join(BUDGET_FIELDS)} can be edited; delete and re-create the "
            "resource to change the rest"
        ),
    }


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def resource_status(
    summary: Mapping[str, Any],
    *,
    generation: int | None,
    objective: str,
    metric_ranges: Mapping[str, tuple[float, float, float]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The CR status of :func:`tuner.views.experiment_summary`, in the CRD's status schema.

    ``metric_ranges`` gives ``(min, max, latest)`` of each metric of the optimal trial.
    """
    counts = summary.get("trialCounts") or {}
    optimal = summary.get("currentOptimalTrial")
    best: dict[str, Any] | list[dict[str, Any]] | None = None
    if isinstance(optimal, list):  # several objectives: the Pareto front
        best = [_optimal(o, objective, {}) for o in optimal]
    elif optimal:
        best = _optimal(optimal, objective, metric_ranges or {})
    status = {
        "observedGeneration": generation,
        "phase": summary["phase"],
        "reason": summary.get("reason"),
        "message": summary.get("message"),
        "startTime": summary.get("startTime"),
        "completionTime": summary.get("completionTime"),
        "conditions": [*summary.get("conditions", []), *(conditions or [])],
        "trials": summary.get("trials", 0),
        "trialsCreated": counts.get("Created", 0),
        "trialsRunning": counts.get("Running", 0),
        "trialsSucceeded": counts.get("Succeeded", 0),
        "trialsFailed": counts.get("Failed", 0),
        "trialsKilled": counts.get("Killed", 0),
        "trialsEarlyStopped": counts.get("EarlyStopped", 0),
        "trialMetricsUnavailable": counts.get("MetricsUnavailable", 0),
        "currentOptimalTrial": best,
    }
    result: dict[str, Any] = _drop_none(status)
    return result


def _optimal(
    optimal: Mapping[str, Any],
    objective: str,
    ranges: Mapping[str, tuple[float, float, float]],
) -> dict[str, Any]:
    """One ``currentOptimalTrial`` entry in the CRD's shape."""
    metrics = []
    value = None
    for m in optimal["observation"]["metrics"]:
        if m["name"] == objective:
            value = m["value"]
        lo, hi, latest = ranges.get(m["name"], (m["value"], m["value"], m["value"]))
        metrics.append(
            {"name": m["name"], "min": _text(lo), "max": _text(hi), "latest": _text(latest)}
        )
    return {
        "bestTrialName": optimal["bestTrialName"],
        "objectiveValue": value,
        "parameterAssignments": [
            {"name": p["name"], "value": _text(p["value"])} for p in optimal["parameterAssignments"]
        ],
        "observation": {"metrics": metrics},
    }


TRIAL_LIST_KEYS = {
    TrialState.CREATED: "pendingTrialList",
    TrialState.RUNNING: "runningTrialList",
    TrialState.SUCCEEDED: "succeededTrialList",
    TrialState.FAILED: "failedTrialList",
    TrialState.KILLED: "killedTrialList",
    TrialState.EARLY_STOPPED: "earlyStoppedTrialList",
    TrialState.METRICS_UNAVAILABLE: "metricsUnavailableTrialList",
}
"""The trial name lists of Katib's ExperimentStatus, by trial state."""


def trial_lists(trials: Iterable[tuple[str, TrialState]]) -> dict[str, list[str]]:
    """Katib's trial name lists of ``(name, state)`` pairs (empty lists left out, as Katib)."""
    lists: dict[str, list[str]] = {}
    for name, state in trials:
        lists.setdefault(TRIAL_LIST_KEYS[state], []).append(name)
    return lists


def katib_conditions(conditions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Conditions as Katib writes them: ``lastUpdateTime`` beside ``lastTransitionTime``, and a
    ``Running`` condition that turned ``False`` keeps its running reason and message; a stopped
    experiment (Katib cannot stop one) is ``Failed``, so that Katib's clients see it ended."""
    shaped = []
    for c in conditions:
        c = {k: v for k, v in c.items() if v is not None}
        kind = str(c.get("reason") or "").removesuffix("NotRunning")
        if c["type"] == "Running" and c["status"] == "False" and kind in ("Experiment", "Trial"):
            c["reason"], c["message"] = f"{kind}Running", f"{kind} is running"
        if c["type"] == "Stopped":
            c["type"] = "Failed"
        if c.get("lastTransitionTime"):
            c.setdefault("lastUpdateTime", c["lastTransitionTime"])
        shaped.append(c)
    return shaped


def katib_status(status: Mapping[str, Any], lists: Mapping[str, list[str]]) -> dict[str, Any]:
    """A :func:`resource_status` in the shape of Katib's ExperimentStatus (for ``kubeflow.org``
    resources): Katib's conditions, ``trialsPending`` for the created trials that have not
    started, and the trial name lists (``runningTrialList``, ``succeededTrialList``...)."""
    shaped = {k: v for k, v in status.items() if k != "trialsCreated"}
    shaped["trialsPending"] = status.get("trialsCreated", 0)
    shaped["conditions"] = katib_conditions(status.get("conditions") or [])
    shaped.update({k: list(v) for k, v in lists.items() if v})
    return shaped


def failed_status(reason: str, message: str, generation: int | None) -> dict[str, Any]:
    """The status of a resource that cannot run."""
    result: dict[str, Any] = _drop_none(
        {
            "observedGeneration": generation,
            "phase": "Failed",
            "reason": reason,
            "message": message,
            "conditions": [
                {"type": "Failed", "status": "True", "reason": reason, "message": message}
            ],
        }
    )
    return result


def object_key(obj: Mapping[str, Any]) -> Key:
    """A resource's ``(namespace, name)``."""
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name", ""))


def object_uid(obj: Mapping[str, Any] | None) -> str:
    """A resource's ``metadata.uid`` (``""`` for none)."""
    return str(((obj or {}).get("metadata") or {}).get("uid", ""))


def object_generation(obj: Mapping[str, Any]) -> int | None:
    """A resource's ``metadata.generation``, if set."""
    value = (obj.get("metadata") or {}).get("generation")
    return int(value) if value is not None else None
