"""The ``File`` collector: a metrics file read incrementally while the trial runs.

:func:`parser_for` picks the line parser of a spec's collector; :class:`FileTailer` feeds it the
lines of the file as they are completed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from tuner.collectors.common import Clock, MetricsParser, utcnow
from tuner.collectors.jsonlines import JsonLineParser
from tuner.collectors.text import LineParser
from tuner.trials import Observation

if TYPE_CHECKING:
    from tuner.spec import ExperimentSpec, MetricsCollectorSpec, Objective


def parser_for(spec: ExperimentSpec, now: Clock = utcnow) -> LineParser | JsonLineParser | None:
    """The parser for a spec's metrics collector, or ``None`` when there is no text to parse.

    ``StdOut`` and ``File`` with format ``TEXT`` get a :class:`LineParser` (with the spec's
    ``metricsFormat``, if any); ``File`` with format ``JSON`` gets a :class:`JsonLineParser`;
    every other kind gets ``None``.
    """
    return collector_parser(spec.metrics_collector_spec, spec.objective, now)


def collector_parser(
    mc: MetricsCollectorSpec, objective: Objective, now: Clock = utcnow
) -> LineParser | JsonLineParser | None:
    """:func:`parser_for` from the two parts of a spec it reads (the collector sidecar has no
    whole spec)."""
    kind = mc.kind.value
    source = mc.source
    formats = source.filter.metrics_format if source is not None and source.filter else None
    if kind == "StdOut":
        return LineParser(objective, formats, now=now)
    if kind == "File":
        fsp = source.file_system_path if source is not None else None
        if fsp is not None and fsp.format is not None and fsp.format.value == "JSON":
            return JsonLineParser(objective, now=now)
        return LineParser(objective, formats, now=now)
    return None


class FileTailer:
    """Reads a metrics file incrementally; the controller calls :meth:`poll` periodically.

    Each poll parses the complete lines appended since the previous poll. A file that does not
    exist yet is not an error while the trial runs (it may create it later): the poll returns
    ``[]``. When the trial has ended (``poll(final=True)``) a file that never existed is Katib's
    "failed to open the file": :attr:`problem` says so. A trailing line without its newline is
    kept back until it is completed, or until the final poll. If the file shrinks or is replaced
    by another file (a different inode), reading starts over from its beginning.

    Lines are decoded as UTF-8 (undecodable bytes replaced); ``\\r\\n`` endings are accepted.
    Errors other than a missing file (permissions, a directory at ``path``) propagate.
    """

    def __init__(self, path: str | os.PathLike[str], parser: MetricsParser) -> None:
        self.path = Path(path)
        self.parser = parser
        self._offset = 0
        self._identity: tuple[int, int] | None = None
        self._pending = b""
        self._missing_at_end = False

    @property
    def offset(self) -> int:
        """Bytes of the file consumed so far (including a kept-back partial line)."""
        return self._offset

    @property
    def unknown(self) -> list[str]:
        return self.parser.unknown

    @property
    def problem(self) -> str | None:
        """Why the file's metrics are unavailable: never created, or a line its parser refused."""
        if self._missing_at_end:
            return f"the metrics file {self.path} was never created by the trial"
        return self.parser.problem

    def poll(self, final: bool = False) -> list[Observation]:
        """Observations from the lines completed since the last poll.

        Args:
            final: also parse a trailing line that has no newline (the trial has ended).
        """
        data = self._read_new()
        if final and self._identity is None:
            self._missing_at_end = True
        buffer = self._pending + data
        *lines, self._pending = buffer.split(b"\n")
        if final and self._pending:
            lines.append(self._pending)
            self._pending = b""
        out: list[Observation] = []
        for raw in lines:
            out.extend(self.parser.parse(raw.decode("utf-8", errors="replace").rstrip("\r")))
        return out

    def flush(self) -> list[Observation]:
        """Same as ``poll(final=True)``."""
        return self.poll(final=True)

    async def collect(self, final: bool = False) -> list[Observation]:
        """:meth:`poll`, as a :class:`~tuner.collectors.common.PolledCollector`."""
        return self.poll(final)

    def _read_new(self) -> bytes:
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            return b""
        with f:
            st = os.fstat(f.fileno())
            identity = (st.st_dev, st.st_ino)
            if (self._identity is not None and identity != self._identity) or (
                st.st_size < self._offset
            ):
                self._offset = 0
                self._pending = b""
            self._identity = identity
            f.seek(self._offset)
            data = f.read()
        self._offset += len(data)
        return data
