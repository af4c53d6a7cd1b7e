"""The service image, built and run: deploy/build-image.sh makes it with no network inside the
build (a debootstrapped Debian base, a wheelhouse made outside), and the container, as a
non-root user on a read-only root filesystem, prints the version and serves ``/healthz`` and
``/metrics``. Run by ``make test-image`` (which sets TUNER_TEST_IMAGE=1: a build takes minutes,
too long for every ``make test``); skipped, saying why, where dockerd cannot run."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.ops.dockerd import DockerUnavailable, docker_env
from tests.servers import free_port
from tests.waiting import wait_for
from tuner.cli.parser import tuner_version

ROOT = Path(__file__).resolve().parents[2]
TAG = "tuner:test-image"
UID = "10001"
# A read-only root: the service writes only to its workdir and /tmp, both tmpfs here.
RUN = [
    "--network", "host", "--read-only",
    "--tmpfs", "/tmp", "--tmpfs", f"/var/lib/tuner:uid={UID},gid={UID}",
]  # fmt: skip

pytestmark = [
    pytest.mark.image,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        not os.environ.get("TUNER_TEST_IMAGE"),
        reason="builds the image for minutes: run `make test-image` (TUNER_TEST_IMAGE=1)",
    ),
]


def docker(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        ["docker", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"docker {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def env() -> Iterator[dict[str, str]]:
    try:
        with docker_env() as env:
            yield env
    except DockerUnavailable as e:
        pytest.skip(f"no Docker daemon: {e}")


@pytest.fixture(scope="module")
def image(env: dict[str, str]) -> str:
    # Bounded: a cold build (debootstrap, the wheelhouse) takes minutes, a warm one much less.
    done = subprocess.run(
        ["bash", str(ROOT / "deploy" / "build-image.sh"), TAG],
        env={**env, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=780,
    )
    assert done.returncode == 0, f"build-image.sh failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    return TAG


def test_the_image_prints_the_version(env: dict[str, str], image: str) -> None:
    out = docker(env, "run", "--rm", *RUN, image, "--version")
    assert out.strip() == f"tuner {tuner_version()}"


def test_the_image_serves_healthz_and_metrics_as_non_root(env: dict[str, str], image: str) -> None:
    port = free_port()
    name = f"tuner-image-test-{uuid.uuid4().hex[:8]}"
    docker(
        env, "run", "-d", "--name", name, *RUN, image,
        "serve", "--runner", "local", "--host", "127.0.0.1", "--port", str(port),
        "--db", "sqlite:////var/lib/tuner/tuner.db", "--log-format", "json",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, "the container's /healthz", timeout=120, interval=0.5)
        metrics = httpx.get(f"{url}/metrics", timeout=30)
        assert metrics.status_code == 200
        assert "tuner_write_queue_depth" in metrics.text
        uid = docker(env, "exec", name, "python3", "-c", "import os; print(os.getuid())")
        assert uid.strip() == UID
        read_only = "import os; print(os.statvfs('/').f_flag & os.ST_RDONLY)"
        assert docker(env, "exec", name, "python3", "-c", read_only).strip() == "1"
    finally:
        logs = subprocess.run(
            ["docker", "logs", name], env=env, capture_output=True, text=True, timeout=60
        )
        subprocess.run(["docker", "rm", "-f", name], env=env, capture_output=True, timeout=60)
    assert '"logger": "uvicorn.error"' in logs.stderr, logs.stderr[-2000:]
