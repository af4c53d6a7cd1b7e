"""File and TensorFlowEvent collectors on a real control plane, through ``tuner serve --runner
kubernetes``: the trial's Pod gets the ``tuner-metrics-collector`` sidecar, which reads the files
from the shared ``metrics-volume`` and pushes them (tuner.collectors.relay).

The process kubelet (a TEST FIXTURE, tests/k8s/process_kubelet.py) ignores images: the sidecar
runs the relay of this checkout with this interpreter (``--collector-command``), and each
container sees the Pod's ``emptyDir`` at its ``mountPath`` through a private mount namespace, so
that two trials writing ``/var/log/katib/metrics.log`` at once never see each other's file.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import experiment_dict
from tests.k8s.controlplane import ControlPlane

pytest.importorskip("kubernetes", reason="needs the client: pip install -e '.[kubernetes]'")
from kubernetes import client

from tests.k8s.test_e2e import Server
from tuner.templates import job_trial_template

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 90.0
COLLECTOR_DATA = ROOT / "tests" / "collectors" / "data"

# A trial writing Katib-style text lines to the metrics file, a step every 0.3 s.
TEXT_TRIAL = """
import sys, time
x = float(sys.argv[1])
with open("/var/log/katib/metrics.log", "w") as f:
    for s in range(3):
        f.write(f"lr=9 epoch {s} loss: {(x - 0.5) ** 2 + 0.1 * (2 - s):.6f}\\n")
        f.flush()
        time.sleep(0.3)
"""
JSON_TRIAL = """
import json, sys
x = float(sys.argv[1])
with open("/var/log/katib/m.json", "w") as f:
    for s in range(3):
        f.write(json.dumps({"epoch": s, "loss": (x - 0.5) ** 2 + 0.1 * (2 - s)}) + "\\n")
"""
# Katib's filter for `name: value` (it ends with `$`, which the manifest must keep).
COLON_FILTER = r"([\w|-]+)\s*:\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)$"


@pytest.fixture(scope="module")
def server(k8s_cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    relay = f"env PYTHONPATH={ROOT} {sys.executable} -m tuner.collectors.relay --interval 0.2"
    s = Server(
        k8s_cluster,
        tmp_path_factory.mktemp("serve"),
        ["--no-operator", "--collector-command", f"{relay} --start-wait 5"],
    )
    s.start()
    yield s
    s.stop()


def spec(
    namespace: str,
    name: str,
    command: list[str],
    collector: dict[str, Any],
    objective: dict[str, Any] | None = None,
    trials: int = 1,
) -> dict[str, Any]:
    data = experiment_dict(
        name,
        objective=objective or {"type": "minimize", "objectiveMetricName": "loss"},
        metricsCollectorSpec=collector,
        parameters=[
            {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
        ],
        trialTemplate=job_trial_template(command, ["x"]),
        parallelTrialCount=trials,
        maxTrialCount=trials,
        maxFailedTrialCount=trials,
    )
    data["metadata"]["namespace"] = namespace
    return data


def curve(server: Server, namespace: str, name: str, trial: str, metric: str) -> list[Any]:
    with server.client(namespace) as c:
        frame = c.observations(name, trial, metric)
    return [(int(s), float(v)) for s, v in zip(frame["step"], frame["value"], strict=True)]


def test_file_and_tfevent_metrics_are_relayed_from_the_trial_pod(
    server: Server, api: client.ApiClient, namespace: str
) -> None:
    text = spec(
        namespace,
        "text",
        [sys.executable, "-c", TEXT_TRIAL, "${trialParameters.x}"],
        {
            "collector": {"kind": "File"},
            "source": {
                "fileSystemPath": {
                    "path": "/var/log/katib/metrics.log",
                    "kind": "File",
                    "format": "TEXT",
                },
                "filter": {"metricsFormat": [COLON_FILTER]},
            },
        },
        trials=2,  # at once, each with its own metrics file at the same path
    )
    jsonl = spec(
        namespace,
        "jsonl",
        [sys.executable, "-c", JSON_TRIAL, "${trialParameters.x}"],
        {
            "collector": {"kind": "File"},
            "source": {
                "fileSystemPath": {
                    "path": "/var/log/katib/m.json",
                    "kind": "File",
                    "format": "JSON",
                }
            },
        },
    )
    tfevent = spec(
        namespace,
        "tfevent",
        [
            sys.executable,
            str(COLLECTOR_DATA / "tfevent_trial.py"),
            "--logdir=/var/log/katib/tfevent/",
            "--x=${trialParameters.x}",
        ],
        {
            "collector": {"kind": "TensorFlowEvent"},
            "source": {"fileSystemPath": {"path": "/var/log/katib/tfevent/", "kind": "Directory"}},
        },
        {
            "type": "maximize",
            "objectiveMetricName": "accuracy",
            "additionalMetricNames": ["train/loss"],
        },
    )
    missing = spec(
        namespace,
        "missing",
        [sys.executable, "-c", "print('forgot the metrics file')", "${trialParameters.x}"],
        {
            "collector": {"kind": "File"},
            "source": {"fileSystemPath": {"path": "/var/log/katib/never.log", "kind": "File"}},
        },
    )
    with server.client(namespace) as c:
        for data in (text, jsonl, tfevent, missing):
            c.submit(data)
        ended = {
            n: c.wait(n, progress=False, timeout=TIMEOUT, poll=0.2)
            for n in ("text", "jsonl", "tfevent", "missing")
        }
        trials = {n: c.trial_rows(n) for n in ended}
    for name in ("text", "jsonl", "tfevent"):
        assert ended[name]["status"]["phase"] == "Succeeded", (name, trials[name])
        assert all(t["status"] == "Succeeded" for t in trials[name]), trials[name]

    # File, TEXT, with Katib's colon filter: only `loss: v` lines count (`lr=9` is not `name:`).
    assert len(trials["text"]) == 2
    for t in trials["text"]:
        x = float(t["parameters"]["x"])
        expected = [(s, (x - 0.5) ** 2 + 0.1 * (2 - s)) for s in range(3)]
        got = curve(server, namespace, "text", t["trial"], "loss")
        assert [s for s, _ in got] == [0, 1, 2]
        assert [v for _, v in got] == pytest.approx([v for _, v in expected], abs=1e-6)

    # File, JSON: the step is the line's epoch.
    (t,) = trials["jsonl"]
    x = float(t["parameters"]["x"])
    got = curve(server, namespace, "jsonl", t["trial"], "loss")
    assert [s for s, _ in got] == [0, 1, 2]
    assert [v for _, v in got] == pytest.approx([(x - 0.5) ** 2 + 0.1 * (2 - s) for s in range(3)])

    # TensorFlowEvent: real event files (tensorboardX); train/loss is the train run's only.
    (t,) = trials["tfevent"]
    x = float(t["parameters"]["x"])
    accuracy = [0.9 - (x - 0.25) ** 2 + 0.01 * s for s in range(3)]
    got = curve(server, namespace, "tfevent", t["trial"], "accuracy")
    assert [s for s, _ in got] == [0, 1, 2]
    assert [v for _, v in got] == pytest.approx(accuracy, abs=1e-6)
    loss = curve(server, namespace, "tfevent", t["trial"], "train/loss")
    assert [v for _, v in loss] == pytest.approx([1 - a for a in accuracy], abs=1e-6)

    # A metrics file never written: MetricsUnavailable, with the local runner's message.
    (t,) = trials["missing"]
    assert t["status"] == "MetricsUnavailable", t
    assert (
        "the metrics file /var/log/katib/never.log was never created by the trial" in (t["message"])
    )

    # The Job's Pod: the relay sidecar beside the primary container, sharing the volume.
    jobs = client.BatchV1Api(api).list_namespaced_job(namespace).items
    pod = next(j for j in jobs if j.metadata.name.startswith("jsonl")).spec.template.spec
    assert [c.name for c in pod.containers] == ["main", "tuner-metrics-collector"]
    assert pod.share_process_namespace is True
    for container in pod.containers:
        assert [(m.name, m.mount_path) for m in container.volume_mounts] == [
            ("metrics-volume", "/var/log/katib")
        ]
