"""The supervisor of one local trial: ``python -I -S exitcode.py STATUS PIDFILE -- argv...``.

Before anything else it writes its pid and start time to ``PIDFILE``: the record that the
trial's command is (about to be) running, which a restarted controller finds even when the
trial's Running state never reached the database. Then it runs the trial's command as its
child, in the session the local runner made for it, with stdout on the inherited log file
and stderr through this process: each chunk goes to the log too, and the last lines are kept.
When the child ends, its exit status and stderr tail are written atomically to the ``STATUS``
file (the code on the first line, the tail after it), then this process exits with the child's
code. So a trial that ends while no controller watches (the controller was killed) still has a
known ending for the next controller to record.

SIGTERM and SIGINT do not stop the supervisor itself: the runner signals the whole process
group, the child gets the signal, and its death is what gets recorded.

The trial ends when its command does, as a Pod ends with its container: whatever the command
left running in the session (a ``sleep 300 &``, a worker) is killed once the status is written,
and does not hold the trial open by keeping its stderr.

It starts once per trial, so it imports only built-in modules (``os`` and ``_signal``, the C
half of ``signal``, whose Python half would import ``enum``): about 10 ms of interpreter start,
where ``subprocess`` alone would add 20 ms more.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C half of signal: no stubs
import os
import select
import sys
import time

TAIL_LINES = 5
TAIL_BYTES = 2000
POLL = 0.1
"""Seconds between looks at whether the command ended while its stderr stays open."""
WRAP_SAFE = 30.0
"""Seconds of trial under which the pid counter cannot have gone all the way round (it would
take over 1,000 process starts a second at the smallest ``pid_max``, 32,768)."""


def tail_text(data: bytes) -> str:
    """The last :data:`TAIL_LINES` non-empty lines of ``data``, at most :data:`TAIL_BYTES`."""
    text = data[-TAIL_BYTES * 2 :].decode("utf-8", errors="replace")
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-TAIL_LINES:])[-TAIL_BYTES:]


def write_status(path: str, code: int, stderr_tail: str) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(f"{code}\n{stderr_tail}")
    os.replace(temporary, path)


def write_pid_file(path: str) -> None:
    """``<pid> <start time>`` of this process, written atomically (see tuner.processes)."""
    with open("/proc/self/stat", encoding="ascii") as f:
        start = f.read().rsplit(")", 1)[-1].split()[19]
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="ascii") as f:
        f.write(f"{os.getpid()} {start}\n")
    os.replace(temporary, path)


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        os.write(2, b"usage: exitcode.py STATUS PIDFILE -- COMMAND [ARG...]\n")
        return 2
    status_path, pid_path, command = argv[0], argv[1], argv[3:]
    started = time.monotonic()
    write_pid_file(pid_path)
    read_end, write_end = os.pipe()
    try:
        child = os.posix_spawnp(
            command[0],
            command,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, write_end, 2),
                (os.POSIX_SPAWN_CLOSE, read_end),
                (os.POSIX_SPAWN_CLOSE, write_end),
            ],
            setsigdef=(_signal.SIGTERM, _signal.SIGINT),  # the child takes the group's signals
        )
    except OSError as e:
        message = f"cannot start {command[0]!r}: {e.strerror or e}"
        os.write(2, message.encode() + b"\n")
        write_status(status_path, 127, message)
        return 127
    os.close(write_end)
    _signal.signal(_signal.SIGTERM, _signal.SIG_IGN)
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    os.set_blocking(read_end, False)
    kept, open_ = b"", True
    while True:
        if open_:
            select.select([read_end], [], [], POLL)
            kept, open_ = copy(read_end, kept)
            done, status = os.waitpid(child, os.WNOHANG)
            if done:
                break
        else:  # stderr closed (by the command and all it started): just wait for the end
            _, status = os.waitpid(child, 0)
            break
    kept, _ = copy(read_end, kept)  # what it wrote just before it ended
    code = os.waitstatus_to_exitcode(status)
    write_status(status_path, code, tail_text(kept))
    end_session(time.monotonic() - started < WRAP_SAFE)
    return code if code >= 0 else 128 - code


def copy(fd: int, kept: bytes) -> tuple[bytes, bool]:
    """Copy what can be read from ``fd`` now to the log; the new tail, and whether ``fd`` is
    still open (no end of file)."""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return kept, True
        if not chunk:
            return kept, False
        os.write(1, chunk)  # stdout is the trial's log, opened for appending
        kept = (kept + chunk)[-TAIL_BYTES * 2 :]


def end_session(short: bool = False) -> None:
    """SIGKILL every other process of this session (this process leads it).

    Reading every process's ``stat`` costs milliseconds on a busy host, as much as a trivial
    trial. After a ``short`` trial only the pids above this process's are read: whatever the
    command left behind started after it, and pids grow until the counter wraps, which the
    kernel's last pid being below ours shows (a full round in a short trial cannot happen)."""
    me = os.getpid()
    above = short and last_pid() >= me
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me or (above and int(entry) < me):
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[-1].split()
            if int(fields[3]) == me:
                os.kill(int(entry), _signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to signal


def last_pid() -> int:
    """The last pid the kernel gave out in this pid namespace (0 when unknown)."""
    try:
        with open("/proc/sys/kernel/ns_last_pid", encoding="ascii") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
