"""Two real `tuner serve` replicas on one database: one is SIGKILLed mid-experiment, the other
takes the experiment over and completes it with exactly maxTrialCount trials."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.helpers import command, experiment_dict
from tests.servers import Server, start_server, stop_server
from tests.waiting import wait_for
from tuner.storage import Repository, make_engine
from tuner.storage.tables import ExperimentRow
from tuner.trials import ExperimentPhase, TrialState

ROOT = Path(__file__).resolve().parents[2]
LEASE_TTL = 3.0


def start_replica(name: str, db_url: str, tmp: Path) -> Server:
    # Replicas share the trial-token secret.
    return start_server(
        tmp,
        db_url,
        name=name,
        args=["--replica-id", name, "--lease-ttl", str(LEASE_TTL)],
        env={"TUNER_SECRET": "ab" * 32},
    )


@pytest.fixture
def replicas(db_url: str, tmp_path: Path) -> Iterator[list[Server]]:
    started = [start_replica("a", db_url, tmp_path)]
    started.append(start_replica("b", db_url, tmp_path))
    yield started
    for server in started:
        stop_server(server)


def test_a_killed_replica_hands_its_experiment_over(db_url: str, replicas: list[Server]) -> None:
    a, b = replicas[0].process, replicas[1].process
    a_url = replicas[0].url
    data = experiment_dict("failover", maxTrialCount=8, parallelTrialCount=2, maxFailedTrialCount=4)
    command(data).extend(["--steps=4", "--sleep=0.25"])
    response = httpx.post(
        f"{a_url}/api/v1/experiments",
        content=yaml.safe_dump(data),
        headers={"Content-Type": "application/yaml"},
        timeout=10,
    )
    assert response.status_code == 201, response.text

    engine = make_engine(db_url)
    try:
        check_failover(Repository(engine), a, b)
    finally:
        engine.dispose()


def check_failover(
    repo: Repository, a: subprocess.Popen[bytes], b: subprocess.Popen[bytes]
) -> None:
    record = repo.get_experiment("default", "failover")

    def owner() -> str | None:
        with repo.session() as s:
            row = s.get(ExperimentRow, record.id)
            return row.owner if row else None

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # bounded wait: A has finished some trials, runs others
        trials = repo.trials(record.id)
        finished = [t for t in trials if t.state.finished]
        running = [t for t in trials if t.state is TrialState.RUNNING]
        if len(finished) >= 2 and running:
            break
        time.sleep(0.05)
    else:
        pytest.fail("replica a never got going")
    assert owner() == "a"
    a.send_signal(signal.SIGKILL)
    a.wait(10)
    killed_at = time.monotonic()

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        record = repo.experiment_by_id(record.id)
        if record.phase.finished:
            break
        time.sleep(0.1)
    assert record.phase is ExperimentPhase.SUCCEEDED, record.message
    assert b.poll() is None

    trials = repo.trials(record.id)
    assert [t.number for t in trials] == list(range(8))  # exactly maxTrialCount, none twice
    states = [t.state for t in trials]
    lost = [t for t in trials if t.reason == "TrialLost"]
    assert 1 <= len(lost) <= 2 and all(t.state is TrialState.FAILED for t in lost)
    assert states.count(TrialState.SUCCEEDED) == 8 - len(lost)
    # Every trial B ran has all its observations, and the takeover was bounded.
    for t in trials:
        if t.state is TrialState.SUCCEEDED:
            assert t.steps == 4
    # B releases the finished experiment's lease just after recording its end.
    wait_for(lambda: owner() is None, "B to release the finished experiment's lease", timeout=30)
    took_over = [t for t in trials if t.started_at and t.number >= 2]
    assert took_over
    assert time.monotonic() - killed_at < 60
