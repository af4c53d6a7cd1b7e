"""The ``TensorFlowEvent`` collector: TensorBoard event files under the spec's directory.

The files are read with TensorBoard's own reader (``EventAccumulator``, as Katib's
``tfevent_loader.py`` does), from the ``tensorboard`` package (the ``tfevent`` extra). Every file
under ``source.fileSystemPath.path`` (kind ``Directory``) is read, incrementally: each poll
picks up the events appended since the previous one, and new files as they appear.

Which tags make which metric follows Katib: a metric name may carry a directory,
``train/accuracy``; the tag must *start with* the name's last part (``accuracy``) and the event
file's directory must *end with* the name's directory part (``train``), when there is one. Both
old-style scalar summaries (``simple_value``) and TF2 tensor summaries count. The observation's
time is the event's wall time and its step is the event's step (Katib keeps no step).

A directory that never appeared by the end of a trial makes its metrics unavailable, as for a
missing metrics file; a file TensorBoard cannot read is skipped, as Katib skips it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner.collectors.common import Unknown, epoch_seconds, utcnow
from tuner.trials import Observation

if TYPE_CHECKING:
    from tuner.spec import Objective

log = logging.getLogger(__name__)

READ_INTERVAL = 0.5
"""Seconds between two reads of a running trial's event directory."""
INSTALL_HINT = "the TensorFlowEvent collector needs TensorBoard: pip install 'tuner[tfevent]'"


def tensorboard_missing() -> str | None:
    """Why TensorBoard's event reader cannot be imported here, or ``None`` when it can."""
    try:
        import tensorboard.backend.event_processing.event_accumulator  # noqa: F401
    except ImportError:
        return INSTALL_HINT
    return None


def should_consider(tag: str, metric: str, event_file: str) -> bool:
    """Whether ``tag`` of ``event_file`` is an observation of ``metric`` (Katib's rule)."""
    parts = metric.split("/")
    wanted_dir = os.path.dirname(metric) if len(parts) >= 2 else os.path.dirname(event_file)
    return tag.startswith(parts[-1]) and os.path.dirname(event_file).endswith(wanted_dir)


class TfEventCollector:
    """Reads a trial's TensorBoard event directory; the controller polls :meth:`collect`."""

    def __init__(self, directory: str | os.PathLike[str], objective: Objective) -> None:
        self.directory = Path(directory)
        self.metrics: tuple[str, ...] = tuple(objective.metric_names)
        self._accumulators: dict[str, Any] = {}
        self._emitted: dict[tuple[str, str, str], int] = {}  # (file, kind, tag) -> items seen
        self._unknown = Unknown(frozenset())
        self._seen_directory = False
        self._missing_at_end = False
        self._read_at = float("-inf")

    @property
    def unknown(self) -> list[str]:
        """A few tags that matched no metric of the spec, with a value (``tag=value``)."""
        return list(self._unknown.samples.values())

    @property
    def problem(self) -> str | None:
        if self._missing_at_end:
            return f"the event directory {self.directory} was never created by the trial"
        return None

    async def collect(self, final: bool = False) -> list[Observation]:
        """:meth:`poll` in a thread, at most every :data:`READ_INTERVAL` seconds until the end."""
        now = time.monotonic()
        if not final and now - self._read_at < READ_INTERVAL:
            return []
        self._read_at = now
        return await asyncio.to_thread(self.poll, final)

    def poll(self, final: bool = False) -> list[Observation]:
        """Observations from the events written since the previous poll."""
        if not self.directory.is_dir():
            if final and not self._seen_directory:
                self._missing_at_end = True
            return []
        self._seen_directory = True
        out: list[Observation] = []
        for root, _dirs, files in os.walk(self.directory):
            for name in sorted(files):
                path = os.path.join(root, name)
                try:
                    out.extend(self._read(path))
                except Exception as e:  # Katib skips a file it cannot read
                    log.debug("skipping %s: %s", path, e)
        return out

    def _read(self, path: str) -> list[Observation]:
        from tensorboard.backend.event_processing.event_accumulator import (
            SCALARS,
            TENSORS,
            EventAccumulator,
        )
        from tensorboard.util.tensor_util import make_ndarray

        accumulator = self._accumulators.get(path)
        if accumulator is None:
            accumulator = EventAccumulator(
                path, size_guidance={SCALARS: 0, TENSORS: 0}, purge_orphaned_data=False
            )
            self._accumulators[path] = accumulator
        accumulator.Reload()
        tags = accumulator.Tags()
        out: list[Observation] = []
        for kind in (TENSORS, SCALARS):
            for tag in tags[kind]:
                items = accumulator.Tensors(tag) if kind == TENSORS else accumulator.Scalars(tag)
                key = (path, kind, tag)
                new = items[self._emitted.get(key, 0) :]
                self._emitted[key] = len(items)
                metrics = [m for m in self.metrics if should_consider(tag, m, path)]
                for item in new:
                    raw = make_ndarray(item.tensor_proto) if kind == TENSORS else item.value
                    try:
                        value = float(raw)
                    except (TypeError, ValueError):
                        continue  # not a scalar
                    if not metrics:
                        self._unknown.note(tag, repr(value))
                    stamp = epoch_seconds(item.wall_time) or utcnow()
                    out.extend(
                        Observation(metric=m, step=int(item.step), value=value, time=stamp)
                        for m in metrics
                    )
        return out
