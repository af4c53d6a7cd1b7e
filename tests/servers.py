"""Real `tuner serve` processes for tests: started on a free port, healthy, stopped by pid."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    url: str
    db_url: str
    token_file: Path
    process: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(
    tmp: Path,
    db_url: str,
    token: str | None = None,
    *,
    name: str = "serve",
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    default_token: bool = False,
    port: int | None = None,
) -> Server:
    """`tuner serve` in a subprocess, with its own workdir and log under ``tmp``.

    The environment is this one without ``TUNER_*`` variables, plus ``env``; ``python3`` on
    ``PATH`` is this interpreter, as in an activated virtualenv. Without ``token`` (nor
    ``TUNER_API_TOKEN`` in ``env``), the server runs with ``--no-token``, unless
    ``default_token``: then it makes (or reuses) the user's token file.
    """
    port = port or free_port()  # a restart on the same port: the trials' TUNER_API_URL
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")}
    full_env["PYTHONPATH"] = str(ROOT)
    full_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full_env.get('PATH', '')}"
    full_env.update(env or {})
    token_file = tmp / f"{name}.token"
    command = [
        sys.executable, "-m", "tuner.cli", "serve", "--db", db_url, "--port", str(port),
        "--workdir", str(tmp / name), *args,
    ]  # fmt: skip
    if token is not None:
        token_file.write_text(token + "\n")
        command += ["--token-file", str(token_file)]
    elif not default_token and "TUNER_API_TOKEN" not in (env or {}):
        command.append("--no-token")  # the explicit opt-out: these tests are about other things
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a loaded 2-core machine imports slowly
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return Server(url, db_url, token_file, process, log)
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait(5)
            pytest.fail(f"tuner serve ({name}) did not come up:\n{log.read_text()}")
        time.sleep(0.05)


def stop_server(server: Server) -> None:
    if server.process.poll() is not None:
        return
    server.process.terminate()
    try:
        server.process.wait(15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(5)
