"""tuner.report: a light import, clear failures outside a trial, retries, server answers."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import tuner
from tuner import report as report_module_or_function
from tuner.errors import ReportError

# The module: ``tuner.report`` itself is the function (see tuner/__init__.py).
REPORT_MODULE = importlib.import_module("tuner.report")
ENV = ("TUNER_API_URL", "TUNER_NAMESPACE", "TUNER_EXPERIMENT", "TUNER_TRIAL", "TUNER_TRIAL_TOKEN")
HEAVY = ("optuna", "fastapi", "sqlalchemy", "pandas", "pydantic", "httpx", "yaml", "numpy")


def test_import_tuner_stays_light() -> None:
    code = (
        "import sys, json, tuner\n"
        "import tuner.report\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'callable': callable(tuner.report)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    assert json.loads(out) == {"heavy": [], "callable": True}


def test_tuner_report_is_the_function() -> None:
    import tuner.report  # importing the submodule again does not rebind the name

    assert tuner.report is report_module_or_function is REPORT_MODULE.report
    assert callable(tuner.report) and tuner.report.__module__ == "tuner.report"


@pytest.fixture
def no_trial_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ENV:
        monkeypatch.delenv(key, raising=False)


def test_outside_a_trial_it_fails_clearly(no_trial_env: None) -> None:
    with pytest.raises(ReportError) as error:
        tuner.report(step=0, loss=0.3)
    message = error.value.message
    assert message.startswith("tuner.report() can only be called inside a trial")
    assert "TUNER_API_URL, TUNER_EXPERIMENT, TUNER_TRIAL, TUNER_TRIAL_TOKEN are not set" in message
    assert "not a trial started by `tuner serve`" in message


def test_under_tuner_run_it_says_what_to_do(
    no_trial_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNER_EXPERIMENT", "exp")
    monkeypatch.setenv("TUNER_TRIAL", "exp-0000")
    with pytest.raises(ReportError, match="TUNER_API_URL, TUNER_TRIAL_TOKEN are not set") as e:
        tuner.report(loss=0.3)
    assert "print metrics as `name=value` lines" in e.value.message
    assert "set metricsCollectorSpec.collector.kind to Push" in e.value.message


@pytest.mark.parametrize(
    ("step", "metrics", "match"),
    [
        (0, {}, "needs at least one metric"),
        (-1, {"loss": 1.0}, "non-negative integer"),
        (1.5, {"loss": 1.0}, "non-negative integer"),
        (0, {"loss": "high"}, "is not a number"),
    ],
)
def test_invalid_arguments(step: Any, metrics: dict[str, Any], match: str) -> None:
    with pytest.raises(ReportError, match=match):
        tuner.report(step=step, **metrics)


class _Stub(BaseHTTPRequestHandler):
    """Answers from a script: a list of (status, body) per request; records what it got."""

    script: list[tuple[Any, ...]] = []  # (status, body) or (status, body, headers)
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append(
            {
                "path": self.path,
                "auth": self.headers["Authorization"],
                "body": json.loads(self.rfile.read(length)),
            }
        )
        status, body, *headers = self.script.pop(0)
        payload = json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers[0] if headers else {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Stub]]:
    handler = type("Handler", (_Stub,), {"script": [], "received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    monkeypatch.setenv("TUNER_API_URL", f"http://127.0.0.1:{server.server_address[1]}/")
    monkeypatch.setenv("TUNER_NAMESPACE", "team")
    monkeypatch.setenv("TUNER_EXPERIMENT", "exp")
    monkeypatch.setenv("TUNER_TRIAL", "exp-0003")
    monkeypatch.setenv("TUNER_TRIAL_TOKEN", "trial-token")
    monkeypatch.setattr(REPORT_MODULE, "FIRST_DELAY", 0.01)
    yield handler
    server.shutdown()
    server.server_close()


def test_posts_the_values_and_returns_the_decision(stub: type[_Stub]) -> None:
    stub.script += [(200, {"should_stop": False}), (200, {"should_stop": True})]
    assert tuner.report(step=2, loss=0.5, accuracy=1) is False
    assert tuner.report(loss=float("nan")) is True
    first, second = stub.received
    assert first == {
        "path": "/api/v1/experiments/exp/trials/exp-0003/observations?namespace=team",
        "auth": "Bearer trial-token",
        "body": {"step": 2, "metrics": {"loss": 0.5, "accuracy": 1.0}},
    }
    assert second["body"]["step"] is None and second["body"]["metrics"]["loss"] != 0.5


def test_retries_on_unavailable_then_succeeds(stub: type[_Stub]) -> None:
    stub.script += [(503, {"detail": "busy"}), (502, {}), (200, {"should_stop": False})]
    assert tuner.report(step=0, loss=1.0) is False
    assert len(stub.received) == 3


def test_retry_after_is_honoured_and_other_pauses_grow_with_jitter(
    stub: type[_Stub], monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(REPORT_MODULE.time, "sleep", pauses.append)
    stub.script += [
        (503, {"detail": "restarting"}, {"Retry-After": "7"}),
        (429, {"detail": "slow down"}, {"Retry-After": "2"}),
        (502, {}),
        (504, {}),
        (200, {"should_stop": False}),
    ]
    assert tuner.report(step=0, loss=1.0) is False
    assert len(stub.received) == 5
    assert pauses[:2] == [7.0, 2.0]
    # attempts 3 and 4: FIRST_DELAY (0.01) * 4 and * 8, each between half and all of it
    assert 0.02 <= pauses[2] <= 0.04 and 0.04 <= pauses[3] <= 0.08


def test_backoff_is_capped_and_jittered() -> None:
    delays = [REPORT_MODULE.backoff(n) for n in range(1, 40)]
    assert all(REPORT_MODULE.MAX_DELAY / 2 <= d <= REPORT_MODULE.MAX_DELAY for d in delays[10:])
    assert len(set(delays[10:])) > 1  # jittered, not in lockstep
    assert REPORT_MODULE.retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert REPORT_MODULE.retry_after("soon") is None


def test_refusals_are_not_retried_and_carry_the_server_message(stub: type[_Stub]) -> None:
    stub.script += [(403, {"detail": "invalid token for trial exp-0003"})]
    with pytest.raises(ReportError) as error:
        tuner.report(step=0, loss=1.0)
    assert error.value.message == (
        "the server refused the report of trial exp-0003: HTTP 403: "
        "invalid token for trial exp-0003"
    )
    assert len(stub.received) == 1


def test_ignored_metrics_warn(stub: type[_Stub]) -> None:
    stub.script += [(200, {"should_stop": False, "ignored": ["lr"]})]
    with pytest.warns(UserWarning, match="does not list lr"):
        tuner.report(step=0, loss=1.0, lr=0.1)


def test_unreachable_server_fails_after_a_few_attempts(
    no_trial_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket_bound() as port:  # a port nobody listens on
        monkeypatch.setenv("TUNER_API_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("TUNER_EXPERIMENT", "exp")
        monkeypatch.setenv("TUNER_TRIAL", "exp-0000")
        monkeypatch.setenv("TUNER_TRIAL_TOKEN", "t")
        monkeypatch.setenv("TUNER_REPORT_RETRY_SECONDS", "0.3")
        monkeypatch.setattr(REPORT_MODULE, "FIRST_DELAY", 0.01)
        with pytest.raises(ReportError, match=r"could not reach the tuner server .* in 0.3 s"):
            tuner.report(step=0, loss=1.0)


class socket_bound:
    """A port that is bound but not listening: connections are refused."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        port: int = self.sock.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
