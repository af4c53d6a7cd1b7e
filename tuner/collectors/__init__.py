"""Metrics collectors: Katib's collector kinds, turning a trial's output into observations.

One module per kind, and where each runs (README, "Metrics"):

* ``StdOut`` (:mod:`.text`): the local process's output, or the primary container's log.
* ``File`` (:mod:`.files`, :mod:`.text`, :mod:`.jsonlines`): the file, tailed; on Kubernetes
  by the relay sidecar in the trial's Pod (:mod:`.relay`), which pushes what it reads.
* ``TensorFlowEvent`` (:mod:`.tfevent`): the event directory, read incrementally; on Kubernetes
  by the relay sidecar too.
* ``PrometheusMetric`` (:mod:`.prometheus`): ``127.0.0.1`` locally, the Pod's IP on Kubernetes.
* ``Custom`` (:mod:`.sidecar`): a sidecar of the trial's Pod; refused locally
  (:func:`local_support`).
* ``Push`` and ``None`` need no collector: the push API, or nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tuner.collectors.common import (
    DEFAULT_FILTER,
    STEP_KEYS,
    UNKNOWN_SAMPLES,
    Clock,
    MetricsParser,
    PolledCollector,
    parse_rfc3339,
    utcnow,
)
from tuner.collectors.files import FileTailer, parser_for
from tuner.collectors.jsonlines import JsonLineParser
from tuner.collectors.prometheus import HostLookup, PrometheusScraper, endpoint
from tuner.collectors.text import LineParser
from tuner.collectors.tfevent import TfEventCollector, tensorboard_missing

if TYPE_CHECKING:
    from tuner.spec import ExperimentSpec

__all__ = [
    "DEFAULT_FILTER",
    "STEP_KEYS",
    "UNKNOWN_SAMPLES",
    "Clock",
    "FileTailer",
    "JsonLineParser",
    "LineParser",
    "MetricsParser",
    "PolledCollector",
    "PrometheusScraper",
    "TfEventCollector",
    "local_support",
    "parse_rfc3339",
    "parser_for",
    "polled_collector",
    "utcnow",
]


def local_support(spec: ExperimentSpec) -> str | None:
    """Why the local runner cannot collect this spec's metrics, or ``None`` when it can."""
    kind = spec.metrics_collector_spec.kind.value
    if kind == "Custom":
        return (
            "the local runner cannot run the Custom metrics collector: its container runs as a "
            "sidecar of the trial's Pod, which only the Kubernetes runner does; locally, print "
            "the metrics "
            "(StdOut), write them to a file (File) or report them with tuner.report (Push)"
        )
    if kind == "TensorFlowEvent":
        return tensorboard_missing()
    if kind == "PrometheusMetric" and spec.parallel_trial_count > 1:
        return (
            "the PrometheusMetric collector scrapes one port, and local trials share the host's "
            f"network: with parallelTrialCount {spec.parallel_trial_count} they would serve on "
            f"the same port ({endpoint(spec)}); set parallelTrialCount to 1"
        )
    return None


def polled_collector(
    spec: ExperimentSpec, metrics_path: Path | None, host: str | HostLookup = "127.0.0.1"
) -> PolledCollector | None:
    """The collector the controller polls for a trial, or ``None`` for a kind it does not poll.

    Args:
        spec: the experiment's spec.
        metrics_path: where this trial writes its metrics file or event directory, as its
            runner placed it (``None``: out of reach).
        host: where the trial's Prometheus endpoint is reached: an address, or how to find it
            (a Pod's IP).
    """
    kind = spec.metrics_collector_spec.kind.value
    if kind == "File" and metrics_path is not None:
        parser = parser_for(spec)
        return FileTailer(metrics_path, parser) if parser is not None else None
    if kind == "TensorFlowEvent" and metrics_path is not None:
        return TfEventCollector(metrics_path, spec.objective)
    if kind == "PrometheusMetric":
        return PrometheusScraper(spec, host)
    return None
