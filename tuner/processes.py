"""Host processes as ``/proc`` shows them: start times, sessions, and who holds what.

A pid alone names nothing for long: it is reused once its process is gone. So whatever this
project stores about a process (a local trial, the holder of an experiment's lease) is its pid
*and* its start time in clock ticks since boot, and the two must match again before the pid is
trusted (signalled, or taken to be alive).

A local trial runs in a session of its own (its supervisor's pid is the session id). Whatever it
starts inherits the session, and the trial's ``TUNER_TRIAL`` variable, so :func:`kill_session`
finds the leftovers of a trial even after its supervisor is gone: a ``sleep 300 &`` that the
trial's script forked, a data loader that moved to a process group of its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Collection, Mapping
from pathlib import Path

PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), or ``None``."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields if len(fields) >= 20 else None


def process_start_time(pid: int) -> int | None:
    """The start time of a live (not zombie) process, in clock ticks since boot; else None."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def session_id(pid: int) -> int | None:
    """The session of a live process, or ``None``."""
    fields = _stat_fields(pid)
    return None if fields is None or fields[0] in ("Z", "X") else int(fields[3])


def session_members(session: int, marker: bytes | None = None) -> list[int]:
    """The live processes of ``session`` (by session id); with ``marker``, only those whose
    environment holds that ``NAME=value`` entry (so that a reused session id is never taken for
    the trial's)."""
    return sessions_members({session: marker})


def sessions_members(sessions: Mapping[int, bytes | None]) -> list[int]:
    """:func:`session_members` of several sessions (each with its marker) in one ``/proc`` scan."""
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        fields = _stat_fields(pid)
        if fields is None or fields[0] in ("Z", "X") or int(fields[3]) not in sessions:
            continue
        marker = sessions[int(fields[3])]
        if marker is not None:
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker not in environ.split(b"\0"):
                continue
        members.append(pid)
    return members


def processes_with(
    markers: Collection[bytes], without: bytes | None = None, unreadable: bool = False
) -> list[int]:
    """The live processes (other than this one) whose environment holds every ``NAME=value``
    entry of ``markers``, and not ``without``.

    A process whose environment cannot be read (another user's, without the privilege) is
    left out, or with ``unreadable`` counted in, unless it is pid 1: in a Pod that shares its
    process namespace, pid 1 is the Pod's infrastructure process and every other process is
    one of its containers'."""
    found = []
    me = os.getpid()
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = set((entry / "environ").read_bytes().split(b"\0"))
        except PermissionError:
            if unreadable and entry.name != "1" and process_start_time(int(entry.name)):
                found.append(int(entry.name))
            continue
        except OSError:
            continue  # gone, or a kernel thread (ESRCH)
        if not all(m in environ for m in markers) or (without is not None and without in environ):
            continue
        if process_start_time(int(entry.name)) is not None:  # not a zombie
            found.append(int(entry.name))
    return found


def kill_session(session: int, marker: bytes) -> list[int]:
    """SIGKILL every live process of ``session`` whose environment holds ``marker``; returns
    their pids. The caller's own process is never among them."""
    return kill_sessions({session: marker})


def kill_sessions(sessions: Mapping[int, bytes]) -> list[int]:
    """:func:`kill_session` of several sessions (each with its marker) in one ``/proc`` scan."""
    killed = []
    for pid in sessions_members(sessions):
        if pid == os.getpid():
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed


def identity(role: str) -> str:
    """A name for this process that says where it runs and whether it still does:
    ``<role>@<host>/<pid>/<start time>`` (see :func:`holder_gone`)."""
    pid = os.getpid()
    return f"{role}@{socket.gethostname()}/{pid}/{process_start_time(pid)}"


def holder_gone(name: str) -> bool:
    """Whether ``name`` (from :func:`identity`) is a process of this host that has ended.

    ``False`` for a name of another form or of another host: nothing can be told from here.
    """
    _, at, rest = name.partition("@")
    host, _, process = rest.partition("/")
    pid, _, start = process.partition("/")
    if not at or host != socket.gethostname() or not pid.isdigit():
        return False
    return str(process_start_time(int(pid))) != start
