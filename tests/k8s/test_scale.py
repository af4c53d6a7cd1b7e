"""200 concurrent trials on the real control plane, with the process kubelet's fast mode.

``tuner serve --runner kubernetes`` runs one experiment with ``parallelTrialCount: 200``. Its
Jobs are real, their Pods are made by the real Job controller, and the process kubelet (a TEST
FIXTURE) plays each Pod's ``scripted-trial`` script instead of starting a process: it prints
the trial's metric line, then holds until the test opens a gate (tests/k8s/scripted_pods.py).
The gate opens once all 200 Pods and trials are Running at the same time; then every trial
must finish exactly once (one Job, one ending) with its metric stored.

The service follows at most ``FOLLOWS`` logs (``--kube-log-streams``): while all 200 run, that
many log requests are open, and the others' logs are read in one request each when they end
(at most ``LogSlots.reads`` at once), as its ``/metrics`` shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client

from tests import waiting
from tests.k8s.controlplane import ControlPlane
from tests.k8s.test_e2e import Server
from tuner.client import Client
from tuner.k8s.log_slots import LogSlots
from tuner.templates import EXPERIMENT_LABEL, job_trial_template

# 95 s, the control plane's start included, at load average 20 on 2 cores: far from quiet.
pytestmark = [pytest.mark.k8s, pytest.mark.timeout(300)]

TRIALS = 200
FOLLOWS = 20


@pytest.fixture
def server(k8s_cluster: ControlPlane, tmp_path: Path) -> Iterator[Server]:
    args = ["--no-operator", "--kube-log-streams", str(FOLLOWS)]
    s = Server(k8s_cluster, tmp_path / "serve", args)
    s.start()
    yield s
    s.stop()


def scripted_experiment(namespace: str, gate: Path) -> dict[str, object]:
    template = job_trial_template(
        ["scripted-trial", "print=loss=${trialParameters.x}", f"wait={gate}", "exit=0"],
        ["x"],
        backoff_limit=0,
    )
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "wide", "namespace": namespace},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {"algorithmName": "random"},
            "parallelTrialCount": TRIALS,
            "maxTrialCount": TRIALS,
            "maxFailedTrialCount": 0,
            "parameters": [
                {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
            ],
            "trialTemplate": template,
        },
    }


def test_200_concurrent_trials_each_finish_once_with_their_metric(
    server: Server, namespace: str, api: client.ApiClient, tmp_path: Path
) -> None:
    with server.client(namespace) as tuner:
        check(tuner, namespace, api, tmp_path, server.url)


def log_streams(url: str) -> tuple[float, float]:
    """The service's open log requests now, and the most it had open at once."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    values = {
        name: float(value)
        for name, _, value in (line.partition(" ") for line in text.splitlines())
        if name in ("tuner_kubernetes_log_streams", "tuner_kubernetes_log_streams_peak")
    }
    return values["tuner_kubernetes_log_streams"], values["tuner_kubernetes_log_streams_peak"]


def check(tuner: Client, namespace: str, api: client.ApiClient, tmp_path: Path, url: str) -> None:
    gate = tmp_path / "gate"
    tuner.submit(scripted_experiment(namespace, gate))
    core = client.CoreV1Api(api)

    def all_running() -> bool:
        pods = core.list_namespaced_pod(namespace, field_selector="status.phase=Running").items
        trials = tuner.trial_rows("wide", state="Running")
        return len(pods) == len(trials) == TRIALS

    waiting.wait_for(all_running, f"{TRIALS} Pods and trials Running", timeout=150, interval=1)
    # each running trial's log is followed, or waits for a free stream
    waiting.wait_for(lambda: log_streams(url)[0] == FOLLOWS, f"{FOLLOWS} logs followed", timeout=60)
    gate.touch()
    final = waiting.wait_for(
        lambda: (e := tuner.get("wide"))["status"]["phase"] in ("Succeeded", "Failed") and e,
        "the experiment to end",
        timeout=150,
        interval=0.5,
    )
    assert final["status"]["phase"] == "Succeeded", final["status"]
    open_now, peak = log_streams(url)
    assert open_now == 0 and FOLLOWS <= peak <= FOLLOWS + LogSlots().reads, (open_now, peak)

    rows = tuner.trial_rows("wide")
    assert len(rows) == TRIALS
    assert {r["status"] for r in rows} == {"Succeeded"}, {r["trial"]: r["status"] for r in rows}
    for row in rows:
        ends = [c for c in row["conditions"] if c["type"] == "Succeeded"]  # type: ignore[attr-defined]
        assert len(ends) == 1, row  # ended once
        x = float(row["parameters"]["x"])  # type: ignore[index]
        # its one metric line stored once (one observation of loss), with its value
        assert (row["steps"], row["objective"]) == (1, pytest.approx(x)), row

    jobs = client.BatchV1Api(api).list_namespaced_job(
        namespace, label_selector=f"{EXPERIMENT_LABEL}=wide"
    )
    names = sorted(j.metadata.name for j in jobs.items)
    assert len(names) == len(set(names)) == TRIALS  # one Job per trial, none started twice
