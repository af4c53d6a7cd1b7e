"""The server log of a real `tuner serve` at the default level: experiment and trial events at
INFO, spec warnings on submit, and an access log without the per-step pushes (errors kept)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.helpers import push_spec, push_stopping_spec
from tests.servers import Server, start_server, stop_server
from tests.waiting import wait_for

STEPS = 10
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("server-log")
    # Unbuffered, so the access log (stdout) is in the file while the server runs.
    running = start_server(tmp, f"sqlite:///{tmp / 'log.db'}", env={"PYTHONUNBUFFERED": "1"})
    yield running
    stop_server(running)


def submit(server: Server, spec: dict[str, object]) -> None:
    answer = httpx.post(
        f"{server.url}/api/v1/experiments",
        content=yaml.safe_dump(spec),
        headers={"Content-Type": "application/yaml"},
        timeout=60,
    )
    assert answer.status_code == 201, answer.text


def wait_until_finished(server: Server, name: str) -> None:
    def finished() -> bool:
        answer = httpx.get(f"{server.url}/api/v1/experiments/{name}", timeout=60)
        return bool(answer.json()["status"]["phase"] == "Succeeded")

    wait_for(finished, f"experiment {name} to succeed", timeout=240, interval=0.3)


def test_events_are_logged_and_pushes_stay_out_of_the_access_log(server: Server) -> None:
    data = push_stopping_spec("logged", steps=STEPS)
    submit(server, data)
    wait_until_finished(server, "logged")
    # A refused push is an error: it stays in the access log.
    refused = httpx.post(
        f"{server.url}/api/v1/experiments/logged/trials/ghost/observations",
        json={"step": 0, "metrics": {"loss": 1.0}},
        timeout=60,
    )
    assert refused.status_code >= 400

    def ended() -> str | None:
        text = server.log.read_text()
        return text if "experiment default/logged: ended Succeeded" in text else None

    log = wait_for(ended, "the end of the experiment in the server log")
    lines = [line for line in log.splitlines() if "default/logged" in line]
    assert all(" INFO tuner.service: " in line for line in lines), lines
    assert log.count("experiment default/logged: started") == 1
    assert re.search(r"experiment default/logged: trial logged-\d+ started", log)
    assert re.search(r"experiment default/logged: trial logged-\d+ ended Succeeded", log)
    assert re.search(r"experiment default/logged: trial logged-\d+ early-stopped: .*median", log)
    assert "experiment default/logged: best objective improved to " in log
    assert re.search(
        r"experiment default/logged: ended Succeeded: 8 trials finished \(maxTrialCount 8\)", log
    )

    access = [line for line in log.splitlines() if '"POST /api/v1/' in line]
    assert any('"POST /api/v1/experiments HTTP/1.1" 201' in line for line in access), access
    pushes = [line for line in access if "/observations" in line]
    assert len(pushes) == 1 and "/trials/ghost/observations" in pushes[0], pushes
    assert "GET /healthz" not in log


def test_an_unused_parameter_is_logged_as_a_warning_on_submit(server: Server) -> None:
    data = yaml.safe_load(push_spec("unused"))
    data["spec"]["parameters"].append(
        {"name": "dropout", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "0.5"}}
    )
    data["spec"]["algorithm"] = {"algorithmName": "random"}
    data["spec"]["maxTrialCount"] = 1
    data["spec"]["parallelTrialCount"] = 1
    submit(server, data)
    warning = (
        "WARNING tuner.submission: experiment default/unused: spec.parameters[1]: "
        "parameter 'dropout' is not used by any trial"
    )
    wait_for(lambda: warning in server.log.read_text(), "the warning in the server log")
    wait_until_finished(server, "unused")
