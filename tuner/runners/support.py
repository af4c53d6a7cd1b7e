"""What a runner can run, checked at submit time: the spec is valid (Katib accepts it), but
this runner may lack the means, and says so before any trial starts.

``tuner validate`` judges the spec alone; these checks are the runner's part of submitting
(:meth:`tuner.runners.base.Runner.check`, called by ``tuner serve`` and ``tuner run``).
"""

from __future__ import annotations

from collections.abc import Collection

from tuner.errors import FieldError
from tuner.spec import CollectorKind, Experiment, trial_kinds

COLLECTOR_PATH = "spec.metricsCollectorSpec.collector.kind"


def unsupported(
    experiment: Experiment,
    *,
    runner: str,
    collectors: Collection[CollectorKind],
    processes: bool = False,
) -> list[FieldError]:
    """What ``experiment`` asks of a runner that runs inline ``batch/v1`` Jobs (or, with
    ``processes``, the primary container of any kind that has one, as a process) and collects
    metrics with ``collectors`` only; empty when it can run it."""
    errors: list[FieldError] = []
    tt = experiment.spec.trial_template
    if tt is not None and tt.config_map is not None:
        errors.append(
            FieldError(
                "spec.trialTemplate.configMap",
                f"the {runner} runner cannot read trial templates from ConfigMaps; write the "
                "template inline in spec.trialTemplate.trialSpec",
            )
        )
    job = tt.trial_spec if tt is not None else None
    if job is not None and processes:
        errors += _process_errors(experiment, runner)
    elif job is not None and (job.get("apiVersion"), job.get("kind")) != ("batch/v1", "Job"):
        errors.append(
            FieldError(
                "spec.trialTemplate.trialSpec",
                f"the {runner} runner runs batch/v1 Job trials only "
                f"(got {job.get('apiVersion')}/{job.get('kind')})",
            )
        )
    kind = experiment.spec.metrics_collector_spec.kind
    if tt is not None and kind not in collectors:
        usable = ", ".join(k.value for k in CollectorKind if k in collectors)
        errors.append(
            FieldError(
                COLLECTOR_PATH,
                f"the {runner} runner cannot collect metrics with collector kind {kind.value} "
                f"(it has no {_means(kind)}); use one of: {usable}",
            )
        )
    return errors


def _process_errors(experiment: Experiment, runner: str) -> list[FieldError]:
    """Why the trial's primary container cannot run as one process, if it cannot."""
    tt = experiment.spec.trial_template
    job = tt.trial_spec if tt is not None else None
    if tt is None or job is None:
        return []
    path = "spec.trialTemplate.trialSpec"
    kind = f"{job.get('apiVersion')}/{job.get('kind')}"
    why = trial_kinds.cluster_only_reason(job)
    if why is not None:
        return [
            FieldError(
                path,
                f"{job.get('kind')} has no local meaning: it runs on Kubernetes only ({why}); "
                f"the {runner} runner runs one process per trial",
            )
        ]
    if not trial_kinds.is_runnable_as_process(job):
        return [
            FieldError(
                path,
                f"the {runner} runner runs batch/v1 Job, Kubeflow training job "
                f"({', '.join(trial_kinds.REPLICATED_KINDS)}) and TrainJob trials only "
                f"(got {kind})",
            )
        ]
    if trial_kinds.is_job(job):
        return []  # its structure is the validator's
    try:
        container = trial_kinds.primary_container(
            job, tt.primary_container_name, tt.primary_pod_labels
        )
    except trial_kinds.PrimaryNotFound as e:
        return [FieldError(path, f"the {runner} runner cannot find the primary container: {e}")]
    if not container.get("command"):
        where = (
            "the TrainJob's spec.trainer"
            if trial_kinds.is_train_job(job)
            else f"the primary container {container.get('name')!r}"
        )
        return [
            FieldError(
                path,
                f"{where} has no command: the {runner} runner cannot know the image's "
                "entrypoint (or the runtime's command); write the command to run",
            )
        ]
    return []


def _means(kind: CollectorKind) -> str:
    return {
        CollectorKind.CUSTOM: "sidecar container to run the custom collector in",
        CollectorKind.TF_EVENT: "TensorFlow event file reader",
        CollectorKind.PROMETHEUS: "scraper of the trial's Prometheus endpoint",
        CollectorKind.FILE: "access to the file inside the trial's Pod",
    }.get(kind, "collector of this kind")
