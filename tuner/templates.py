"""Render a trial from the template: ``${trialParameters.x}`` and trial metadata references.

Substitution walks the parsed Job structure and replaces inside string values only, so a
parameter value is never re-parsed as YAML or passed through a shell: ``a; rm -rf x`` stays one
literal argument.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tuner.spec import CollectorKind, Experiment
from tuner.spec.trial_kinds import PrimaryNotFound, primary_container
from tuner.trials import ParamValue, Trial

EXPERIMENT_LABEL = "tuner.dev/experiment"
TRIAL_LABEL = "tuner.dev/trial"
RESOURCE_UID_ANNOTATION = "tuner.dev/resource-uid"
"""In a stored experiment's metadata: the uid of the Experiment resource it came from (set by
the operator only; its Jobs get an ownerReference to that resource)."""

_REF = re.compile(r"\$\{trialParameters\.([^}]*)\}")
_META = re.compile(r"^\$\{trialSpec\.(\w+)(?:\[([^\]]+)\])?\}$")


@dataclass(frozen=True)
class RenderedTrial:
    """What a runner needs: the full manifest (a Job, or another kind of trial) and the
    primary container's process (of the primary replica, for a distributed job)."""

    job: dict[str, Any]
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    container_name: str | None = None
    metrics_file: str | None = None  # the File (TensorFlowEvent) collector's path, as given


def format_value(value: ParamValue) -> str:
    """The text a parameter value becomes in the template (floats keep full precision)."""
    return repr(value) if isinstance(value, float) else str(value)


def trial_labels(experiment: Experiment, trial: Trial) -> dict[str, str]:
    return {EXPERIMENT_LABEL: experiment.name, TRIAL_LABEL: trial.name}


def render_trial(experiment: Experiment, trial: Trial) -> RenderedTrial:
    """Substitute the trial's values into the experiment's trial template."""
    template = experiment.spec.trial_template
    if template is None or template.trial_spec is None:
        raise ValueError(f"experiment {experiment.name} has no trial template (ask/tell only)")
    job = copy.deepcopy(template.trial_spec)
    meta = job.setdefault("metadata", {})
    labels = {**(meta.get("labels") or {}), **trial_labels(experiment, trial)}
    annotations = dict(meta.get("annotations") or {})
    values: dict[str, str] = {}
    for tp in template.trial_parameters:
        values[tp.name] = _reference_value(
            tp.reference, experiment, trial, job, labels, annotations
        )
    job = _substitute(job, values)
    meta = job.setdefault("metadata", {})
    meta["name"] = trial.name
    meta["namespace"] = experiment.namespace
    meta["labels"] = labels

    try:  # a distributed job's primary replica; the runner runs it alone
        primary = primary_container(
            job, template.primary_container_name, template.primary_pod_labels
        )
    except PrimaryNotFound:  # a kind without one (an Argo Workflow): only a cluster runs it
        primary = {"name": template.primary_container_name}
    argv = [str(a) for a in [*(primary.get("command") or []), *(primary.get("args") or [])]]
    env = {
        str(e["name"]): str(e.get("value", ""))
        for e in primary.get("env") or []
        if isinstance(e, dict) and "name" in e and "valueFrom" not in e
    }
    mc = experiment.spec.metrics_collector_spec
    fsp = mc.source.file_system_path if mc.source else None
    collects_path = mc.kind in (CollectorKind.FILE, CollectorKind.TF_EVENT)
    metrics_file = fsp.path if collects_path and fsp else None
    return RenderedTrial(
        job=job, argv=argv, env=env, container_name=primary.get("name"), metrics_file=metrics_file
    )


def _reference_value(
    reference: str,
    experiment: Experiment,
    trial: Trial,
    job: dict[str, Any],
    labels: dict[str, str],
    annotations: dict[str, str],
) -> str:
    meta = _META.match(reference)
    if meta is None:
        return format_value(trial.parameters[reference])
    key, sub = meta.groups()
    if key == "Name":
        return trial.name
    if key == "Namespace":
        return experiment.namespace
    if key == "Kind":
        return str(job.get("kind", "Job"))
    if key == "APIVersion":
        return str(job.get("apiVersion", "batch/v1"))
    if key == "Labels":
        return labels.get(sub or "", "")
    if key == "Annotations":
        return annotations.get(sub or "", "")
    raise ValueError(f"unknown trial metadata reference {reference}")


def _substitute(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, str):
        return _REF.sub(lambda m: values.get(m.group(1), m.group(0)), node)
    if isinstance(node, list):
        return [_substitute(v, values) for v in node]
    if isinstance(node, dict):
        return {k: _substitute(v, values) for k, v in node.items()}
    return node


def job_trial_template(
    command: Sequence[str],
    parameters: Sequence[str],
    *,
    image: str = "python:3.11",
    container: str = "main",
    backoff_limit: int | None = None,
) -> dict[str, Any]:
    """A Katib ``trialTemplate`` whose batch/v1 Job runs ``command`` in one container.

    Each name in ``parameters`` becomes a trial parameter referring to the spec parameter of the
    same name, for use as ``${trialParameters.<name>}`` in ``command``. For building specs in
    Python (notebooks, tests, benchmarks); the result is what a Katib YAML would hold.
    """
    job_spec: dict[str, Any] = {
        "template": {
            "spec": {
                "containers": [{"name": container, "image": image, "command": list(command)}],
                "restartPolicy": "Never",
            }
        }
    }
    if backoff_limit is not None:
        job_spec["backoffLimit"] = backoff_limit
    return {
        "primaryContainerName": container,
        "trialParameters": [{"name": n, "reference": n} for n in parameters],
        "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": job_spec},
    }
