"""Prometheus metrics of one service, served at ``/metrics`` (``prometheus-client``).

Every metric lives in the service's own :class:`~prometheus_client.CollectorRegistry` (never the
global one), so that many services in one process (tests) never collide. Where Katib exports a
metric of the same meaning, its name is kept:

* ``katib_experiments_current{namespace,status}`` and ``katib_trials_current{namespace,status}``:
  experiments and trials by state, counted in the database at each scrape (so every replica
  reports the same totals);
* ``katib_experiment_created_total``, ``katib_experiment_succeeded_total``,
  ``katib_experiment_failed_total``, ``katib_trial_succeeded_total``,
  ``katib_trial_failed_total`` (all ``{namespace}``): what this replica did since it started;
* ``tuner_trials_started_total``, ``tuner_trials_ended_total{namespace,state}`` (every final
  state) and ``tuner_trials_early_stopped_total``: the same, for tuner's own trial states;
* ``tuner_suggestion_seconds{mode}``: time to compute suggestions (``controller`` or ``ask``);
* ``tuner_report_seconds`` and ``tuner_observations_ingested_total``: pushed reports (its
  ``_count`` gives the rate) and the observations they carried;
* ``tuner_write_queue_depth``: reports queued for the database writer;
* ``tuner_kubernetes_requests_total{operation}`` and
  ``tuner_kubernetes_errors_total{operation,code}``: Kubernetes API calls (each attempt) and
  their failures (HTTP status, or ``connection``);
* ``tuner_leases_held{replica}``: the experiments each replica holds the unexpired lease of;
* ``tuner_kubernetes_log_streams`` and ``tuner_kubernetes_log_streams_peak``: pod log requests
  open now, and the most open at once (:mod:`tuner.k8s.log_slots` bounds them).

Labels carry namespaces, states, replica names and API operations, never experiment or trial
names: the endpoint is open like ``/healthz`` and shows no more than an overview.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tuner.events import Event
from tuner.storage.repository import Census
from tuner.trials import TrialState

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ApiCallCounts(Protocol):
    """What :class:`tuner.k8s.client.RetryingClient` counts (read at each scrape)."""

    requests: Mapping[str, int]
    errors: Mapping[tuple[str, str], int]


class LogStreams(Protocol):
    """What :class:`tuner.k8s.log_slots.LogSlots` counts (read at each scrape)."""

    open: int
    peak: int


class _Scraped(Collector):
    """The metrics read at scrape time: database counts and Kubernetes API call counts."""

    def __init__(
        self,
        census: Callable[[], Census | None],
        api_calls: Callable[[], ApiCallCounts | None],
        log_streams: Callable[[], LogStreams | None],
    ) -> None:
        self.census = census
        self.api_calls = api_calls
        self.log_streams = log_streams

    def collect(self) -> Iterator[Metric]:
        try:
            census = self.census()
        except Exception:  # a scrape must answer even when the database does not
            log.exception("metrics: cannot count experiments and trials")
            census = None
        if census is not None:
            experiments = GaugeMetricFamily(
                "katib_experiments_current",
                "Experiments in the database, by namespace and phase",
                labels=["namespace", "status"],
            )
            for (ns, phase), n in sorted(census.experiments.items()):
                experiments.add_metric([ns, phase], n)
            trials = GaugeMetricFamily(
                "katib_trials_current",
                "Trials in the database, by namespace and state",
                labels=["namespace", "status"],
            )
            for (ns, state), n in sorted(census.trials.items()):
                trials.add_metric([ns, state], n)
            leases = GaugeMetricFamily(
                "tuner_leases_held",
                "Experiments whose unexpired lease each replica holds",
                labels=["replica"],
            )
            for owner, n in sorted(census.leases.items()):
                leases.add_metric([owner], n)
            yield from (experiments, trials, leases)
        calls = self.api_calls()
        if calls is not None:
            requests = CounterMetricFamily(
                "tuner_kubernetes_requests",
                "Kubernetes API requests (each attempt), by client operation",
                labels=["operation"],
            )
            for operation, n in sorted(calls.requests.items()):
                requests.add_metric([operation], n)
            errors = CounterMetricFamily(
                "tuner_kubernetes_errors",
                "Kubernetes API requests that failed, by operation and HTTP status "
                "(or 'connection')",
                labels=["operation", "code"],
            )
            for (operation, code), n in sorted(calls.errors.items()):
                errors.add_metric([operation, code], n)
            yield from (requests, errors)
        streams = self.log_streams()
        if streams is not None:
            yield GaugeMetricFamily(
                "tuner_kubernetes_log_streams", "Pod log requests open now", value=streams.open
            )
            yield GaugeMetricFamily(
                "tuner_kubernetes_log_streams_peak",
                "The most pod log requests open at once",
                value=streams.peak,
            )


class Telemetry:
    """The metrics of one service; :meth:`__call__` is its event listener.

    Args:
        census: counts of experiments, trials and leases (``None`` before the service starts).
        api_calls: the Kubernetes client's call counts, when the runner has one.
        log_streams: the Kubernetes runner's open log requests, when the runner has them.
        write_queue_depth: the number of reports waiting for the database writer.
    """

    def __init__(
        self,
        census: Callable[[], Census | None],
        api_calls: Callable[[], ApiCallCounts | None],
        write_queue_depth: Callable[[], int],
        log_streams: Callable[[], LogStreams | None] = lambda: None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.experiments_created = Counter(
            "katib_experiment_created", "Experiments created", ["namespace"], registry=r
        )
        self.experiments_succeeded = Counter(
            "katib_experiment_succeeded", "Experiments that succeeded", ["namespace"], registry=r
        )
        self.experiments_failed = Counter(
            "katib_experiment_failed", "Experiments that failed", ["namespace"], registry=r
        )
        self.trials_succeeded = Counter(
            "katib_trial_succeeded", "Trials that succeeded", ["namespace"], registry=r
        )
        self.trials_failed = Counter(
            "katib_trial_failed", "Trials that failed", ["namespace"], registry=r
        )
        self.trials_started = Counter(
            "tuner_trials_started", "Trials started (Running)", ["namespace"], registry=r
        )
        self.trials_ended = Counter(
            "tuner_trials_ended", "Trials ended, by final state", ["namespace", "state"], registry=r
        )
        self.trials_early_stopped = Counter(
            "tuner_trials_early_stopped", "Trials stopped early", ["namespace"], registry=r
        )
        self.suggestion_seconds = Histogram(
            "tuner_suggestion_seconds",
            "Time to compute a batch of suggestions, by mode (controller or ask)",
            ["mode"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.report_seconds = Histogram(
            "tuner_report_seconds",
            "Time to take in one pushed report (its _count is the report rate)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.observations_ingested = Counter(
            "tuner_observations_ingested", "Observations taken in from pushed reports", registry=r
        )
        depth = Gauge(
            "tuner_write_queue_depth", "Reports queued for the database writer", registry=r
        )
        depth.set_function(lambda: float(write_queue_depth()))
        r.register(_Scraped(census, api_calls, log_streams))

    def __call__(self, event: Event) -> None:
        """Count an event the service published (a trial or experiment state change)."""
        ns = event.namespace
        if event.kind == "experiment":
            if event.state == "Succeeded":
                self.experiments_succeeded.labels(ns).inc()
            elif event.state == "Failed":
                self.experiments_failed.labels(ns).inc()
            return
        if event.kind != "trial" or event.state is None:
            return
        if event.state == TrialState.RUNNING.value:
            self.trials_started.labels(ns).inc()
            return
        try:
            state = TrialState(event.state)
        except ValueError:
            return
        if state.finished:
            self.trials_ended.labels(ns, state.value).inc()
        if state is TrialState.SUCCEEDED:
            self.trials_succeeded.labels(ns).inc()
        elif state is TrialState.FAILED:
            self.trials_failed.labels(ns).inc()
        elif state is TrialState.EARLY_STOPPED:
            self.trials_early_stopped.labels(ns).inc()

    def experiment_created(self, namespace: str) -> None:
        self.experiments_created.labels(namespace).inc()

    def reports(self, observations: int, started: float) -> None:
        """One pushed report taken in, begun at ``started`` (``time.perf_counter()``)."""
        self.report_seconds.observe(time.perf_counter() - started)
        self.observations_ingested.inc(observations)
