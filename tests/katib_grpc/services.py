"""Real ``tuner suggestion-service`` processes for tests: started on a free port, stopped by pid."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent.parent


def require_grpc() -> None:
    pytest.importorskip("grpc", reason="the grpc extra is not installed: pip install '.[grpc]'")
    pytest.importorskip("grpc_tools", reason="the grpc extra is not installed (grpcio-tools)")


@contextmanager
def suggestion_service(tmp: Path, algorithm: str) -> Iterator[str]:
    """``tuner suggestion-service --algorithm ALGORITHM --port 0``; yields its address."""
    log = tmp / f"suggestion-{algorithm}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")}
    env["PYTHONPATH"] = str(ROOT)
    command = [
        sys.executable, "-m", "tuner.cli", "suggestion-service",
        "--algorithm", algorithm, "--port", "0",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:

        def listening() -> str | None:
            if process.poll() is not None:
                pytest.fail(f"tuner suggestion-service exited:\n{log.read_text()}")
            found = re.search(r" on (127\.0\.0\.1:\d+)", log.read_text())
            return found.group(1) if found else None

        yield wait_for(listening, "tuner suggestion-service to listen", timeout=120)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
