"""The metrics-collector sidecar of a Kubernetes trial: ``python -m tuner.collectors.relay``.

A ``File`` or ``TensorFlowEvent`` collector reads files that only exist inside the trial's Pod.
So, as Katib's Pod webhook does, the Kubernetes runner adds a sidecar container
(:func:`tuner.collectors.sidecar.add_file_collector`) that shares an ``emptyDir`` volume with the
primary container at the spec's ``fileSystemPath`` and runs this module. The relay:

* reads the metrics file or event directory incrementally, with the collectors the local runner
  uses (:class:`~tuner.collectors.files.FileTailer` with the spec's format and filters,
  :class:`~tuner.collectors.tfevent.TfEventCollector`), every :data:`INTERVAL` seconds;
* pushes what it read through the push API, as ``tuner.report`` does (:func:`tuner.report.send`:
  the same environment, token and retries), with the steps the collectors gave, so a push
  repeated after a lost answer stores nothing twice;
* ends when the trial's processes have ended. The Pod shares its process namespace
  (``shareProcessNamespace``), so ``/proc`` shows the primary container's processes: those
  whose environment holds this trial's ``TUNER_NAMESPACE``/``TUNER_EXPERIMENT``/``TUNER_TRIAL``
  (the sidecar's own processes carry ``TUNER_SIDECAR`` and are left out). A process whose
  environment the sidecar may not read (the primary runs as another user) counts as the
  trial's too, except pid 1 (the Pod's pause process). When none remains, after one was seen,
  or once the metrics file exists (a short trial may be over before the relay first looks), or
  after ``--start-wait`` seconds without either, it reads and pushes a last time and exits 0.

When the collector could not collect (the file was never created, a line that is not JSON), the
relay prints :data:`PROBLEM_PREFIX` and the reason as its last line and still exits 0: the
controller reads that line from the sidecar's log and ends the trial ``MetricsUnavailable`` with
the same message as a local trial (a failing sidecar would fail the Pod, and the trial with it).
A push the server refuses, or cannot take within the retry window, exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tuner import names
from tuner.errors import ReportError, TunerError
from tuner.processes import processes_with
from tuner.trials import Observation

INTERVAL = 1.0
"""Seconds between two reads of the metrics file while the trial runs."""
START_WAIT = 120.0
"""Seconds to wait for the trial's first process before giving up on seeing one."""
PROBLEM_PREFIX = "tuner-metrics-collector: metrics unavailable: "
"""How the relay's last log line starts when the trial's metrics could not be collected."""
TRIAL_KEYS = (names.ENV_NAMESPACE, names.ENV_EXPERIMENT, names.ENV_TRIAL)


class Reader(Protocol):
    """What the relay needs of a collector (FileTailer, TfEventCollector)."""

    @property
    def problem(self) -> str | None: ...

    def poll(self, final: bool = False) -> list[Observation]: ...


Push = Callable[[int | None, dict[str, float]], object]
"""Sends one step's values (:func:`tuner.report.send`)."""


def reader_from(config: dict[str, Any]) -> Reader:
    """The collector of a relay ``--config``: the spec's ``metricsCollectorSpec`` and
    ``objective`` (as :func:`config_of` writes them)."""
    from tuner.collectors.files import FileTailer, collector_parser
    from tuner.spec import MetricsCollectorSpec, Objective

    mc = MetricsCollectorSpec.model_validate(config["metricsCollectorSpec"])
    objective = Objective.model_validate(config["objective"])
    fsp = mc.source.file_system_path if mc.source is not None else None
    if fsp is None or not fsp.path:
        raise TunerError("the collector has no source.fileSystemPath.path to read")
    if mc.kind.value == "TensorFlowEvent":
        from tuner.collectors.tfevent import TfEventCollector, tensorboard_missing

        missing = tensorboard_missing()
        if missing:
            raise TunerError(missing)
        return TfEventCollector(fsp.path, objective)
    parser = collector_parser(mc, objective)
    if mc.kind.value != "File" or parser is None:
        raise TunerError(f"the relay reads File and TensorFlowEvent collectors, not {mc.kind}")
    return FileTailer(fsp.path, parser)


def config_of(metrics_collector_spec: dict[str, Any], objective: dict[str, Any]) -> str:
    """The ``--config`` argument for a spec's collector and objective (wire form)."""
    return json.dumps(
        {"metricsCollectorSpec": metrics_collector_spec, "objective": objective},
        separators=(",", ":"),
    )


@dataclass
class TrialWatch:
    """Tells when the trial's processes have ended (see the module's docstring)."""

    markers: tuple[bytes, ...]
    start_wait: float = START_WAIT
    find: Callable[[Sequence[bytes], bytes], list[int]] | None = None
    in_pod: bool = False
    """Count processes whose environment cannot be read as the trial's (see
    :func:`tuner.processes.processes_with`): in a Pod, they are the primary container's."""
    clock: Callable[[], float] = time.monotonic
    seen: bool = False
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    @classmethod
    def from_env(
        cls, environ: dict[str, str], start_wait: float = START_WAIT, in_pod: bool = False
    ) -> TrialWatch:
        missing = [k for k in TRIAL_KEYS[1:] if not environ.get(k)]
        if missing:
            raise TunerError(f"the relay runs in a trial's Pod: {', '.join(missing)} not set")
        markers = tuple(f"{k}={environ[k]}".encode() for k in TRIAL_KEYS if environ.get(k))
        return cls(markers, start_wait, in_pod=in_pod)

    def ended(self, wrote: bool = False) -> bool:
        """Whether the trial has ended: none of its processes is left, and one was seen, or it
        ``wrote`` its metrics (a short trial may end before the relay first looks), or none
        showed up within ``start_wait`` seconds."""

        def find_here(markers: Sequence[bytes], without: bytes) -> list[int]:
            return processes_with(markers, without, unreadable=self.in_pod)

        find = self.find or find_here
        if find(self.markers, f"{names.ENV_SIDECAR}=".encode() + b"metrics-collector"):
            self.seen = True
            return False
        return self.seen or wrote or self.clock() - self.started >= self.start_wait


def batches(observations: Sequence[Observation]) -> list[tuple[int, dict[str, float]]]:
    """Observations as pushes: consecutive values of one step together, in order (a metric seen
    twice at one step starts a new push, so that every value is sent, as locally)."""
    out: list[tuple[int, dict[str, float]]] = []
    for o in observations:
        if out and out[-1][0] == o.step and o.metric not in out[-1][1]:
            out[-1][1][o.metric] = o.value
        else:
            out.append((o.step, {o.metric: o.value}))
    return out


def relay(
    reader: Reader,
    watch: TrialWatch,
    push: Push,
    interval: float = INTERVAL,
    sleep: Callable[[float], None] = time.sleep,
    wrote: Callable[[], bool] = lambda: False,
) -> str | None:
    """Read and push until the trial has ended, then a last time; returns the collector's
    problem (``None``: the metrics were collected). ``wrote``: whether the metrics file (or
    directory) exists, which tells a trial that ended before the relay first looked."""
    while True:
        # Before reading, so that what the trial wrote before it ended is read.
        ended = watch.ended(wrote())
        for step, values in batches(reader.poll(final=ended)):
            push(step, values)
        if ended:
            return reader.problem
        sleep(interval)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tuner.collectors.relay", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--config", required=True, help="the collector and objective, as JSON")
    parser.add_argument("--interval", type=float, default=INTERVAL)
    parser.add_argument("--start-wait", type=float, default=START_WAIT)
    args = parser.parse_args(argv)
    try:
        watch = TrialWatch.from_env(dict(os.environ), args.start_wait, in_pod=True)
        watch.ended()  # look early: a short trial may be gone once the imports are done
        from tuner.report import send

        config = json.loads(args.config)
        reader = reader_from(config)
        path = config["metricsCollectorSpec"]["source"]["fileSystemPath"]["path"]
        problem = relay(reader, watch, send, args.interval, wrote=lambda: os.path.exists(path))
    except ReportError as e:
        print(f"tuner-metrics-collector: {e}", file=sys.stderr, flush=True)
        return 1
    except (TunerError, ValueError, LookupError) as e:  # a bad --config: a bug of the manifest
        print(f"{PROBLEM_PREFIX}{e}", flush=True)
        return 0
    if problem:
        print(f"{PROBLEM_PREFIX}{problem}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
