"""The Custom collector: a sidecar on Kubernetes (its manifest here; the Pod in tests/k8s), and
refused by the local runner with a clear message before anything is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import AUTH, V1, TestClient, experiment_dict, make_settings
from tuner.api.app import create_app
from tuner.cli import main
from tuner.collectors import local_support
from tuner.errors import SpecError
from tuner.k8s.jobs import job_manifest
from tuner.spec import load_spec
from tuner.templates import render_trial
from tuner.trials import Trial

COLLECTOR = {"name": "my-collector", "image": "example.com/collector:1", "args": ["--watch"]}


def custom_spec(source: dict[str, Any] | None = None, **collector: Any) -> dict[str, Any]:
    mc: dict[str, Any] = {"collector": {"kind": "Custom", "customCollector": collector}}
    if source is not None:
        mc["source"] = source
    return experiment_dict(
        "custom",
        metricsCollectorSpec=mc,
        maxTrialCount=1,
        parallelTrialCount=1,
        maxFailedTrialCount=1,
    )


def manifest(data: dict[str, Any]) -> dict[str, Any]:
    experiment = load_spec(data)
    trial = Trial(name="custom-0000", number=0, parameters={"x": 0.5, "n": 1})
    return job_manifest(experiment, trial, render_trial(experiment, trial), {"TUNER_TRIAL": "t"})


def test_sidecar_with_a_directory_volume() -> None:
    source = {"fileSystemPath": {"path": "/var/log/tfevent", "kind": "Directory"}}
    pod = manifest(custom_spec(source, **COLLECTOR))["spec"]["template"]["spec"]
    main, sidecar = pod["containers"]
    assert sidecar["name"] == "my-collector" and sidecar["args"] == ["--watch"]
    assert {"name": "TUNER_TRIAL", "value": "t"} in sidecar["env"]
    assert pod["shareProcessNamespace"] is True
    assert pod["volumes"] == [{"name": "metrics-volume", "emptyDir": {}}]
    mount = [{"name": "metrics-volume", "mountPath": "/var/log/tfevent"}]
    assert main["volumeMounts"] == mount and sidecar["volumeMounts"] == mount


def test_sidecar_without_a_source_has_no_volume() -> None:
    pod = manifest(custom_spec(**COLLECTOR))["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["main", "my-collector"]
    assert "volumes" not in pod and "volumeMounts" not in pod["containers"][0]


def test_custom_needs_its_container() -> None:
    with pytest.raises(SpecError) as e:
        load_spec(custom_spec())
    assert [err.path for err in e.value.errors] == [
        "spec.metricsCollectorSpec.collector.customCollector"
    ]


def test_custom_is_refused_locally(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = custom_spec(**COLLECTOR)
    problem = local_support(load_spec(data).spec)
    assert problem is not None and "sidecar" in problem
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data))
    db, work = tmp_path / "runs.db", tmp_path / "work"
    code = main(["run", str(spec), "--db", str(db), "--quiet", "--workdir", str(work)])
    output = capsys.readouterr().err
    assert code == 2
    assert "spec.metricsCollectorSpec.collector.kind" in output
    assert "Custom metrics collector" in output and "Traceback" not in output
    assert not work.exists() and not db.exists()  # nothing started, nothing stored


def test_tuner_serve_with_the_local_runner_answers_422(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path)), headers=AUTH) as client:
        response = client.post(f"{V1}/experiments", json=custom_spec(**COLLECTOR))
        assert response.status_code == 422, response.text
        assert "Custom metrics collector" in response.text
        assert client.get(f"{V1}/experiments").json() == []  # nothing stored
