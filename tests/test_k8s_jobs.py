"""Trial Jobs as plain data: names, outcomes, image pull problems (pure: no Kubernetes client).

The manifest is validated against the Kubernetes schemas in tests/test_manifests.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import experiment_dict
from tuner.k8s.jobs import (
    dns_label,
    experiment_owner_reference,
    image_pull_problem,
    is_dns_label,
    job_labels,
    job_manifest,
    job_name,
    job_outcome,
)
from tuner.spec import load_spec
from tuner.templates import EXPERIMENT_LABEL, TRIAL_LABEL, render_trial
from tuner.trials import Trial

ROOT = Path(__file__).resolve().parents[1]


def job(*conditions: dict[str, str]) -> dict[str, Any]:
    return {"status": {"conditions": list(conditions)}}


def pod(state: dict[str, Any], last: dict[str, Any] | None = None, name: str = "p") -> Any:
    status = {"name": "main", "image": "img", "state": state, "lastState": last or {}}
    return {"metadata": {"name": name}, "status": {"containerStatuses": [status]}}


@pytest.mark.parametrize("length", [1, 40, 63, 64, 68, 200])
def test_dns_labels_at_any_length(length: int) -> None:
    text = ("Exp_" + "x" * length)[:length] + "-0001"
    label = dns_label(text)
    assert is_dns_label(label) and label == dns_label(text)
    assert dns_label("exp-0001") == "exp-0001"
    assert dns_label("a" * 70 + "-0001") != dns_label("a" * 70 + "-0002")


def test_outcomes_name_the_reason() -> None:
    backoff = job({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"})
    out = job_outcome(
        backoff, [pod({"terminated": {"exitCode": 3, "reason": "Error"}})], "main", False
    )
    assert (out.reason, out.exit_code) == ("BackoffLimitExceeded", 3)
    assert out.message.startswith("exit code 3")
    oom = [pod({"terminated": {"exitCode": 137, "reason": "OOMKilled"}})]
    assert job_outcome(backoff, oom, "main", False).reason == "OOMKilled"
    deadline = job({"type": "Failed", "status": "True", "reason": "DeadlineExceeded"})
    assert job_outcome(deadline, [], "main", False).reason == "DeadlineExceeded"
    done = job_outcome(job({"type": "Complete", "status": "True"}), [], "main", True)
    assert (done.succeeded, done.reason, done.exit_code) == (True, "Completed", 0)


def test_image_pull_errors_are_found() -> None:
    waiting = pod({"waiting": {"reason": "ImagePullBackOff", "message": "back-off pulling"}})
    assert image_pull_problem([waiting]) == ("ImagePullBackOff", "container main: back-off pulling")
    assert image_pull_problem([pod({"waiting": {"reason": "ContainerCreating"}})]) is None
    assert image_pull_problem([pod({"running": {}})]) is None


def test_pure_modules_import_without_the_kubernetes_client() -> None:
    code = textwrap.dedent(
        """
        import sys

        class NoKubernetes:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "kubernetes":
                    raise ImportError(f"blocked: {name}")
                return None

        sys.meta_path.insert(0, NoKubernetes())
        import tuner.k8s.gjson
        import tuner.k8s.jobs
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr


def test_job_manifest_names_labels_and_environment() -> None:
    experiment = load_spec(experiment_dict("exp-" + "e" * 36))  # Katib's longest name: 40
    # A trial name past a label's 63 characters (an ask/tell client may name trials so).
    long_name = f"{experiment.name}-{'t' * 20}-0007"
    trial = Trial(name=long_name, number=7, parameters={"x": 1.0, "n": 2})
    rendered = render_trial(experiment, trial)
    owner = experiment_owner_reference(experiment.name, "uid-1")
    job = job_manifest(experiment, trial, rendered, {"TUNER_TRIAL": trial.name}, owner)
    name = job_name(experiment, trial)
    assert len(trial.name) > 63 and is_dns_label(name) and job["metadata"]["name"] == name
    assert job["metadata"]["ownerReferences"] == [owner]
    labels = job_labels(experiment, trial)
    assert labels[EXPERIMENT_LABEL] == dns_label(experiment.name)
    assert labels[TRIAL_LABEL] == name
    pod = job["spec"]["template"]
    assert labels.items() <= job["metadata"]["labels"].items()
    assert labels.items() <= pod["metadata"]["labels"].items()
    assert pod["spec"]["restartPolicy"] == "Never"
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["TUNER_TRIAL"] == trial.name and env["PYTHONUNBUFFERED"] == "1"
    assert "ownerReferences" not in job_manifest(experiment, trial, rendered, {})["metadata"]


def test_file_collectors_get_the_relay_sidecar() -> None:
    katib_filter = r"([\w|-]+)\s*:\s*([+-]?\d*(\.\d+)?)$"
    file_spec = {
        "collector": {"kind": "File"},
        "source": {
            "fileSystemPath": {"path": "/var/log/katib/metrics.log", "kind": "File"},
            "filter": {"metricsFormat": [katib_filter]},
        },
    }
    tf_spec = {
        "collector": {"kind": "TensorFlowEvent"},
        "source": {"fileSystemPath": {"path": "/var/log/katib/tf/", "kind": "Directory"}},
    }
    trial = Trial(name="exp-0001", number=1, parameters={"x": 1.0, "n": 2})
    env = {"TUNER_TRIAL": trial.name, "TUNER_TRIAL_TOKEN": "secret"}
    for spec, mount in ((file_spec, "/var/log/katib"), (tf_spec, "/var/log/katib/tf/")):
        experiment = load_spec(experiment_dict("exp", metricsCollectorSpec=spec))
        rendered = render_trial(experiment, trial)
        job = job_manifest(experiment, trial, rendered, env, collector_image="reg/tuner:1")
        pod = job["spec"]["template"]["spec"]
        main, sidecar = pod["containers"]
        assert sidecar["name"] == "tuner-metrics-collector" and sidecar["image"] == "reg/tuner:1"
        assert sidecar["command"] == ["python", "-m", "tuner.collectors.relay"]
        sidecar_env = {e["name"]: e["value"] for e in sidecar["env"]}
        assert sidecar_env["TUNER_TRIAL_TOKEN"] == "secret"  # it pushes as the trial
        assert sidecar_env["TUNER_SIDECAR"] == "metrics-collector"  # not a trial process
        assert pod["shareProcessNamespace"] is True
        assert pod["volumes"] == [{"name": "metrics-volume", "emptyDir": {}}]
        for container in (main, sidecar):
            assert container["volumeMounts"] == [{"name": "metrics-volume", "mountPath": mount}]
    # Kubernetes expands $(VAR) in args: the filter's `$` is written `$$` to reach the relay.
    (flag, config) = job_manifest(
        load_spec(experiment_dict("exp", metricsCollectorSpec=file_spec)), trial, rendered, env
    )["spec"]["template"]["spec"]["containers"][1]["args"]
    assert flag == "--config"
    assert katib_filter.replace("\\", "\\\\").replace("$", "$$") in config
    # Other kinds get no sidecar.
    plain = load_spec(experiment_dict("exp"))
    job = job_manifest(plain, trial, render_trial(plain, trial), env)
    assert len(job["spec"]["template"]["spec"]["containers"]) == 1
