"""Start a local trial's supervisor and notice its end on the event loop, cheaply.

``asyncio.create_subprocess_exec`` costs the controller about 1.5 ms of CPU per trial (a
``Popen``, a transport and protocol, and on Python 3.11 a thread per child that waits for it).
Here ``os.posix_spawn`` starts the process (glibc does a ``vfork``-like clone, so the controller's
size does not matter) and a pidfd on the event loop says when it has ended; the loop's callback
reaps it at once.

``posix_spawn`` cannot change the working directory (Python has no ``chdir`` file action), so the
supervisor does (its ``DIR`` argument). The signals Python ignores (SIGPIPE, SIGXFSZ) get their
default action back, as ``subprocess`` does, and so do SIGINT and SIGTERM: a shell cannot trap
a signal that was ignored when it started, and the command would inherit that.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Mapping, Sequence

DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)


class Child:
    """A process started by :func:`spawn`: its ``pid``, and its ``returncode`` once it ended
    (``-N`` when killed by signal N), as an asyncio ``Process`` has them."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._loop = asyncio.get_running_loop()
        self._ended: asyncio.Future[int] = self._loop.create_future()
        self._fd = os.pidfd_open(pid)
        self._loop.add_reader(self._fd, self._reap)

    def _reap(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: its code is lost
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self.returncode = os.waitstatus_to_exitcode(status)
        if not self._ended.done():
            self._ended.set_result(self.returncode)

    async def wait(self) -> int:
        """The return code, once the process has ended."""
        return await asyncio.shield(self._ended)


def spawn(argv: Sequence[str], env: Mapping[str, str], stdout: int) -> Child:
    """Start ``argv`` (``argv[0]`` a path) in a session of its own, stdin on ``/dev/null`` and
    stdout and stderr on the file descriptor ``stdout``."""
    pid = os.posix_spawn(
        argv[0],
        list(argv),
        env,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, stdout, 1),
            (os.POSIX_SPAWN_DUP2, stdout, 2),
        ],
        setsid=True,
        setsigmask=(),
        setsigdef=DEFAULT_SIGNALS,
    )
    return Child(pid)
