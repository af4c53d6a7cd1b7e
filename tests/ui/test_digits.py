"""The issue's picture: the experiment page of a finished 50-trial digits experiment (the real
MLP of examples/digits_mlp.py, trained epoch by epoch), with a readable leaderboard and plots.

The experiment is submitted when the session starts (tests/ui/digits.py says why); this test
waits for its end, then checks what the API and the page show."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.servers import Server
from tests.ui.browser import Console, screenshot
from tests.ui.digits import TRIALS, HeadStart

# Real trials and a browser on a busy machine: a bound far above the suite's default.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def server(
    digits_head_start: HeadStart | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The server of the session's head start, or one started now (see tests/ui/digits.py)."""
    head_start = digits_head_start or HeadStart(tmp_path_factory.mktemp("digits"))
    yield head_start.server()
    if digits_head_start is None:
        head_start.stop()


def test_finished_digits_experiment_page(server: Server, page: Any) -> None:
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as api:
        with api.stream("GET", "/experiments/digits/events", timeout=300) as events:
            for _ in events.iter_lines():  # the stream ends when the experiment does
                pass
        status = api.get("/experiments/digits").json()["status"]
        board = api.get("/experiments/digits/leaderboard", params={"limit": 50}).json()
    assert status["phase"] == "Succeeded"
    assert status["trials"] == TRIALS

    console = Console(page)
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{server.url}/ui/experiments/default/digits")
    page.wait_for_function("window.tunerReady && window.tunerReady.table !== undefined")
    shown = page.eval_on_selector_all("#board tbody tr", "rows => rows.map(r => r.dataset.trial)")
    assert shown == [r["trial"] for r in board]
    accuracies = [r["objective"] for r in board if r["objective"] is not None]
    assert accuracies == sorted(accuracies, reverse=True) and accuracies[0] > 0.9
    page.wait_for_function(
        "() => { const n = document.querySelector('#plot-history.js-plotly-plot');"
        f" return n && n.data && n.data[0].x.length === {TRIALS - status['trialCounts']['Failed']}"
        " }"
    )
    page.locator("#plot-curves").scroll_into_view_if_needed()
    page.wait_for_function(
        "() => { const n = document.querySelector('#plot-curves.js-plotly-plot');"
        " return n && n.data.length > 0 && n.data[0].x.length > 0 }"
    )
    page.wait_for_function(
        "() => { const n = document.querySelector('#plot-importance.js-plotly-plot');"
        " return n && n.data[0].y.length === 3 }",
        timeout=120_000,
    )
    page.locator("body").scroll_into_view_if_needed()
    page.wait_for_timeout(300)  # let plotly finish its transitions before the picture
    screenshot(page, "experiment-digits")
    assert console.errors == []
