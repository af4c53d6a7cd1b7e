"""The PrometheusMetric collector scraping a real prometheus-client endpoint of a trial."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.collectors.running import collector_spec, stored, tuner_run
from tuner.collectors import local_support
from tuner.collectors.prometheus import PrometheusScraper, endpoint
from tuner.errors import SpecError
from tuner.spec import load_spec
from tuner.trials import TrialState


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prometheus_spec(name: str, http_get: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    port = http_get.get("port", 8080)
    return collector_spec(
        name,
        "prometheus_trial.py",
        [f"--port={port}"],
        {"collector": {"kind": "PrometheusMetric"}, "source": {"httpGet": http_get}},
        {"type": "maximize", "objectiveMetricName": "accuracy", "additionalMetricNames": ["loss"]},
        **overrides,
    )


def test_prometheus_trial_through_tuner_run(tmp_path: Path) -> None:
    port = free_port()
    spec = prometheus_spec("prom", {"port": port, "path": "/metrics"}, maxTrialCount=1)
    code, output = tuner_run(tmp_path, spec)
    assert code == 0, output
    ((trial, observations),) = stored(tmp_path, "prom")
    assert trial.state is TrialState.SUCCEEDED, trial.message
    x = float(trial.parameters["x"])
    accuracy = [(o.step, round(o.value, 9)) for o in observations if o.metric == "accuracy"]
    assert accuracy == [(e, round(0.5 + 0.1 * e + x / 10, 9)) for e in range(3)]
    loss = [(o.step, o.value) for o in observations if o.metric == "loss"]
    assert loss == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert trial.objective is not None and abs(trial.objective - (0.7 + x / 10)) < 1e-9


def test_katibs_defaults_and_the_spec_endpoint() -> None:
    spec = load_spec(prometheus_spec("p", {})).spec
    assert endpoint(spec) == "http://127.0.0.1:8080/metrics"
    spec = load_spec(prometheus_spec("p", {"port": 9100, "path": "/stats"})).spec
    assert endpoint(spec, "10.0.0.7") == "http://10.0.0.7:9100/stats"
    # Katib's port is an int-or-string that must hold a positive integer.
    spec = load_spec(prometheus_spec("p", {"port": "9100"})).spec
    assert endpoint(spec) == "http://127.0.0.1:9100/metrics"


def test_bad_http_get_is_refused_with_its_field() -> None:
    with pytest.raises(SpecError) as e:
        load_spec(prometheus_spec("p", {"port": "metrics", "path": "metrics"}))
    paths = {err.path for err in e.value.errors}
    assert "spec.metricsCollectorSpec.source.httpGet.port" in paths
    assert "spec.metricsCollectorSpec.source.httpGet.path" in paths


def test_parallel_local_trials_would_share_the_port() -> None:
    spec = load_spec(prometheus_spec("p", {"port": 9100}, parallelTrialCount=2)).spec
    problem = local_support(spec)
    assert problem is not None and "parallelTrialCount" in problem
    assert local_support(load_spec(prometheus_spec("p", {"port": 9100})).spec) is None


def test_an_endpoint_that_never_answered_makes_metrics_unavailable() -> None:
    port = free_port()
    scraper = PrometheusScraper(load_spec(prometheus_spec("p", {"port": port})).spec, "127.0.0.1")
    assert asyncio.run(scraper.collect()) == [] and scraper.problem is None
    assert asyncio.run(scraper.collect(final=True)) == []
    assert scraper.problem is not None and "never answered" in scraper.problem
    assert f"http://127.0.0.1:{port}/metrics" in scraper.problem


def test_a_trial_without_an_address_yet_is_asked_again() -> None:
    asked: list[int] = []

    async def no_address() -> str | None:
        asked.append(1)
        return None

    spec = load_spec(prometheus_spec("p", {"port": 9100})).spec
    scraper = PrometheusScraper(spec, no_address, interval=0)
    assert asyncio.run(scraper.collect()) == [] and asyncio.run(scraper.collect(final=True)) == []
    assert len(asked) == 2
    assert scraper.problem is not None and "no address yet" in scraper.problem


def test_only_changes_are_observations() -> None:
    spec = load_spec(prometheus_spec("p", {})).spec
    scraper = PrometheusScraper(spec, "127.0.0.1")
    text = "# TYPE accuracy gauge\naccuracy 0.5\n# TYPE other gauge\nother 1\n"
    first = scraper.observe(text)
    assert [(o.metric, o.step, o.value) for o in first] == [("accuracy", 0, 0.5)]
    assert scraper.observe(text) == []  # the same gauge scraped again
    changed = scraper.observe(text.replace("0.5", "0.6"))
    assert [(o.step, o.value) for o in changed] == [(1, 0.6)]
    assert scraper.unknown == ["other=1.0"]


def test_steps_go_on_after_a_restart_and_nan_is_not_news() -> None:
    spec = load_spec(prometheus_spec("p", {})).spec
    scraper = PrometheusScraper(spec, "127.0.0.1")
    scraper.resume({"accuracy": 4})  # stored before the controller restarted
    (obs,) = scraper.observe("accuracy 0.5\n")
    assert obs.step == 5
    assert len(scraper.observe("accuracy NaN\n")) == 1
    assert scraper.observe("accuracy NaN\n") == []
