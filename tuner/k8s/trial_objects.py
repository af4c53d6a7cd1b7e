"""Trial objects of any kind as plain data: the manifest, and which pods are the trial's.

Pure: no Kubernetes client. A ``batch/v1`` Job is made by :func:`tuner.k8s.jobs.job_manifest`.
Any other kind (a Kubeflow PyTorchJob or TFJob, a TrainJob, an Argo Workflow...) keeps its
structure; tuner names it, labels it, sets its ownerReference, and where the kind has a known
primary container (:mod:`tuner.spec.trial_kinds`), puts the ``TUNER_*`` environment there and
its labels on every replica's Pod template.

Pods are found through :func:`pod_keys` / :func:`trial_pod_keys`, the index of the shared pod
informer: a pod belongs to a trial when the trial object owns it, when it carries the trial's
label, or when a label of the controller in between names the trial object (the training
operator's ``training.kubeflow.org/job-name``, JobSet's ``jobset.sigs.k8s.io/jobset-name``, Argo's
and Tekton's: :data:`NAME_LABELS`). Among them, the primary
pods are those with the template's ``primaryPodLabels`` (:func:`primary_pods`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from tuner.collectors.sidecar import (
    DEFAULT_COLLECTOR_IMAGE,
    RELAY_COMMAND,
    add_custom_collector,
    add_file_collector,
)
from tuner.errors import RunnerError
from tuner.k8s.jobs import DEFAULT_INSTALLATION, creation_order, job_labels, job_manifest
from tuner.spec import Experiment, job_containers, trial_kinds
from tuner.templates import TRIAL_LABEL, RenderedTrial
from tuner.trials import Trial

TRAINING_JOB_NAME_LABEL = "training.kubeflow.org/job-name"
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
NAME_LABELS = (
    TRAINING_JOB_NAME_LABEL,
    JOBSET_NAME_LABEL,
    "workflows.argoproj.io/workflow",
    "tekton.dev/pipelineRun",
)
"""Labels by which the training operator, JobSet, Argo and Tekton name the object their pods run
for (their pods may be owned by an object in between: a JobSet's Job, a TaskRun)."""


def trial_manifest(
    experiment: Experiment,
    trial: Trial,
    rendered: RenderedTrial,
    env: Mapping[str, str],
    owner: Mapping[str, Any] | None = None,
    installation: str = DEFAULT_INSTALLATION,
    collector_image: str = DEFAULT_COLLECTOR_IMAGE,
    collector_command: Sequence[str] = RELAY_COMMAND,
) -> dict[str, Any]:
    """The object to create for a trial, of whatever kind its template is."""
    if trial_kinds.is_job(rendered.job):
        return job_manifest(
            experiment,
            trial,
            rendered,
            env,
            owner,
            installation,
            collector_image,
            collector_command,
        )
    obj = copy.deepcopy(rendered.job)
    labels = job_labels(experiment, trial, installation)
    meta = obj.setdefault("metadata", {})
    meta["name"] = labels[TRIAL_LABEL]
    meta["namespace"] = experiment.namespace
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    if owner:
        meta["ownerReferences"] = [dict(owner)]
    extra = {"PYTHONUNBUFFERED": "1", **env}
    tt = experiment.spec.trial_template
    assert tt is not None
    kind = trial_kinds.replicated_kind(obj)
    if kind is not None:
        replicas = (obj.get("spec") or {}).get(kind.replicas_field) or {}
        for replica in replicas.values():
            if isinstance(replica, dict) and isinstance(replica.get("template"), dict):
                pod_meta = replica["template"].setdefault("metadata", {})
                pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **labels}
        try:
            where, replica = trial_kinds.primary_replica(obj, tt.primary_pod_labels)
        except trial_kinds.PrimaryNotFound as e:
            raise RunnerError(f"trial {trial.name}: {e}") from e
        containers = job_containers({"spec": replica})
        primary = next(
            (c for c in containers if c.get("name") == rendered.container_name),
            containers[0] if containers else None,
        )
        if primary is None:
            raise RunnerError(f"trial {trial.name}: the {where} replica has no container")
        _set_env(primary, env, extra)
        pod_spec = replica["template"]["spec"]
        trial_env = {k: str(v) for k, v in env.items()}
        add_custom_collector(pod_spec, primary, experiment.spec, trial_env)
        add_file_collector(
            pod_spec, primary, experiment.spec, trial_env, collector_image, collector_command
        )
    elif trial_kinds.is_train_job(obj):
        trainer = (obj.get("spec") or {}).get("trainer")
        if isinstance(trainer, dict):
            _set_env(trainer, env, extra)
    return obj


def _set_env(container: dict[str, Any], env: Mapping[str, str], extra: Mapping[str, str]) -> None:
    """Put ``extra`` into a container's env (``env`` overrides what the template gives)."""
    given = [e for e in container.get("env") or [] if isinstance(e, dict)]
    names = {e.get("name") for e in given}
    container["env"] = [e for e in given if e.get("name") not in env] + [
        {"name": k, "value": str(v)} for k, v in extra.items() if k in env or k not in names
    ]


def name_label(group: str, kind: str) -> str | None:
    """The label by which the controller of ``kind`` names its object on the pods it makes."""
    return {
        (trial_kinds.TRAINER_GROUP, "TrainJob"): JOBSET_NAME_LABEL,
        ("argoproj.io", "Workflow"): "workflows.argoproj.io/workflow",
        ("tekton.dev", "PipelineRun"): "tekton.dev/pipelineRun",
    }.get((group, kind), TRAINING_JOB_NAME_LABEL if group == trial_kinds.KUBEFLOW_GROUP else None)


def suspend_patch(group: str, kind: str) -> dict[str, Any] | None:
    """The merge patch that stops a retained trial object's pods and keeps the object, or
    ``None`` for a kind that has no such switch (a Job is stopped by ``parallelism: 0``)."""
    if group == trial_kinds.KUBEFLOW_GROUP:
        return {"spec": {"runPolicy": {"suspend": True}}}  # training-operator >= 1.7
    if (group, kind) in {(trial_kinds.TRAINER_GROUP, "TrainJob"), ("argoproj.io", "Workflow")}:
        return {"spec": {"suspend": True}}
    if (group, kind) == ("tekton.dev", "PipelineRun"):
        return {"spec": {"status": "Cancelled"}}
    return None


# ---------------------------------------------------------------------------------------------
# Pods


def pod_keys(pod: Mapping[str, Any]) -> list[str]:
    """The keys a pod is indexed by in the pod informer."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    keys = [f"owner:{o.get('uid')}" for o in meta.get("ownerReferences") or [] if o.get("uid")]
    if labels.get(TRIAL_LABEL):
        keys.append(f"trial:{labels[TRIAL_LABEL]}")
    keys += [f"name:{labels[label]}" for label in NAME_LABELS if labels.get(label)]
    return keys


def trial_pod_keys(uid: str, name: str, trial_label: str, job: bool) -> list[str]:
    """The pod index keys of a trial object's pods. A Job's pods are exactly those it owns;
    another kind's pods may be owned by an object in between (a JobSet's Jobs), so they are also
    found by the trial's label or by the labels that name their job."""
    if job:
        return [f"owner:{uid}"]
    return [f"owner:{uid}", f"trial:{trial_label}", f"name:{name}"]


def primary_pods(
    pods: Sequence[Mapping[str, Any]], primary_labels: Mapping[str, str] | None
) -> list[dict[str, Any]]:
    """The pods carrying every one of ``primary_labels`` (all pods when none), oldest first."""
    wanted = dict(primary_labels or {})
    found = [
        dict(p)
        for p in pods
        if all(
            ((p.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in wanted.items()
        )
    ]
    found.sort(key=creation_order)
    return found
