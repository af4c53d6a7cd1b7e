"""The Kubernetes runner's part of submitting: which trial kinds it can run with which
collectors, and templates kept in ConfigMaps (Katib's ``trialTemplate.configMap``).

A ConfigMap template is read once, when the experiment is submitted: the stored spec then holds
it inline in ``trialTemplate.trialSpec``, so every trial of the experiment, and a restarted
controller, use the same template even if the ConfigMap changes later.
"""

from __future__ import annotations

from typing import Any

import yaml
from kubernetes import client

from tuner.errors import FieldError, RunnerError, SpecError
from tuner.k8s.client import API_ERRORS, RetryingClient
from tuner.spec import CollectorKind, Experiment, load_spec, trial_kinds

TEMPLATE_PATH = "spec.trialTemplate.trialSpec"
CONFIG_MAP_PATH = "spec.trialTemplate.configMap"
SIDECAR_COLLECTORS = frozenset({CollectorKind.FILE, CollectorKind.TF_EVENT, CollectorKind.CUSTOM})
"""Collectors that run a sidecar in the primary pod, so need its Pod template."""


def kind_problems(experiment: Experiment) -> list[FieldError]:
    """What the trial kind cannot do on Kubernetes: a sidecar collector needs a Pod template,
    which a Job and a Kubeflow training job have (their primary replica's) and other kinds
    (TrainJob, Argo, Tekton) do not."""
    tt = experiment.spec.trial_template
    job = tt.trial_spec if tt is not None else None
    if job is None:
        return []
    kind = experiment.spec.metrics_collector_spec.kind
    has_pod_template = trial_kinds.is_job(job) or trial_kinds.replicated_kind(job) is not None
    if kind in SIDECAR_COLLECTORS and not has_pod_template:
        return [
            FieldError(
                "spec.metricsCollectorSpec.collector.kind",
                f"the {kind.value} collector runs a sidecar in the trial's primary pod, and a "
                f"{job.get('kind')} has no Pod template tuner can add it to; use StdOut, Push "
                "or PrometheusMetric",
            )
        ]
    return []


async def read_config_map(
    retrying: RetryingClient, core: client.CoreV1Api, experiment: Experiment
) -> Experiment:
    """``experiment`` with its ConfigMap template read into ``trialTemplate.trialSpec``.

    Raises:
        SpecError: the ConfigMap, or its ``templatePath`` key, is missing, or not a manifest.
    """
    tt = experiment.spec.trial_template
    assert tt is not None and tt.config_map is not None
    cm = tt.config_map
    name, namespace, key = cm.config_map_name, cm.config_map_namespace, cm.template_path
    where = f"ConfigMap {namespace}/{name}"
    try:
        found = await retrying.get_json(core.read_namespaced_config_map, name, namespace)
    except API_ERRORS as e:
        raise RunnerError(f"cannot read the trial template from {where}: {e}") from e
    if found is None:
        raise SpecError([FieldError(CONFIG_MAP_PATH, f"{where} does not exist")])
    data: dict[str, Any] = found.get("data") or {}
    if key not in data:
        raise SpecError(
            [
                FieldError(
                    f"{CONFIG_MAP_PATH}.templatePath",
                    f"{where} has no key {key!r} (it has: {', '.join(sorted(data)) or 'none'})",
                )
            ]
        )
    try:
        template = yaml.safe_load(data[key])
    except yaml.YAMLError as e:
        raise SpecError(
            [FieldError(f"{CONFIG_MAP_PATH}.templatePath", f"{where} key {key!r}: {e}")]
        ) from e
    if not isinstance(template, dict):
        raise SpecError(
            [
                FieldError(
                    f"{CONFIG_MAP_PATH}.templatePath",
                    f"{where} key {key!r} is not a Kubernetes manifest (a mapping)",
                )
            ]
        )
    spec = experiment.dump()
    inline = spec["spec"]["trialTemplate"]
    inline.pop("configMap", None)
    inline["trialSpec"] = template
    return load_spec(spec)
