"""The experiment page of a finished two-objective experiment draws the Pareto plot (the front
highlighted) and the hypervolume history, in real Chromium; single-objective pages hide them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.pareto_support import non_dominated, two_objective_dict
from tests.servers import Server
from tests.ui.browser import Console, screenshot, start_server, stop_server, wait_for_traces
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a finished two-objective experiment ``multi`` and a single-objective one."""
    tmp = tmp_path_factory.mktemp("pareto-page")
    server = start_server(tmp, f"sqlite:///{tmp / 'pareto.db'}", None)
    try:
        single = two_objective_dict("single", "random", trials=2)
        del single["spec"]["objectives"]
        single["spec"]["objective"] = {"type": "minimize", "objectiveMetricName": "f1"}
        specs = [two_objective_dict("multi", "nsga2", {"population_size": "4"}), single]
        for spec in specs:
            answer = httpx.post(f"{server.url}/api/v1/experiments", json=spec, timeout=60)
            assert answer.status_code == 201, answer.text

        def done() -> bool:
            phases = [
                httpx.get(f"{server.url}/api/v1/experiments/{n}", timeout=60).json()["status"]
                for n in ("multi", "single")
            ]
            return all(p["phase"] == "Succeeded" for p in phases)

        wait_for(done, "the experiments to finish", timeout=300, interval=0.1)
        yield server
    finally:
        stop_server(server)


def test_pareto_plot_and_hypervolume_are_drawn(finished: Server, page: Any) -> None:
    trials = httpx.get(f"{finished.url}/api/v1/experiments/multi/trials", timeout=60).json()
    front = non_dominated(trials)

    console = Console(page)
    page.goto(f"{finished.url}/ui/experiments/default/multi")
    assert wait_for_traces(page, "plot-pareto") >= 2  # the other trials and the front
    assert wait_for_traces(page, "plot-hypervolume") == 1
    drawn = page.evaluate(
        "document.getElementById('plot-pareto').data"
        ".map((t) => ({name: t.name, text: t.text, x: t.x, y: t.y}))"
    )
    by_name = {t["name"]: t for t in drawn}
    assert set(by_name["Pareto front"]["text"]) == front
    assert sum(len(t["text"]) for t in drawn) == len(trials)  # every trial once
    for t in drawn:  # each point at its trial's (f1, f2)
        for trial, x, y in zip(t["text"], t["x"], t["y"], strict=True):
            metrics = next(r["metrics"] for r in trials if r["trial"] == trial)
            assert (x, y) == pytest.approx((metrics["f1"], metrics["f2"]))
    volumes = page.evaluate("document.getElementById('plot-hypervolume').data[0].y")
    assert volumes == sorted(volumes) and volumes[-1] > 0
    optimal = page.inner_text("#optimal")
    assert f"Pareto front: {len(front)} trial" in optimal
    screenshot(page, "experiment-pareto")
    assert console.errors == []


def test_single_objective_page_hides_the_pareto_plots(finished: Server, page: Any) -> None:
    console = Console(page)
    page.goto(f"{finished.url}/ui/experiments/default/single")
    wait_for_traces(page, "plot-history")
    assert page.evaluate("document.getElementById('pareto-plots').hidden") is True
    assert page.is_hidden("#plot-pareto")
    assert console.errors == []
