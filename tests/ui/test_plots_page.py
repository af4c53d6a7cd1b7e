"""The experiment page of a finished push experiment draws every plot without being scrolled,
and puts a logUniform parameter on a log axis of the parallel coordinates.

A screenshot of such a page once showed an empty "Intermediate values" panel: the endpoint
returned every curve, but the page drew the plots below the fold only when scrolled near them,
so a page that was never scrolled (or captured whole) kept that panel empty.
"""

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
from tests.waiting import wait_for
from tuner.templates import job_trial_template

HERE = Path(__file__).parent
TRIALS, STEPS = 20, 8
pytestmark = pytest.mark.timeout(600)


def push_spec(name: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Experiment",
            "metadata": {"name": name},
            "spec": {
                "objective": {"type": "minimize", "objectiveMetricName": "loss"},
                "algorithm": {
                    "algorithmName": "random",
                    "algorithmSettings": [{"name": "random_state", "value": "3"}],
                },
                "parallelTrialCount": 4,
                "maxTrialCount": TRIALS,
                "metricsCollectorSpec": {"collector": {"kind": "Push"}},
                "parameters": [
                    {
                        "name": "lr",
                        "parameterType": "double",
                        "feasibleSpace": {
                            "min": "0.0001",
                            "max": "0.1",
                            "distribution": "logUniform",
                        },
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
                        "--x=${trialParameters.lr}",
                        "--optimizer=${trialParameters.optimizer}",
                        f"--steps={STEPS}",
                        "--sleep=0.01",
                    ],
                    ["lr", "optimizer"],
                ),
            },
        },
        sort_keys=False,
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with one finished push experiment, ``pushed``."""
    tmp = tmp_path_factory.mktemp("plots-page")
    server = start_server(tmp, f"sqlite:///{tmp / 'plots.db'}", None)
    try:
        answer = httpx.post(
            f"{server.url}/api/v1/experiments",
            content=push_spec("pushed"),
            headers={"Content-Type": "application/yaml"},
            timeout=60,
        )
        assert answer.status_code == 201, answer.text

        def done() -> dict[str, Any] | None:
            status = httpx.get(f"{server.url}/api/v1/experiments/pushed", timeout=60).json()
            return status if status["status"]["phase"] == "Succeeded" else None

        wait_for(done, "the push experiment to finish", timeout=300, interval=0.1)
        yield server
    finally:
        stop_server(server)


def test_every_plot_is_drawn_without_scrolling(finished: Server, page: Any) -> None:
    curves = httpx.get(f"{finished.url}/api/v1/experiments/pushed/plots/curves", timeout=60)
    assert [len(c["step"]) for c in curves.json()["curves"]] == [STEPS] * 15  # the data is there

    console = Console(page)
    page.goto(f"{finished.url}/ui/experiments/default/pushed")
    assert wait_for_traces(page, "plot-history") == 2  # trials and best so far
    assert wait_for_traces(page, "plot-importance") == 1
    assert wait_for_traces(page, "plot-parallel") == 1
    assert wait_for_traces(page, "plot-curves") == 15  # the 15 best trials' curves
    assert page.evaluate("window.scrollY") == 0
    steps = page.evaluate("document.getElementById('plot-curves').data.map((t) => t.x.length)")
    assert steps == [STEPS] * 15
    screenshot(page, "experiment-finished-push")
    assert console.errors == []


def test_a_log_uniform_parameter_gets_a_log_axis(finished: Server, page: Any) -> None:
    page.goto(f"{finished.url}/ui/experiments/default/pushed")
    wait_for_traces(page, "plot-parallel")
    lr = page.evaluate("document.getElementById('plot-parallel').data[0].dimensions[0]")
    assert lr["label"] == "lr (log)"
    assert lr["ticktext"] == ["0.0001", "0.001", "0.01", "0.1"]
    assert lr["tickvals"] == pytest.approx([-4.0, -3.0, -2.0, -1.0])
    assert lr["range"] == pytest.approx([-4.0, -1.0])
    assert all(-4.0 <= v <= -1.0 for v in lr["values"])
    # The drawn axis labels its ticks in lr's own units.
    labels = page.evaluate(
        "[...document.querySelectorAll('#plot-parallel .y-axis')[0].querySelectorAll('.tick text')]"
        ".map(t => t.textContent)"
    )
    assert labels == ["0.0001", "0.001", "0.01", "0.1"]
