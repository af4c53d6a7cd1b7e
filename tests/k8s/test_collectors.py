"""Metrics collectors on a real control plane: the Custom collector's container runs as a sidecar
of the trial's Pod (as Katib's Pod webhook adds it), sharing a ``metrics-volume``; the
PrometheusMetric collector scrapes the trial Pod's IP (the test kubelet's Pods have 127.0.0.1)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.collectors.running import collector_spec
from tests.collectors.test_prometheus import free_port
from tests.helpers import experiment_dict
from tests.k8s.controlplane import ControlPlane

pytest.importorskip("kubernetes", reason="needs the client: pip install -e '.[kubernetes]'")
from kubernetes import client

from tuner.controller import ExperimentController
from tuner.runners.kubernetes import KubernetesRunner
from tuner.spec import load_spec
from tuner.storage import Repository, make_engine
from tuner.templates import render_trial
from tuner.trials import ExperimentPhase, Trial, TrialState

pytestmark = pytest.mark.k8s


@pytest.fixture
def runner(k8s_cluster: ControlPlane) -> Iterator[KubernetesRunner]:
    r = KubernetesRunner(kubeconfig=k8s_cluster.kubeconfig, watch_window=5.0)
    yield r
    r.close()
    r.api.close()


def test_custom_collector_runs_as_a_sidecar_of_the_trial_pod(
    runner: KubernetesRunner, api: client.ApiClient, namespace: str
) -> None:
    data = experiment_dict(
        "custom",
        maxTrialCount=1,
        parallelTrialCount=1,
        maxFailedTrialCount=1,
        metricsCollectorSpec={
            "collector": {
                "kind": "Custom",
                "customCollector": {
                    "name": "my-collector",
                    "image": "example.com/collector:1",
                    "command": [sys.executable, "-c", "print('collector ran')"],
                    "env": [{"name": "MODE", "value": "sidecar"}],
                },
            },
            "source": {"fileSystemPath": {"path": "/var/log/metrics/out.log", "kind": "File"}},
        },
    )
    data["metadata"]["namespace"] = namespace
    experiment = load_spec(data)
    runner.check(experiment)  # the Kubernetes runner accepts Custom
    trial = Trial(name="custom-0000", number=0, parameters={"x": 0.1, "n": 1})
    env = {"TUNER_TRIAL": trial.name, "TUNER_EXPERIMENT": experiment.name}

    async def scenario() -> Any:
        handle = await runner.start(experiment, trial, render_trial(experiment, trial), env)
        lines = [line async for line in handle.lines()]
        return handle, lines, await handle.wait()

    handle, lines, outcome = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert outcome.succeeded, outcome
    assert lines and lines[-1].startswith("epoch=0 ")  # the primary container's log

    pod_spec = client.BatchV1Api(api).read_namespaced_job(handle.ref, namespace).spec.template.spec
    names = [c.name for c in pod_spec.containers]
    assert names == ["main", "my-collector"]
    assert pod_spec.share_process_namespace is True
    assert [(v.name, v.empty_dir is not None) for v in pod_spec.volumes] == [
        ("metrics-volume", True)
    ]
    main, sidecar = pod_spec.containers
    for container in (main, sidecar):
        assert [(m.name, m.mount_path) for m in container.volume_mounts] == [
            ("metrics-volume", "/var/log/metrics")
        ]
    sidecar_env = {e.name: e.value for e in sidecar.env}
    assert sidecar_env["MODE"] == "sidecar"
    assert sidecar_env["TUNER_TRIAL"] == "custom-0000"  # so that it can push what it collects
    # The sidecar really ran in the Pod (the test kubelet runs each container as a process).
    pods = client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"job-name={handle.ref}"
    )
    (pod,) = pods.items
    log = client.CoreV1Api(api).read_namespaced_pod_log(
        pod.metadata.name, namespace, container="my-collector"
    )
    assert "collector ran" in log


def test_prometheus_collector_scrapes_the_trial_pod(
    runner: KubernetesRunner, namespace: str, tmp_path: Path
) -> None:
    port = free_port()
    data = collector_spec(
        "prom",
        "prometheus_trial.py",
        [f"--port={port}"],
        {"collector": {"kind": "PrometheusMetric"}, "source": {"httpGet": {"port": port}}},
        {"type": "maximize", "objectiveMetricName": "accuracy", "additionalMetricNames": ["loss"]},
        maxTrialCount=1,
    )
    data["metadata"]["namespace"] = namespace
    experiment = load_spec(data)
    runner.check(experiment)
    repo = Repository(make_engine(f"sqlite:///{tmp_path / 'tuner.db'}"))
    record = repo.create_experiment(experiment)
    final = asyncio.run(asyncio.wait_for(ExperimentController(repo, record, runner).run(), 90))
    assert final.phase is ExperimentPhase.SUCCEEDED, final.message
    (trial,) = repo.trials(record.id)
    assert trial.state is TrialState.SUCCEEDED, trial.message
    x = float(trial.parameters["x"])
    accuracy = [(o.step, o.value) for o in repo.observations(record.id, trial.name, "accuracy")]
    assert [s for s, _ in accuracy] == [0, 1, 2]
    assert accuracy[-1][1] == pytest.approx(0.7 + x / 10)
