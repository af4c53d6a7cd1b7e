"""The process kubelet's fast mode: scripted containers, run without a process. TEST FIXTURE.

A container whose command is ``scripted-trial`` is not started as a host process: its args are
a script the kubelet plays on a timeline shared by every Pod, each one ``print=TEXT`` (a line
of log, ``$(VAR)`` expanded by the kubelet), ``sleep=SECONDS``, ``wait=PATH`` (until that file
exists on the host: a gate a test opens) or ``exit=CODE`` (the container's exit code, 0 when
the script ends without one). For example::

    command: [scripted-trial]
    args: ["sleep=2", "print=loss=${trialParameters.x}", "exit=0"]

So one machine holds 1,000 concurrent trial Jobs on the real apiserver and Job controller:
there is no process, no thread and no log pump per Pod, only a heap of due steps served by
one timer thread and a small pool that sends the status patches.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

COMMAND = "scripted-trial"
KINDS = ("print", "sleep", "wait", "exit")
GATE_POLL = 0.2
"""Seconds between looks at a ``wait=`` gate."""


@dataclass(frozen=True)
class Step:
    kind: str  # one of KINDS
    value: str


def parse_script(command: list[str], args: list[str]) -> list[Step] | None:
    """The steps of a scripted container, or ``None`` when it is an ordinary one."""
    if command[:1] != [COMMAND]:
        return None
    steps = []
    for word in command[1:] + args:
        kind, sep, value = word.partition("=")
        if not sep or kind not in KINDS:
            raise ValueError(f"scripted-trial: not print=, sleep=, wait= or exit=: {word!r}")
        if kind == "sleep":
            float(value)
        if kind == "exit":
            int(value)
        steps.append(Step(kind, value))
    return steps


class Timeline:
    """Calls each callback when it is due, on a pool of ``workers`` threads (one timer
    thread waits for the earliest)."""

    def __init__(self, workers: int = 8) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="scripted")
        self._stopped = False
        threading.Thread(target=self._run, daemon=True, name="timeline").start()

    def submit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the pool now."""
        self._pool.submit(callback)

    def after(self, delay: float, callback: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), callback))
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, callback = heapq.heappop(self._heap)
            self._pool.submit(callback)
