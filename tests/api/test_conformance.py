"""The API against its own OpenAPI document: schemathesis, every check, on SQLite and PostgreSQL.

A real ``tuner serve`` per database, with a seeded ask/tell experiment (two trials with
metrics) so that the read endpoints answer with data, not only 404. ``st run`` (schemathesis'
CLI: examples, coverage, fuzzing and stateful phases) runs with a fixed seed and a small
``--max-examples``, bounded in time (75 s each); ``tests/api/schemathesis.toml`` lists its
relaxations and why. Any failure of any check fails the test with schemathesis' report.

Generated specs could in principle describe a runnable trial; the server runs with an empty
``PATH`` so that no generated command can resolve.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import V1, ask_tell_dict
from tests.servers import Server, start_server, stop_server

pytestmark = pytest.mark.conformance

CONFIG = Path(__file__).with_name("schemathesis.toml")
TOKEN = "conformance-token"
MAX_EXAMPLES = os.environ.get("TUNER_CONFORMANCE_EXAMPLES", "10")


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    # schemathesis sends wrong tokens by design: the guessing limit (tested in test_security)
    # would otherwise refuse its valid requests that follow.
    started = start_server(
        tmp_path,
        db_url,
        TOKEN,
        args=["--wrong-token-limit", "1000000"],
        env={"PATH": str(tmp_path / "no-commands")},
    )
    yield started
    stop_server(started)


def _seed(url: str) -> None:
    """Experiment ``conformance`` with one Succeeded and one Running trial, with curves."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=f"{url}{V1}", headers=headers, timeout=30) as client:
        data = ask_tell_dict("conformance", maxTrialCount=4, parallelTrialCount=2)
        assert client.post("/experiments", json=data).status_code == 201
        answer = client.post("/experiments/conformance/suggestions", json={"count": 2})
        trials = answer.json()["trials"]
        assert [t["trial"] for t in trials] == ["conformance-0000", "conformance-0001"]
        for i, trial in enumerate(trials):
            url_ = f"/experiments/conformance/trials/{trial['trial']}"
            auth = {"Authorization": f"Bearer {trial['token']}"}
            for step in range(3):
                body = {"step": step, "metrics": {"loss": 1 / (step + 1 + i), "accuracy": 0.5}}
                assert client.post(f"{url_}/observations", json=body, headers=auth).is_success
        done = client.post(
            "/experiments/conformance/trials/conformance-0000/complete",
            json={"status": "Succeeded"},
            headers={"Authorization": f"Bearer {trials[0]['token']}"},
        )
        assert done.status_code == 200, done.text


def test_schemathesis_finds_no_failure(server: Server, tmp_path: Path) -> None:
    _seed(server.url)
    command = [
        str(Path(sys.executable).parent / "st"),
        "--config-file", str(CONFIG),
        "--no-color",
        "run", f"{server.url}/openapi.json",
        "--header", f"Authorization: Bearer {TOKEN}",
        "--checks", "all",
        "--max-examples", MAX_EXAMPLES,
        "--seed", "1",
        "--generation-database", "none",
        "--request-timeout", "30",
        "--max-time", "75",  # a bound on a loaded machine; about 40 s when idle
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "No issues found" in report or " passed" in report, report
