"""The 50-trial digits experiment of tests/ui/test_digits.py, and its head start.

Its 50 real trials (the MLP of examples/digits_mlp.py, each a Python process that imports
scikit-learn) take about a minute and a half of CPU, the longest wait of the suite. The rest of
the suite leaves about one of two cores idle on average (it mostly waits for the processes it
starts), so the session starts this experiment first, in the background (``digits_head_start``
in tests/conftest.py), and the test, collected near the end, finds it finished or nearly so. The
test then checks it exactly as it would one it had just started itself.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.servers import Server
from tests.ui.browser import start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]
TEST_FILE = Path(__file__).with_name("test_digits.py")
TRIALS = 50


def digits_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "digits-random.yaml").read_text())
    spec["metadata"]["name"] = "digits"
    spec["spec"]["maxTrialCount"] = TRIALS
    spec["spec"]["parallelTrialCount"] = 2
    spec["spec"]["earlyStopping"] = {
        "algorithmName": "medianstop",
        "algorithmSettings": [
            {"name": "min_trials_required", "value": "3"},
            {"name": "start_step", "value": "2"},
        ],
    }
    container = spec["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    container["command"] = [
        "python3" if arg == "python3" else arg.replace("--epochs=10", "--epochs=6")
        for arg in container["command"]
    ]
    container["command"][1] = str(ROOT / "examples" / "digits_mlp.py")
    return spec


def start_digits(tmp: Path) -> Server:
    """A quiet `tuner serve` with the digits experiment submitted to it (it runs on its own)."""
    running = start_server(tmp, f"sqlite:///{tmp / 'digits.db'}", None)
    try:
        created = httpx.post(f"{running.url}/api/v1/experiments", json=digits_spec(), timeout=60)
        assert created.status_code == 201, created.text
    except BaseException:
        stop_server(running)
        raise
    return running


class HeadStart:
    """The digits server being started (and its experiment submitted) in a background thread.

    :meth:`server` hands the test the running server, or raises what went wrong (a failed
    start fails the digits test, not whichever test happened to come first)."""

    def __init__(self, tmp: Path) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digits-head-start")
        self._future: Future[Server] = self._pool.submit(start_digits, tmp)

    def server(self) -> Server:
        return self._future.result(timeout=180)  # start_server's own bound is 120 s

    def stop(self) -> None:
        self._pool.shutdown(wait=True)
        if self._future.exception() is None:
            stop_server(self._future.result())


def wanted(session: pytest.Session) -> bool:
    """Whether this session runs the digits test, alone in its process: then it gets a head
    start. (A pytest-xdist worker collects every test but runs only some: there the test
    starts its experiment itself.)"""
    in_worker = hasattr(session.config, "workerinput")
    return not in_worker and any(Path(item.path) == TEST_FILE for item in session.items)
