"""Katib's defaulting webhook, applied to a spec as written before it is parsed and validated.

Katib's API server runs a mutating webhook (``Experiment.SetDefault`` in
``pkg/apis/controller/experiments/v1beta1/experiment_defaults.go``) before its validating one,
so a spec that leaves these fields out (or empty) is valid there, and the stored Experiment
shows the filled-in values. :func:`apply_defaults` does the same here, on the plain mapping:

* ``parallelTrialCount`` 3, ``resumePolicy`` Never;
* ``trialTemplate.successCondition``/``failureCondition`` by the kind of ``trialSpec`` (a
  ``batch/v1`` Job, or a Kubeflow training job, which also gets its ``primaryPodLabels``);
* ``metricsCollectorSpec.collector.kind`` StdOut; for a File collector the path
  ``/var/log/katib/metrics.log``, kind File and format TEXT; for TensorFlowEvent the directory
  ``/var/log/katib/tfevent/``; for PrometheusMetric ``httpGet`` path ``/metrics``, port 8080.

Metric strategies are not written in: :meth:`tuner.spec.Objective.strategy` answers Katib's
default (by the objective's direction) for a metric that has none. Algorithm-setting defaults
belong to the algorithms (``algorithms/settings.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

DEFAULT_PARALLEL_TRIAL_COUNT = 3
DEFAULT_RESUME_POLICY = "Never"

JOB_SUCCESS_CONDITION = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
JOB_FAILURE_CONDITION = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
KUBEFLOW_JOB_SUCCESS_CONDITION = 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
KUBEFLOW_JOB_KINDS = frozenset({"TFJob", "PyTorchJob", "XGBoostJob", "MXJob", "MPIJob"})
KUBEFLOW_PRIMARY_POD_LABELS = {"training.kubeflow.org/job-role": "master"}
TRAIN_JOB_PRIMARY_POD_LABELS = {
    "jobset.sigs.k8s.io/replicatedjob-name": "node",
    "batch.kubernetes.io/job-completion-index": "0",
}

DEFAULT_FILE_PATH = "/var/log/katib/metrics.log"
DEFAULT_TF_EVENT_DIR = "/var/log/katib/tfevent/"
DEFAULT_PROMETHEUS_PATH = "/metrics"
DEFAULT_PROMETHEUS_PORT = 8080


def apply_defaults(data: Any) -> Any:
    """A copy of the Experiment ``data`` with Katib's defaults filled in.

    Anything that is not shaped as expected is left alone, for the parser to report.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("spec"), Mapping):
        return data
    out = dict(data)
    spec = copy.deepcopy(dict(data["spec"]))
    out["spec"] = spec
    if spec.get("parallelTrialCount") is None:
        spec["parallelTrialCount"] = DEFAULT_PARALLEL_TRIAL_COUNT
    if spec.get("resumePolicy") in (None, ""):
        spec["resumePolicy"] = DEFAULT_RESUME_POLICY
    if isinstance(spec.get("trialTemplate"), dict):
        _template_defaults(spec["trialTemplate"])
    if spec.get("metricsCollectorSpec") is None:
        spec["metricsCollectorSpec"] = {}
    if isinstance(spec["metricsCollectorSpec"], dict):
        _collector_defaults(spec["metricsCollectorSpec"])
    return out


def _template_defaults(template: dict[str, Any]) -> None:
    job = template.get("trialSpec")
    if not isinstance(job, Mapping):
        return  # a ConfigMap source: Katib fills nothing in
    kind = job.get("kind")
    if kind in ("Job", "TrainJob"):
        success, failure = JOB_SUCCESS_CONDITION, JOB_FAILURE_CONDITION
    elif kind in KUBEFLOW_JOB_KINDS:
        success, failure = KUBEFLOW_JOB_SUCCESS_CONDITION, JOB_FAILURE_CONDITION
    else:
        return
    if not template.get("successCondition"):
        template["successCondition"] = success
    if not template.get("failureCondition"):
        template["failureCondition"] = failure
    if kind != "Job" and not template.get("primaryPodLabels"):
        labels = TRAIN_JOB_PRIMARY_POD_LABELS if kind == "TrainJob" else KUBEFLOW_PRIMARY_POD_LABELS
        template["primaryPodLabels"] = dict(labels)


def _collector_defaults(mc: dict[str, Any]) -> None:
    if mc.get("collector") is None:
        mc["collector"] = {"kind": "StdOut"}
    collector = mc["collector"]
    if not isinstance(collector, dict):
        return
    kind = collector.get("kind")
    if kind == "PrometheusMetric":
        http = _child(_child(mc, "source"), "httpGet")
        if http is not None:
            if not http.get("path"):
                http["path"] = DEFAULT_PROMETHEUS_PATH
            if http.get("port") in (None, 0, "", "0"):
                http["port"] = DEFAULT_PROMETHEUS_PORT
    elif kind in ("File", "TensorFlowEvent"):
        fsp = _child(_child(mc, "source"), "fileSystemPath")
        if fsp is None:
            return
        file = kind == "File"
        if not fsp.get("kind"):
            fsp["kind"] = "File" if file else "Directory"
        if not fsp.get("path"):
            fsp["path"] = DEFAULT_FILE_PATH if file else DEFAULT_TF_EVENT_DIR
        if file and not fsp.get("format"):
            fsp["format"] = "TEXT"


def _child(parent: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    """``parent[key]``, created empty when missing; ``None`` when it is not a mapping."""
    if parent is None:
        return None
    if parent.get(key) is None:
        parent[key] = {}
    child = parent[key]
    return child if isinstance(child, dict) else None
