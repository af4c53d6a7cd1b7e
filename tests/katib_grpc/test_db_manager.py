"""Katib's DB-manager API served by `tuner serve --katib-db-manager-port`, driven by the
unmodified Katib SDK: `report_metrics` inside real trial processes, `get_trial_metrics` from a
notebook-like script; and the API's answers to filters and bad requests."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import run_tuner
from tests.katib_grpc.services import require_grpc
from tests.katib_sdk import run_sdk, sdk_python
from tests.servers import Server, free_port, start_server, stop_server
from tuner.client import Client
from tuner.katib_grpc.dbmanager import rfc3339
from tuner.storage import Repository, make_engine
from tuner.templates import job_trial_template
from tuner.trials import TrialState

require_grpc()

import grpc  # noqa: E402  (after the skip above)

from tuner.katib_grpc.protos import api  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "data"
XS = ["0.5", "1.5", "-0.5"]
STEPS = 3

# Test double for the Pod's service-account mount: Katib's report_metrics reads the namespace
# from /var/run/secrets/kubernetes.io/serviceaccount/namespace, which only exists in a Pod. The
# trial runs in a private mount namespace (unshare, no privileges needed) with that file on a
# tmpfs over /run; nothing outside the trial sees it.
POD_MOUNT = (
    "mount -t tmpfs tmpfs /run && mkdir -p /run/secrets/kubernetes.io/serviceaccount && "
    "echo default > /run/secrets/kubernetes.io/serviceaccount/namespace && "
    'exec "$0" "$@"'
)


def can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", POD_MOUNT, "true"], capture_output=True, check=False
    )
    return done.returncode == 0


@dataclass
class Reported:
    server: Server
    address: str
    repo: Repository
    experiment_id: int
    final: dict[str, Any]


def sdk_spec(name: str, address: str) -> dict[str, Any]:
    command = [
        "unshare", "-rm", "sh", "-c", POD_MOUNT,
        str(sdk_python()), str(DATA / "katib_sdk_trial.py"),
        "--x=${trialParameters.x}", f"--steps={STEPS}",
    ]  # fmt: skip
    template = job_trial_template(command, ["x"])
    container = template["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "DB_MANAGER_ADDRESS", "value": address}]
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "objective": {
                "type": "minimize",
                "objectiveMetricName": "loss",
                "additionalMetricNames": ["accuracy"],
            },
            "algorithm": {"algorithmName": "grid"},
            "parallelTrialCount": 3,
            "maxTrialCount": 3,
            "maxFailedTrialCount": 0,
            "metricsCollectorSpec": {"collector": {"kind": "Push"}},
            "parameters": [
                {"name": "x", "parameterType": "discrete", "feasibleSpace": {"list": XS}}
            ],
            "trialTemplate": template,
        },
    }


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reported]:
    sdk_python()  # skips without the SDK venv
    if not can_unshare():
        pytest.skip("unshare -rm (an unprivileged mount namespace) is not available here")
    tmp = tmp_path_factory.mktemp("dbmanager")
    db = f"sqlite:///{tmp / 'serve.db'}"
    port = free_port()
    server = start_server(tmp, db, args=["--katib-db-manager-port", str(port)])
    try:
        address = f"127.0.0.1:{port}"
        response = httpx.post(f"{server.url}/api/v1/experiments", json=sdk_spec("sdk", address))
        assert response.status_code == 201, response.text
        with Client(server.url) as client:
            final = client.wait("sdk", timeout=120, poll=0.2, progress=False)
        repo = Repository(make_engine(db))
        record = repo.get_experiment("default", "sdk")
        yield Reported(server, address, repo, record.id, final)
        repo.engine.dispose()
    finally:
        stop_server(server)


def test_report_metrics_in_trials_finishes_a_push_experiment(reported: Reported) -> None:
    status = reported.final["status"]
    assert status["phase"] == "Succeeded", (status, reported.server.log.read_text()[-3000:])
    assert status["trialCounts"]["Succeeded"] == len(XS)
    trials = reported.repo.trials(reported.experiment_id)
    assert sorted(str(t.parameters["x"]) for t in trials) == sorted(str(float(x)) for x in XS)
    for trial in trials:
        assert trial.state is TrialState.SUCCEEDED
        x = float(trial.parameters["x"])
        # each report_metrics call is the next step; min strategy: the last, lowest loss
        steps = reported.repo.observations(reported.experiment_id, trial.name, "loss")
        assert [o.step for o in steps] == list(range(STEPS))
        assert trial.objective == pytest.approx((x - 0.5) ** 2)
    best = status["currentOptimalTrial"]["parameterAssignments"]
    assert best == [{"name": "x", "value": 0.5}]


def test_get_trial_metrics_returns_exactly_what_tuner_stored(reported: Reported) -> None:
    trial = reported.repo.trials(reported.experiment_id)[0].name
    script = f"""
import json
from kubernetes.client import Configuration
from kubeflow.katib import KatibClient

# No cluster: a client configuration instead of a kubeconfig (get_trial_metrics needs none).
client = KatibClient(client_configuration=Configuration())
logs = client.get_trial_metrics({trial!r}, db_manager_address={reported.address!r}, timeout=10)
print(json.dumps([[m.time_stamp, m.metric.name, m.metric.value] for m in logs]))
"""
    got = json.loads(run_sdk(script).stdout.strip().splitlines()[-1])
    stored = reported.repo.observations(reported.experiment_id, trial)
    assert len(stored) == 2 * STEPS
    expected = sorted((rfc3339(o.time), o.metric, o.value) for o in stored if o.time is not None)
    assert sorted((t, name, float(value)) for t, name, value in got) == expected


def call(address: str, method: str, **request: Any) -> Any:
    messages, services = api()
    with grpc.insecure_channel(address) as channel:
        stub = services.DBManagerStub(channel)
        request_type = getattr(messages, f"{method}Request")
        return getattr(stub, method)(request_type(**request), timeout=10)


def test_metric_name_and_time_window_filter_as_katib_does(reported: Reported) -> None:
    trial = reported.repo.trials(reported.experiment_id)[1].name
    stored = reported.repo.observations(reported.experiment_id, trial, "loss")
    assert len(stored) == STEPS and all(o.time is not None for o in stored)
    reply = call(reported.address, "GetObservationLog", trial_name=trial, metric_name="loss")
    logs = reply.observation_log.metric_logs
    assert [m.metric.name for m in logs] == ["loss"] * STEPS
    assert [float(m.metric.value) for m in logs] == [o.value for o in stored]

    second = stored[1].time
    assert second is not None
    window = call(
        reported.address,
        "GetObservationLog",
        trial_name=trial,
        metric_name="loss",
        start_time=rfc3339(second),
        end_time=rfc3339(second + timedelta(days=1)),
    )
    assert [float(m.metric.value) for m in window.observation_log.metric_logs] == [
        o.value for o in stored if o.time is not None and o.time >= second
    ]
    before = call(
        reported.address,
        "GetObservationLog",
        trial_name=trial,
        end_time=rfc3339(second - timedelta(days=1)),
    )
    assert list(before.observation_log.metric_logs) == []


@pytest.mark.parametrize(
    ("method", "request_fields", "code", "message"),
    [
        ("GetObservationLog", {"trial_name": ""}, "INVALID_ARGUMENT", "trial_name: must be set"),
        ("GetObservationLog", {"trial_name": "nobody-0001"}, "NOT_FOUND", "nobody-0001"),
        (
            "GetObservationLog",
            {"trial_name": "sdk-0001", "start_time": "yesterday"},
            "INVALID_ARGUMENT",
            "start_time: 'yesterday' is not an RFC3339 time",
        ),
        ("ReportObservationLog", {"trial_name": "nobody-0001"}, "NOT_FOUND", "nobody-0001"),
        (
            "ReportObservationLog",
            {"trial_name": "sdk-0001", "values": [("loss", "lots")]},
            "INVALID_ARGUMENT",
            "metric_logs[0].metric.value: 'lots' is not a number",
        ),
        (
            "ReportObservationLog",
            {"trial_name": "sdk-0001", "values": [("", "1")]},
            "INVALID_ARGUMENT",
            "metric_logs[0].metric.name: must be set",
        ),
    ],
)
def test_bad_requests_get_a_status_that_names_the_problem(
    reported: Reported, method: str, request_fields: dict[str, Any], code: str, message: str
) -> None:
    messages, _ = api()
    fields = dict(request_fields)
    if "values" in fields:
        fields["observation_log"] = messages.ObservationLog(
            metric_logs=[
                messages.MetricLog(metric=messages.Metric(name=n, value=v))
                for n, v in fields.pop("values")
            ]
        )
    with pytest.raises(grpc.RpcError) as failure:
        call(reported.address, method, **fields)
    error: Any = failure.value
    assert error.code().name == code
    assert message in error.details()


def test_a_bad_db_manager_port_is_a_usage_error() -> None:
    done = run_tuner("serve", "--katib-db-manager-port", "70000")
    assert done.returncode == 2
    assert "not a port number" in done.stderr


def test_a_busy_db_manager_port_is_refused_before_the_server_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_tuner(
            "serve", "--no-token", "--db", f"sqlite:///{tmp_path / 'x.db'}",
            "--port", str(free_port()), "--katib-db-manager-port", str(port),
        )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
