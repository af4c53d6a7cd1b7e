"""Trial Jobs as plain data: names, labels, manifest, ownerReference and outcome.

Pure: no Kubernetes client. Jobs and pods are plain JSON (camelCase keys, as the API sends them).

A trial's Job is named by :func:`job_name` (the trial name when that is a valid DNS-1123 label,
else a truncated name with a hash, valid at any length). The Job and its pod template carry the
labels :data:`~tuner.templates.EXPERIMENT_LABEL` and :data:`~tuner.templates.TRIAL_LABEL`
(:func:`job_labels`); :func:`job_manifest` fills them in with the ``TUNER_*`` environment of the
primary container and an optional ownerReference (:func:`experiment_owner_reference`).
:func:`job_outcome` names why a finished Job failed (``OOMKilled``, the Job's
``BackoffLimitExceeded`` / ``DeadlineExceeded``, the exit code); :func:`image_pull_problem` finds
image pull errors in its pods.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from tuner.collectors.sidecar import (
    DEFAULT_COLLECTOR_IMAGE,
    RELAY_COMMAND,
    add_custom_collector,
    add_file_collector,
)
from tuner.errors import RunnerError
from tuner.runners.base import TrialOutcome
from tuner.spec import Experiment, job_containers
from tuner.templates import EXPERIMENT_LABEL, TRIAL_LABEL, RenderedTrial
from tuner.trials import Trial

IMAGE_PULL_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
MAX_NAME = 63
"""The longest DNS-1123 label (names of Jobs, values of labels)."""


# ---------------------------------------------------------------------------------------------
# Names and labels


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_dns_label(text: str) -> bool:
    """Whether ``text`` is a DNS-1123 label (lower-case alphanumerics and ``-``, at most 63)."""
    return len(text) <= MAX_NAME and bool(_DNS_LABEL.match(text))


def dns_label(text: str, *, key: str | None = None) -> str:
    """``text`` when it is a DNS-1123 label, else a valid label made from it.

    The fallback keeps the head and the tail of ``text`` (lower-cased, other characters replaced
    by ``-``) around a hash of ``key`` (default ``text``), so it is deterministic, unique per key
    and at most 63 characters long.
    """
    if is_dns_label(text):
        return text
    digest = hashlib.sha256((key or text).encode()).hexdigest()[:10]
    clean = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    tail = clean[-8:].strip("-")
    head = clean[: MAX_NAME - len(digest) - len(tail) - 2].strip("-")
    name = "-".join(part for part in (head, digest, tail) if part)
    assert is_dns_label(name), name
    return name


# Installations: several tuners may share a namespace (tuner serve --installation). Every object
# one creates carries its name in INSTALLATION_LABEL, and each ignores the others' objects. The
# installation "default" also owns unlabelled objects (made before installations had names), and
# keeps the Job names it always had; another one's Job names start with its name, so that the
# same experiment in two installations never asks for one Job name.

INSTALLATION_LABEL = "tuner.dev/installation"
DEFAULT_INSTALLATION = "default"


def installation_label(installation: str) -> str:
    """The installation's name as a label value."""
    return dns_label(installation)


def is_ours(obj: Mapping[str, Any], installation: str) -> bool:
    """Whether an object (a Job, an Experiment resource) belongs to ``installation``."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    theirs = labels.get(INSTALLATION_LABEL)
    if theirs is None:
        return installation == DEFAULT_INSTALLATION
    return bool(theirs == installation_label(installation))


def installation_selector(installation: str) -> str | None:
    """A label selector of ``installation``'s objects, or ``None`` for the default one (its
    unlabelled objects cannot be selected: filter with :func:`is_ours`)."""
    if installation == DEFAULT_INSTALLATION:
        return None
    return f"{INSTALLATION_LABEL}={installation_label(installation)}"


def job_name(experiment: Experiment, trial: Trial, installation: str = DEFAULT_INSTALLATION) -> str:
    """The deterministic Job name of a trial: a valid DNS-1123 label at any name length."""
    key = f"{experiment.namespace}/{experiment.name}/{trial.name}"
    if installation == DEFAULT_INSTALLATION:
        return dns_label(trial.name, key=key)
    return dns_label(f"{installation}-{trial.name}", key=f"{installation}/{key}")


def job_labels(
    experiment: Experiment, trial: Trial, installation: str = DEFAULT_INSTALLATION
) -> dict[str, str]:
    """The labels that identify a trial's Job and pods (label values are DNS labels here)."""
    return {
        EXPERIMENT_LABEL: dns_label(experiment.name),
        TRIAL_LABEL: job_name(experiment, trial, installation),
        INSTALLATION_LABEL: installation_label(installation),
    }


def experiment_owner_reference(
    name: str, uid: str, api_version: str = "tuner.dev/v1beta1"
) -> dict[str, Any]:
    """An ownerReference to an Experiment custom resource (``tuner.dev/v1beta1`` unless said)."""
    return {
        "apiVersion": api_version,
        "kind": "Experiment",
        "name": name,
        "uid": uid,
        "controller": True,
    }


# ---------------------------------------------------------------------------------------------
# Reading Job and pod status


def job_conditions(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The conditions in a Job's status (malformed entries left out)."""
    conds = (job.get("status") or {}).get("conditions") or []
    return [c for c in conds if isinstance(c, dict)]


def true_condition(job: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    """The Job's condition of type ``kind`` when its status is ``"True"``, else ``None``."""
    return next(
        (c for c in job_conditions(job) if c.get("type") == kind and c.get("status") == "True"),
        None,
    )


def object_uid(obj: Mapping[str, Any]) -> str:
    """``metadata.uid`` of an object, or ``""``."""
    return str((obj.get("metadata") or {}).get("uid", ""))


def container_status(pod: Mapping[str, Any], container: str | None) -> dict[str, Any] | None:
    """The status of ``container`` in a pod (of its first container when ``None``)."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for s in statuses:
        if container is None or s.get("name") == container:
            return dict(s)
    return None


def container_ended(pod: Mapping[str, Any], container: str | None) -> bool:
    """Whether a pod, or its ``container``, has ended."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return True
    return "terminated" in ((container_status(pod, container) or {}).get("state") or {})


def instance_over(pod: Mapping[str, Any], container: str | None, restarts: int) -> bool:
    """Whether the instance of ``container`` that had restarted ``restarts`` times is over: it
    ended, or a newer one runs in its place."""
    status = container_status(pod, container) or {}
    return container_ended(pod, container) or int(status.get("restartCount", 0)) != restarts


def image_pull_problem(pods: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """``(reason, message)`` of an image pull error in any container of ``pods``, or ``None``."""
    for pod in pods:
        status = pod.get("status") or {}
        for s in [
            *(status.get("initContainerStatuses") or []),
            *(status.get("containerStatuses") or []),
        ]:
            waiting = (s.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in IMAGE_PULL_REASONS:
                message = waiting.get("message") or f"cannot pull image {s.get('image', '')!r}"
                return str(waiting["reason"]), f"container {s.get('name')}: {message}"
    return None


def job_outcome(
    job: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    container: str | None,
    succeeded: bool,
) -> TrialOutcome:
    """The outcome of a finished Job, with the reason the pods and the Job's conditions give."""
    terminated: list[dict[str, Any]] = []
    for pod in sorted(pods, key=creation_order):
        s = container_status(pod, container) or {}
        for state in (s.get("lastState") or {}, s.get("state") or {}):
            if "terminated" in state:
                terminated.append(state["terminated"])
    last = terminated[-1] if terminated else None
    code = int(last["exitCode"]) if last and "exitCode" in last else None
    if succeeded:
        return TrialOutcome(True, "Completed", "Job completed", 0 if code is None else code)
    failed = true_condition(job, "Failed")
    parts = [f"exit code {code}"] if code is not None else []
    if failed and failed.get("message"):
        parts.append(str(failed["message"]))
    if any(t.get("reason") == "OOMKilled" for t in terminated):
        reason = "OOMKilled"
        parts.insert(0, "the container ran out of memory (OOMKilled)")
    elif failed and failed.get("reason"):
        reason = str(failed["reason"])  # BackoffLimitExceeded, DeadlineExceeded, ...
    elif code is not None:
        reason = "Error"
    else:
        reason = "Failed"
    return TrialOutcome(False, reason, "; ".join(parts) or "Job failed", code)


def creation_order(obj: Mapping[str, Any]) -> tuple[str, str]:
    """A sort key: oldest first (by creationTimestamp, then name)."""
    meta = obj.get("metadata") or {}
    return str(meta.get("creationTimestamp", "")), str(meta.get("name", ""))


# ---------------------------------------------------------------------------------------------
# The manifest


def job_manifest(
    experiment: Experiment,
    trial: Trial,
    rendered: RenderedTrial,
    env: Mapping[str, str],
    owner: Mapping[str, Any] | None = None,
    installation: str = DEFAULT_INSTALLATION,
    collector_image: str = DEFAULT_COLLECTOR_IMAGE,
    collector_command: Sequence[str] = RELAY_COMMAND,
) -> dict[str, Any]:
    """The Job to create for a trial: name, labels, ownerReference and environment filled in,
    and the metrics collector's sidecar (Custom; File and TensorFlowEvent: the relay, started
    by ``collector_command`` in ``collector_image``)."""
    job = copy.deepcopy(rendered.job)
    job.setdefault("apiVersion", "batch/v1")
    job.setdefault("kind", "Job")
    labels = job_labels(experiment, trial, installation)
    meta = job.setdefault("metadata", {})
    meta["name"] = labels[TRIAL_LABEL]
    meta["namespace"] = experiment.namespace
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    if owner:
        meta["ownerReferences"] = [dict(owner)]
    template = job.setdefault("spec", {}).setdefault("template", {})
    pod_meta = template.setdefault("metadata", {})
    pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **labels}
    pod_spec = template.setdefault("spec", {})
    pod_spec.setdefault("restartPolicy", "Never")
    containers = job_containers(job)
    primary = next(
        (c for c in containers if c.get("name") == rendered.container_name),
        containers[0] if containers else None,
    )
    if primary is None:
        raise RunnerError(f"trial {trial.name}: the Job template has no container")
    extra = {"PYTHONUNBUFFERED": "1", **env}  # metrics lines arrive while the trial runs
    given = [e for e in primary.get("env") or [] if isinstance(e, dict)]
    names = {e.get("name") for e in given}
    primary["env"] = [e for e in given if e.get("name") not in env] + [
        {"name": k, "value": str(v)} for k, v in extra.items() if k in env or k not in names
    ]
    trial_env = {k: str(v) for k, v in env.items()}
    add_custom_collector(pod_spec, primary, experiment.spec, trial_env)
    add_file_collector(
        pod_spec, primary, experiment.spec, trial_env, collector_image, collector_command
    )
    return job
