"""Browser tests of the dashboard: a real `tuner serve` and headless Chromium via Playwright.

They skip when /usr/bin/chromium (Debian's `chromium` package) or the `playwright` package is
missing; Playwright drives the system browser (no `playwright install`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_serve import Server, free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def start_server(tmp: Path, db_url: str, token: str | None) -> Server:
    """`tuner serve` in a subprocess (as tests/api/test_serve.py starts it), up and healthy."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")}
    env["PYTHONPATH"] = str(ROOT)
    token_file = tmp / "token"
    args = [
        sys.executable, "-m", "tuner.cli", "serve", "--db", db_url, "--port", str(port),
        "--workdir", str(tmp / "work"), "--log-level", "warning",
    ]  # fmt: skip
    if token is not None:
        token_file.write_text(token + "\n")
        args += ["--token-file", str(token_file)]
    log = tmp / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"tuner serve did not come up:\n{log.read_text()}")
        time.sleep(0.05)
    return Server(url, db_url, token_file, process, log)


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(5)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install playwright (no browser download)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Console:
    """Console errors and uncaught exceptions of a page (a test asserts there are none)."""

    def __init__(self, page: Any, allow: Callable[[Any], bool] | None = None) -> None:
        self.errors: list[str] = []
        self._allow = allow or (lambda message: False)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _console(self, message: Any) -> None:
        if message.type == "error" and not self._allow(message):
            self.errors.append(f"console: {message.text} at {message.location}")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
