"""A Docker daemon for the image test: the machine's own when one answers, else a private
``dockerd`` started for the test (Debian's ``docker.io``) and stopped after it, by its pid.

A sandbox without iptables or bridges still runs dockerd with ``--iptables=false
--bridge=none``; containers then use the host's network. The storage driver is overlay2 where
the kernel offers it, else vfs (which copies every layer: builds take minutes longer). Its data
root is kept under ~/.cache/tuner-image/docker, so that the base image and layers survive
between runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CACHE = Path(os.environ.get("TUNER_IMAGE_CACHE", Path.home() / ".cache" / "tuner-image"))


class DockerUnavailable(Exception):
    """No daemon answers and none can be started here (the message says why)."""


def answers(env: dict[str, str]) -> bool:
    try:
        done = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            env=env,
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@contextmanager
def docker_env() -> Iterator[dict[str, str]]:
    """The environment whose ``docker`` reaches a running daemon (``DOCKER_HOST`` set)."""
    env = dict(os.environ)
    if shutil.which("docker") is None:
        raise DockerUnavailable("the docker client is not installed")
    if answers(env):
        yield env
        return
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if not os.path.exists(dockerd):
        raise DockerUnavailable("dockerd is not installed (apt-get install docker.io)")
    if os.geteuid() != 0:
        raise DockerUnavailable("dockerd needs root here, and the tests do not run as root")
    problems = []
    for driver in ("overlay2", "vfs"):
        try:
            with _private_dockerd(dockerd, driver, env) as started:
                yield started
                return
        except _NoStart as e:
            problems.append(f"--storage-driver={driver}: {e}")
    raise DockerUnavailable("dockerd cannot start here: " + "; ".join(problems))


class _NoStart(Exception):
    pass


@contextmanager
def _private_dockerd(
    dockerd: str, driver: str, base_env: dict[str, str]
) -> Iterator[dict[str, str]]:
    """A dockerd of our own on a private socket, stopped (by its pid) when the block ends."""
    env = dict(base_env)
    run_dir = Path(tempfile.mkdtemp(prefix="tuner-dockerd-"))
    socket = run_dir / "docker.sock"
    log = run_dir / "dockerd.log"
    (CACHE / "docker").mkdir(parents=True, exist_ok=True)
    command = [
        dockerd,
        f"--host=unix://{socket}",
        f"--data-root={CACHE / 'docker'}",
        f"--exec-root={run_dir / 'exec'}",
        f"--pidfile={run_dir / 'dockerd.pid'}",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        f"--storage-driver={driver}",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    env["DOCKER_HOST"] = f"unix://{socket}"
    try:
        deadline = time.monotonic() + 60
        while not answers(env):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace").splitlines()[-4:]
                raise _NoStart(" | ".join(tail))
            time.sleep(0.5)
        yield env
        # Our own daemon: drop the images earlier builds left untagged, so the cache stays small.
        subprocess.run(
            ["docker", "image", "prune", "-f"], env=env, capture_output=True, timeout=120
        )
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        _unmount_under(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)


def _unmount_under(path: Path) -> None:
    """Unmount what dockerd left mounted under ``path`` (its network namespace), deepest first."""
    mounts = Path("/proc/mounts").read_text().splitlines()
    points = [m.split()[1] for m in mounts if len(m.split()) > 1]
    for point in sorted((p for p in points if p.startswith(f"{path}/")), reverse=True):
        subprocess.run(["umount", point], capture_output=True, timeout=30)
