"""Where a trial's primary container lives, for each kind of trial Katib runs.

A ``batch/v1`` Job has one Pod template. A Kubeflow training job (PyTorchJob, TFJob,
MPIJob, XGBoostJob, MXJob) has one Pod template per replica type, under
``spec.<field>.<ReplicaType>``, and the replica whose Pods carry ``primaryPodLabels`` is the
one Katib collects metrics from. A
TrainJob (``trainer.kubeflow.org``) has no Pod template: its ``spec.trainer`` holds the command,
args and env of the training nodes. Argo Workflows and Tekton PipelineRuns are graphs of Pods
that their own controllers run.

:func:`primary_container` answers the primary container of any runnable kind, so that a runner
without a cluster can run it as one process (the other replicas are not run).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tuner.spec.models import job_containers

JOB_ROLE_LABEL = "training.kubeflow.org/job-role"
REPLICA_TYPE_LABEL = "training.kubeflow.org/replica-type"
MPI_ROLE_LABEL = "mpi-job-role"
TRAIN_JOB_CONTAINER = "node"
"""The container of a TrainJob's training nodes in Kubeflow Trainer's runtimes."""


@dataclass(frozen=True)
class ReplicatedKind:
    """A Kubeflow training job: where its replicas live and which one is primary."""

    kind: str
    replicas_field: str
    primary: tuple[str, ...]
    """Replica types in the order the training operator gives the master role: the first one
    the job has is primary (TFJob: a Chief, else a Master, else Worker 0)."""


REPLICATED_KINDS = {
    k.kind: k
    for k in (
        ReplicatedKind("PyTorchJob", "pytorchReplicaSpecs", ("Master", "Worker")),
        ReplicatedKind("TFJob", "tfReplicaSpecs", ("Chief", "Master", "Worker")),
        ReplicatedKind("XGBoostJob", "xgbReplicaSpecs", ("Master", "Worker")),
        ReplicatedKind("MPIJob", "mpiReplicaSpecs", ("Launcher",)),
        # Katib's MXJob example picks its Worker by label; the Scheduler and Server only
        # coordinate.
        ReplicatedKind("MXJob", "mxReplicaSpecs", ("Worker",)),
    )
}
KUBEFLOW_GROUP = "kubeflow.org"
TRAINER_GROUP = "trainer.kubeflow.org"
CLUSTER_ONLY_KINDS = {
    ("argoproj.io", "Workflow"): (
        "its steps are Pods that Argo's workflow controller schedules and passes outputs between"
    ),
    ("tekton.dev", "PipelineRun"): (
        "its tasks are Pods that Tekton's controller schedules and passes results between"
    ),
}
"""Kinds that only a cluster with their controller can run: why."""


class PrimaryNotFound(ValueError):
    """The trial's primary container cannot be found in its spec; the message says why."""


def api_group(job: Mapping[str, Any]) -> str:
    api_version = str(job.get("apiVersion") or "")
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def is_job(job: Mapping[str, Any]) -> bool:
    return (job.get("apiVersion"), job.get("kind")) == ("batch/v1", "Job")


def replicated_kind(job: Mapping[str, Any]) -> ReplicatedKind | None:
    if api_group(job) != KUBEFLOW_GROUP:
        return None
    return REPLICATED_KINDS.get(str(job.get("kind")))


def is_train_job(job: Mapping[str, Any]) -> bool:
    return api_group(job) == TRAINER_GROUP and job.get("kind") == "TrainJob"


def is_runnable_as_process(job: Mapping[str, Any]) -> bool:
    """Whether the kind has a primary container that can run as one process."""
    return is_job(job) or replicated_kind(job) is not None or is_train_job(job)


def cluster_only_reason(job: Mapping[str, Any]) -> str | None:
    """Why the kind runs on a cluster only, or ``None`` when it is not such a kind."""
    return CLUSTER_ONLY_KINDS.get((api_group(job), str(job.get("kind"))))


def primary_replica(
    job: Mapping[str, Any], pod_labels: Mapping[str, str] | None = None
) -> tuple[str, Mapping[str, Any]]:
    """The primary replica of a Kubeflow training job: its type and its spec.

    ``primaryPodLabels`` naming a replica (``training.kubeflow.org/replica-type: worker``,
    ``mpi-job-role: launcher``) choose it; otherwise the kind's master role does.
    """
    kind = replicated_kind(job)
    if kind is None:
        raise PrimaryNotFound(f"{job.get('kind')} has no replicas")
    spec = job.get("spec")
    replicas = spec.get(kind.replicas_field) if isinstance(spec, Mapping) else None
    if not isinstance(replicas, Mapping) or not replicas:
        raise PrimaryNotFound(f"the {kind.kind} has no replicas in spec.{kind.replicas_field}")
    by_lower = {str(name).lower(): str(name) for name in replicas}
    labels = pod_labels or {}
    role = labels.get(REPLICA_TYPE_LABEL) or labels.get(MPI_ROLE_LABEL)
    if role is None and labels.get(JOB_ROLE_LABEL, "master") != "master":
        role = labels[JOB_ROLE_LABEL]
    if role is not None:
        chosen = by_lower.get(role.lower())
        if chosen is None:
            raise PrimaryNotFound(
                f"primaryPodLabels name the {role!r} replica, which spec.{kind.replicas_field} "
                f"does not have (replicas: {sorted(replicas)})"
            )
    else:
        chosen = next((by_lower[p.lower()] for p in kind.primary if p.lower() in by_lower), None)
        if chosen is None:
            wanted = " or ".join(kind.primary)
            raise PrimaryNotFound(
                f"the {kind.kind} has no {wanted} replica in spec.{kind.replicas_field} "
                f"(replicas: {sorted(replicas)})"
            )
    replica = replicas[chosen]
    if not isinstance(replica, Mapping):
        raise PrimaryNotFound(f"spec.{kind.replicas_field}.{chosen} is not a replica spec")
    return f"{kind.replicas_field}.{chosen}", replica


def primary_container(
    job: Mapping[str, Any],
    container_name: str | None,
    pod_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The primary container (``name``, ``command``, ``args``, ``env``) of a trial's resource.

    Raises:
        PrimaryNotFound: the kind has none, or the spec does not hold it.
    """
    if is_job(job):
        return _named(job_containers(job), container_name, "the Job")
    if is_train_job(job):
        spec = job.get("spec")
        trainer = spec.get("trainer") if isinstance(spec, Mapping) else None
        if not isinstance(trainer, Mapping):
            raise PrimaryNotFound("the TrainJob has no spec.trainer (its command is the runtime's)")
        return {
            "name": container_name or TRAIN_JOB_CONTAINER,
            **{k: trainer[k] for k in ("command", "args", "env") if k in trainer},
        }
    if replicated_kind(job) is not None:
        where, replica = primary_replica(job, pod_labels)
        return _named(job_containers({"spec": replica}), container_name, f"the {where} replica")
    raise PrimaryNotFound(f"{job.get('apiVersion')}/{job.get('kind')} has no primary container")


def _named(containers: list[dict[str, Any]], name: str | None, where: str) -> dict[str, Any]:
    for c in containers:
        if c.get("name") == name:
            return c
    if containers and name is None:
        return containers[0]
    names = [c.get("name") for c in containers]
    raise PrimaryNotFound(f"{where} has no container named {name!r} (containers: {names})")
