"""The dashboard as a person uses it: log in, watch an experiment live, raise its budget, stop
it, open a trial; and the empty and error states."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.servers import Server
from tests.ui.browser import Console, screenshot, start_server, stop_server, wait_for_traces
from tuner.templates import job_trial_template

TOKEN = "ui-test-token"
HERE = Path(__file__).parent
# Real trials and a browser on a busy machine: a bound far above the suite's default.
pytestmark = pytest.mark.timeout(600)


def live_spec(name: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Experiment",
            "metadata": {"name": name},
            "spec": {
                "objective": {
                    "type": "minimize",
                    "objectiveMetricName": "loss",
                    "additionalMetricNames": ["accuracy"],
                },
                "algorithm": {
                    "algorithmName": "random",
                    "algorithmSettings": [{"name": "random_state", "value": "7"}],
                },
                "earlyStopping": {
                    "algorithmName": "medianstop",
                    "algorithmSettings": [
                        {"name": "min_trials_required", "value": "2"},
                        {"name": "start_step", "value": "2"},
                    ],
                },
                "parallelTrialCount": 3,
                "maxTrialCount": 30,
                # Katib continues a finished experiment only with this policy; on a loaded
                # machine it may finish before the budget is raised.
                "resumePolicy": "LongRunning",
                "metricsCollectorSpec": {"collector": {"kind": "Push"}},
                "parameters": [
                    {
                        "name": "x",
                        "parameterType": "double",
                        "feasibleSpace": {"min": "-1", "max": "2"},
                    },
                    {
                        "name": "optimizer",
                        "parameterType": "categorical",
                        "feasibleSpace": {"list": ["sgd", "adam", "ftrl"]},
                    },
                ],
                "trialTemplate": job_trial_template(
                    [
                        sys.executable,
                        str(HERE / "trial_script.py"),
                        "--x=${trialParameters.x}",
                        "--optimizer=${trialParameters.optimizer}",
                    ],
                    ["x", "optimizer"],
                ),
            },
        },
        sort_keys=False,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("ui")
    server = start_server(tmp, f"sqlite:///{tmp / 'ui.db'}", TOKEN)
    yield server
    stop_server(server)
    assert TOKEN not in server.log.read_text(), "the API token leaked into the server log"


def api(server: Server, method: str, path: str, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {TOKEN}", **kwargs.pop("headers", {})}
    response = httpx.request(
        method, f"{server.url}/api/v1/{path}", headers=headers, timeout=60, **kwargs
    )
    assert response.is_success, response.text
    return response.json()


def _wrong_token_answer(message: Any) -> bool:
    """The one expected console error: the 403 of a wrong token typed into the login form."""
    return "403" in message.text and str(message.location.get("url", "")).endswith("/ui/login")


def test_watch_raise_stop_and_open_a_trial(server: Server, page: Any) -> None:
    api(
        server,
        "POST",
        "experiments",
        content=live_spec("live"),
        headers={"Content-Type": "application/yaml"},
    )
    console = Console(page, allow=_wrong_token_answer)

    # Log in: the list page sends us to the form; a wrong token shows the server's message.
    page.goto(server.url + "/")
    page.wait_for_url("**/ui/login?next=*")
    page.fill("#token", "wrong")
    page.click("button[type=submit]")
    page.wait_for_selector("#login-error:not([hidden])")
    assert page.text_content("#login-error") == "invalid API token"
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector("#experiments tbody tr[data-name=live]")
    assert page.text_content("#experiments tbody tr[data-name=live] td:nth-child(8)") == "random"

    # The experiment page, while it runs; it updates from the event stream without a reload.
    page.click("a[href='/ui/experiments/default/live']")
    page.wait_for_function("window.tunerReady && window.tunerReady.table !== undefined")
    at_load = int(page.get_attribute("#done", "data-done") or "0")
    assert at_load < 30
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.wait_for_function(
        f"Number(document.getElementById('done').dataset.done) >= {at_load + 4}", timeout=120_000
    )
    assert navigations == [], "the page reloaded"

    # The plots have data (the importance chart needs 4 completed trials).
    page.wait_for_function(
        "() => { const n = document.querySelector('#plot-history.js-plotly-plot');"
        " return n && n.data && n.data[0].x.length > 0 }"
    )
    page.locator("#plot-curves").scroll_into_view_if_needed()  # as a user would
    page.wait_for_function(
        "() => { const n = document.querySelector('#plot-parallel.js-plotly-plot');"
        " return n && n.data[0].dimensions.length === 3"
        " && n.data[0].dimensions[0].values.length > 0 }"
    )
    page.wait_for_function(
        "() => { const n = document.querySelector('#plot-curves.js-plotly-plot');"
        " return n && n.data.length > 0 && n.data[0].x.length > 0 }"
    )
    page.wait_for_function(
        "() => { const n = document.querySelector('#plot-importance.js-plotly-plot');"
        " return n && n.data[0].y.length === 2 }",
        timeout=120_000,
    )
    for plot in ("plot-history", "plot-parallel", "plot-curves", "plot-importance"):
        assert wait_for_traces(page, plot) > 0, f"{plot} has no traces"

    # Raise the budget (confirmed), then stop (confirmed).
    dialogs: list[str] = []

    def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.fill("#budget", "40")
    page.click("#raise")
    page.wait_for_function("document.getElementById('max').textContent === '40'")
    assert "maxTrialCount: 40" in (page.text_content("#spec") or "")
    page.click("#stop")
    page.wait_for_function("document.getElementById('phase').textContent === 'Stopped'")
    assert dialogs == [
        "Set maxTrialCount of live to 40?",
        "Stop experiment default/live? Its running trials are killed.",
    ]
    status = api(server, "GET", "experiments/live")["status"]
    assert status["phase"] == "Stopped"

    # The leaderboard shows the trials that finished with metrics best first, as the API
    # orders them (Killed ones only on request).
    counts = status["trialCounts"]
    ranked = counts.get("Succeeded", 0) + counts.get("EarlyStopped", 0)
    page.wait_for_function(
        f"document.querySelectorAll('#board tbody tr').length === {min(50, ranked)}"
    )
    expected = api(server, "GET", "experiments/live/leaderboard?limit=50")
    shown = page.eval_on_selector_all("#board tbody tr", "rows => rows.map(r => r.dataset.trial)")
    assert shown == [r["trial"] for r in expected]
    objectives = [r["objective"] for r in expected if r["objective"] is not None]
    assert objectives == sorted(objectives)
    stopped = [r for r in expected if r["status"] == "EarlyStopped"]
    if stopped:  # its badge shows the reason
        row = f"#board tbody tr[data-trial='{stopped[0]['trial']}'] .reason"
        assert page.text_content(row) == stopped[0]["reason"]
    # Sorting by another metric asks the server (accuracy is minimized like the objective).
    page.click("#board thead th:has-text('accuracy')")
    by_accuracy = api(server, "GET", "experiments/live/leaderboard?limit=50&metric=accuracy")
    page.wait_for_function(
        "first => document.querySelector('#board tbody tr').dataset.trial === first",
        arg=by_accuracy[0]["trial"],
    )
    page.wait_for_timeout(300)  # let plotly finish its transitions before the picture
    screenshot(page, "experiment")

    # A trial page: parameters, states, curves, log tail and where it ran.
    best = expected[0]["trial"]
    page.goto(f"{server.url}/ui/experiments/default/live/trials/{best}")
    page.wait_for_function("window.tunerReady && window.tunerReady.trial !== undefined")
    assert "pushed step 0" in (page.text_content("#log") or "")
    assert (page.text_content("#runner") or "").startswith("Ran here as process")
    assert page.text_content("#state") == expected[0]["status"]
    params = page.eval_on_selector_all("#params tr th", "cells => cells.map(c => c.textContent)")
    assert params == ["x", "optimizer"]
    page.wait_for_function(
        "() => { const n = document.querySelector('#plot-metrics.js-plotly-plot');"
        " return n && n.data.length === 2 && n.data[0].x.length > 0 }"
    )
    screenshot(page, "trial")

    # Back on the list, the experiment shows as Stopped with its counts.
    page.goto(server.url + "/")
    page.wait_for_selector("#experiments tbody tr[data-name=live]")
    assert page.text_content("#experiments tbody tr[data-name=live] .badge") == "Stopped"
    screenshot(page, "experiments")
    assert console.errors == []


def test_empty_and_error_states_without_a_token(
    page: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("ui-open")
    server = start_server(tmp, f"sqlite:///{tmp / 'open.db'}", None)
    try:
        console = Console(page)
        page.goto(server.url + "/")  # no token configured: no login
        page.wait_for_selector("#empty:not([hidden])")
        text = page.text_content("#empty") or ""
        assert (
            "No experiments yet" in text and f"tuner submit spec.yaml --server {server.url}" in text
        )
        assert page.url == server.url + "/"
        screenshot(page, "experiments-empty")
        assert console.errors == []

        page.goto(server.url + "/ui/experiments/default/ghost")
        page.wait_for_selector("#error:not([hidden])")
        assert page.text_content("#error") == "experiment default/ghost not found"
        page.goto(server.url + "/ui/login")
        assert "no login needed" in (page.text_content("main") or "")
    finally:
        stop_server(server)
