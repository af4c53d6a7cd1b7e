"""Dashboard load times with a lot of data, in headless Chromium against a real ``tuner serve``.

Data: the same as ``tests/ui/test_speed.py`` (``populate``): 500 experiments, one of them with
10,000 trials of 5 steps (40% early-stopped), bulk-inserted into SQLite before the server starts.

Timed, ``--runs`` times each after one warm-up, from navigation until the page marks itself
ready (``window.tunerReady``):

* list page: ``/`` with 500 experiments drawn (target: 1 s);
* experiment page, cold browser cache: ``/ui/experiments/default/big`` interactive, i.e. status,
  leaderboard and buttons drawn and usable (target: 2 s); a new browser context per run, the
  server warm (templates compiled, plotly gzipped, importance cached);
* experiment page, warm browser cache: until the history plot is drawn.

Printed: median and worst against the target. The browser tests check that these pages render
correctly, without a time limit (a loaded machine made one flaky); this is where the budgets live.

Run: ``.venv/bin/python bench/dashboard.py [--runs 5]`` (needs ``/usr/bin/chromium`` and the
``playwright`` package; no ``playwright install``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench._common import machine, markdown_table  # noqa: E402
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server  # noqa: E402
from tests.ui.test_speed import EXPERIMENTS, TRIALS, load, populate, static_url_of  # noqa: E402

LIST_TARGET = 1.0
EXPERIMENT_TARGET = 2.0


def measure(browser: Any, url: str, ready: str, runs: int, *, fresh: bool) -> list[float]:
    """Seconds until ``ready``, ``runs`` times after a warm-up; ``fresh``: a new context each."""
    times = []
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        for i in range(runs + 1):
            if fresh:
                context.close()
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
            elapsed = load(context.new_page(), url, ready)
            if i:
                times.append(elapsed)
    finally:
        context.close()
    return times


def row(what: str, times: list[float], target: float | None) -> list[str]:
    median, worst = statistics.median(times), max(times)
    verdict = "-" if target is None else ("ok" if median <= target else "OVER")
    goal = "-" if target is None else f"{target * 1000:.0f}"
    return [what, f"{median * 1000:.0f}", f"{worst * 1000:.0f}", goal, verdict]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed loads per page (default 5)")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    print(machine())
    tmp = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    db_url = f"sqlite:///{tmp / 'big.db'}"
    print(f"loading {EXPERIMENTS} experiments, {TRIALS} trials ...", file=sys.stderr)
    populate(db_url)
    server = start_server(tmp, db_url, None)
    try:
        page_url = server.url + "/ui/experiments/default/big"
        httpx.get(page_url, timeout=120)
        plotly = server.url + static_url_of(page_url)
        httpx.get(plotly, headers={"Accept-Encoding": "gzip"}, timeout=120)
        httpx.get(server.url + "/api/v1/experiments/big/plots/importance", timeout=120)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                rows = [
                    row(
                        f"list page, {EXPERIMENTS} experiments",
                        measure(browser, server.url + "/", "list", args.runs, fresh=True),
                        LIST_TARGET,
                    ),
                    row(
                        f"experiment page, {TRIALS} trials, cold cache: interactive",
                        measure(browser, page_url, "table", args.runs, fresh=True),
                        EXPERIMENT_TARGET,
                    ),
                    row(
                        f"experiment page, {TRIALS} trials, warm cache: history plot",
                        measure(browser, page_url, "plots", args.runs, fresh=False),
                        None,
                    ),
                ]
            finally:
                browser.close()
    finally:
        stop_server(server)
    print(f"\n{args.runs} timed loads per page after one warm-up (ms)")
    print(markdown_table(["page", "median", "worst", "target", "verdict"], rows, align="lrrrl"))


if __name__ == "__main__":
    main()
