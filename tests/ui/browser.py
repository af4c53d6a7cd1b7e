"""What the browser tests share: a quiet `tuner serve`, Chromium's settings, page helpers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests import servers
from tests.servers import Server, stop_server

__all__ = ["stop_server"]  # the UI tests stop what start_server started

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 60_000
"""Default bound of a page's waits: generous, so a slow or loaded machine passes too."""
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
    """A real `tuner serve` for the browser, quiet unless something goes wrong."""
    return servers.start_server(tmp, db_url, token, args=["--log-level", "warning"])


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


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


DRAWN_TRACES = """id => {
  const node = document.getElementById(id);
  if (!node || !node.data || !node.classList.contains('js-plotly-plot')) return 0;
  const withData = node.data.filter((t) => (t.type === 'parcoords'
    ? t.dimensions.length > 0 && t.dimensions[0].values.length > 0
    : (t.x || []).length > 0)).length;
  const drawn = node.querySelectorAll(
    '.scatterlayer .trace, .barlayer .trace, .parcoords .y-axis').length;
  return drawn > 0 ? withData : 0;
}"""


"""How many traces with points the plot ``id`` has, counting only a plot plotly has drawn into
the page (its ``.trace`` elements, or a parcoords ``.y-axis`` each, exist); 0 while it is not."""


def wait_for_traces(page: Any, plot_id: str, timeout: float = WAIT_MS) -> int:
    """Wait (bounded) until the plot ``plot_id`` shows traces; returns how many."""
    page.wait_for_function(f"({DRAWN_TRACES})({plot_id!r}) > 0", timeout=timeout)
    count: int = page.evaluate(DRAWN_TRACES, plot_id)
    return count
