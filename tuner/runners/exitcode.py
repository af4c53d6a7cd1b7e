"""The supervisor of one local trial: ``python -m tuner.runners.exitcode STATUS -- argv...``.

It runs the trial's command as its child, in the session the local runner made for it, with
stdout on the inherited log file and stderr through this process: each chunk goes to the log
too, and the last lines are kept. When the child ends, its exit status and stderr tail are
written atomically to the ``STATUS`` file, then this process exits with the child's code.
So a trial that ends while no controller watches (the controller was killed) still has a
known ending for the next controller to record.

SIGTERM and SIGINT do not stop the supervisor itself: the runner signals the whole process
group, the child gets the signal, and its death is what gets recorded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import deque
from pathlib import Path

TAIL_LINES = 5
TAIL_BYTES = 2000


def tail_text(chunks: deque[bytes]) -> str:
    """The last :data:`TAIL_LINES` non-empty lines of ``chunks``, at most :data:`TAIL_BYTES`."""
    text = b"".join(chunks)[-TAIL_BYTES * 2 :].decode("utf-8", errors="replace")
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    tail = "\n".join(lines[-TAIL_LINES:])
    return tail[-TAIL_BYTES:]


def write_status(path: Path, status: dict[str, object]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(status))
    os.replace(temporary, path)


def _ignore(_signum: int, _frame: object) -> None:
    """A handler (not SIG_IGN, which the child would inherit): the group signal is for it."""


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m tuner.runners.exitcode STATUS -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    status_path, command = Path(argv[0]), argv[2:]
    signal.signal(signal.SIGTERM, _ignore)
    signal.signal(signal.SIGINT, _ignore)
    try:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError as e:
        message = f"cannot start {command[0]!r}: {e.strerror or e}"
        print(message, file=sys.stderr, flush=True)
        write_status(status_path, {"code": 127, "stderr": message})
        return 127
    assert child.stderr is not None
    tail: deque[bytes] = deque()
    kept = 0
    log = sys.stdout.buffer  # stdout is the trial's log, opened for appending
    while chunk := os.read(child.stderr.fileno(), 1 << 16):
        log.write(chunk)
        log.flush()
        tail.append(chunk)
        kept += len(chunk)
        while kept > TAIL_BYTES * 2 and len(tail) > 1:
            kept -= len(tail.popleft())
    code = child.wait()
    write_status(status_path, {"code": code, "stderr": tail_text(tail)})
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
