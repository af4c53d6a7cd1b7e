"""The dashboard with a lot of data, bulk-inserted before the server starts: the list page with
500 experiments, an experiment page with 10,000 trials.

These check that the pages render correctly and print how long they took; they assert no time
budget, since a loaded machine makes any wall-clock limit flaky. The budgets (list page 1 s,
experiment page interactive in 2 s) are measured by ``bench/dashboard.py``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from tests.helpers import experiment_dict
from tests.servers import Server
from tests.ui.browser import Console, screenshot, start_server, stop_server
from tuner.spec import load_spec
from tuner.storage import make_engine
from tuner.storage.tables import ExperimentRow, ObservationRow, TrialMetricRow, TrialRow
from tuner.trials import TrialState

EXPERIMENTS = 500
TRIALS = 10_000
STEPS = 5
WAIT_MS = 120_000  # bounds of the waits: generous, for a slow or loaded machine
# Real trials and a browser on a busy machine: a bound far above the suite's default.
pytestmark = pytest.mark.timeout(600)


def populate(db_url: str) -> None:
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    rng = random.Random(0)
    spec = load_spec(experiment_dict("big", maxTrialCount=TRIALS, parallelTrialCount=8)).dump()
    with engine.begin() as conn:
        rows = []
        for i in range(EXPERIMENTS):
            namespace = "team-a" if i % 5 == 1 else "default"
            name = f"exp-{i:03d}" if i else "big"
            metadata = {**spec["metadata"], "name": name, "namespace": namespace}
            rows.append(
                {
                    "namespace": namespace,
                    "name": name,
                    "uid": f"{i:032x}",
                    "spec": {**spec, "metadata": metadata},
                    "phase": "Succeeded",
                    "reason": "ExperimentMaxTrialsReached",
                    "created_at": now - timedelta(minutes=i),
                    "started_at": now - timedelta(minutes=i),
                    "completed_at": now,
                }
            )
        conn.execute(insert(ExperimentRow), rows)
        big = conn.scalar(select(ExperimentRow.id).where(ExperimentRow.name == "big"))
        trials = []
        for n in range(TRIALS):
            x, k = rng.uniform(-2, 2), rng.randint(1, 3)
            stopped = n > 20 and rng.random() < 0.4
            trials.append(
                {
                    "experiment_id": big,
                    "number": n,
                    "name": f"big-{n:04d}",
                    "parameters": {"x": x, "n": k},
                    "attrs": {},
                    "state": TrialState.EARLY_STOPPED.value if stopped else "Succeeded",
                    "message": "step 2: worse than the median" if stopped else None,
                    "created_at": now,
                    "started_at": now,
                    "finished_at": now,
                    "objective": (x - 0.5) ** 2 + 0.1 * k,
                    "steps": 3 if stopped else STEPS,
                }
            )
        conn.execute(insert(TrialRow), trials)
        ids = dict(conn.execute(select(TrialRow.name, TrialRow.id)).all())
        metrics, observations = [], []
        for t in trials:
            trial_id = ids[t["name"]]
            metrics.append(
                {"trial_id": trial_id, "name": "loss", "value": t["objective"], "step": 0,
                 "count": t["steps"]}
            )  # fmt: skip
            metrics.append(
                {"trial_id": trial_id, "name": "accuracy", "value": 1 / (1 + t["objective"]),
                 "step": 0, "count": t["steps"]}
            )  # fmt: skip
            for step in range(t["steps"]):
                value = t["objective"] + math.exp(-step)
                observations.append(
                    {"trial_id": trial_id, "metric": "loss", "step": step, "value": value,
                     "time": now}
                )  # fmt: skip
        conn.execute(insert(TrialMetricRow), metrics)
        conn.execute(insert(ObservationRow), observations)
    engine.dispose()


@pytest.fixture(scope="module")
def big_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("ui-speed")
    db_url = f"sqlite:///{tmp / 'big.db'}"
    populate(db_url)
    server = start_server(tmp, db_url, None)
    yield server
    stop_server(server)


def load(page: Any, url: str, ready: str) -> float:
    """Seconds from navigating to ``url`` until the page marks ``ready`` (``window.tunerReady``)."""
    start = time.perf_counter()
    page.goto(url, timeout=WAIT_MS)
    page.wait_for_function(
        f"window.tunerReady && window.tunerReady.{ready} !== undefined", timeout=WAIT_MS
    )
    return time.perf_counter() - start


def test_list_page_with_500_experiments(big_server: Server, page: Any) -> None:
    load(page, big_server.url + "/", "list")  # warm the server's first queries
    page.context.clear_cookies()
    elapsed = load(page, big_server.url + "/", "list")
    rows = page.eval_on_selector_all("#experiments tbody tr", "rows => rows.length")
    print(f"\nlist page, {EXPERIMENTS} experiments: {elapsed * 1000:.0f} ms")
    assert rows == EXPERIMENTS
    page.fill("#filter", "exp-01")
    assert page.eval_on_selector_all("#experiments tbody tr", "rows => rows.length") == 10
    screenshot(page, "experiments-500")


def test_experiment_page_with_10k_trials(big_server: Server, browser: Any) -> None:
    """Interactive = status, leaderboard and buttons drawn and usable; the plots follow once
    plotly's 4.6 MB bundle is compiled (its cost dominates on a slow machine; printed)."""
    url = big_server.url + "/ui/experiments/default/big"
    # A warm server (templates compiled, plotly gzipped, importance cached); a cold browser.
    httpx.get(url, timeout=WAIT_MS / 1000)
    httpx.get(
        big_server.url + static_url_of(url),
        headers={"Accept-Encoding": "gzip"},
        timeout=WAIT_MS / 1000,
    )
    httpx.get(big_server.url + "/api/v1/experiments/big/plots/importance", timeout=WAIT_MS / 1000)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    console = Console(page)
    try:
        elapsed = load(page, url, "table")
        page.wait_for_function("window.tunerReady.plots !== undefined", timeout=WAIT_MS)
        marks = page.evaluate("window.tunerReady")
        print(
            f"\nexperiment page, {TRIALS} trials, cold browser cache: interactive in "
            f"{elapsed * 1000:.0f} ms; history plot drawn at {marks['plots']:.0f} ms"
        )
        assert page.eval_on_selector_all("#board tbody tr", "rows => rows.length") == 50
        assert page.is_enabled("#raise")
        points = page.evaluate("document.getElementById('plot-history').data[0].x.length")
        assert 0 < points <= 2000
        page.locator("#plot-curves").scroll_into_view_if_needed()  # as a user would
        page.wait_for_function(
            "['parallel', 'curves', 'importance'].every(k => window.tunerReady[k] !== undefined)",
            timeout=WAIT_MS,
        )
        lines = page.evaluate("document.getElementById('plot-parallel').data[0].line.color.length")
        assert 0 < lines <= 1000
        warm = load(page, url, "plots")
        print(f"experiment page, warm browser cache: history plot drawn in {warm * 1000:.0f} ms")
        screenshot(page, "experiment-10k")
        assert console.errors == []
    finally:
        context.close()


def static_url_of(page_url: str) -> str:
    """The versioned URL of plotly's bundle that the page preloads."""
    html = httpx.get(page_url, timeout=WAIT_MS / 1000).text
    return html.split('data-plotly="', 1)[1].split('"', 1)[0]
