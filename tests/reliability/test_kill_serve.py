"""SIGKILL ``tuner serve`` mid-experiment and start it again on the same database and workdir.

The trials push their metrics to the server, which is gone for the restart: they retry until it
is back. The restarted replica takes its dead predecessor's lease at once (no wait for the lease
to expire), re-adopts the running trials and records those that ended meanwhile by their exit
status, so nothing is lost, started twice, or counted against ``maxFailedTrialCount: 1``.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.reliability.common import assert_nothing_lost, trial_env, trials_of, write_spec
from tests.servers import free_port, start_server, stop_server
from tests.waiting import wait_for
from tuner.storage import Repository, make_engine
from tuner.trials import ExperimentPhase

pytestmark = pytest.mark.reliability

KILLS = 2
MAX_TRIALS = 9


def test_sigkill_of_tuner_serve_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    spec = yaml.safe_load(
        write_spec(tmp_path, push=True, max_trials=MAX_TRIALS, parallel=3).read_text()
    )
    db = f"sqlite:///{tmp_path / 'tuner.db'}"
    repo = Repository(make_engine(db))
    env = {k: v for k, v in trial_env(tmp_path).items() if k == "STARTS_FILE"}
    port = free_port()
    # A lease outlives the test: a restarted server that drives on took it from a dead holder.
    args = ("--workdir", str(tmp_path / "work"), "--lease-ttl", "600")
    pick = random.Random(7)
    server = start_server(tmp_path, db, name="serve0", args=args, env=env, port=port)
    try:
        response = httpx.post(f"{server.url}/api/v1/experiments", json=spec, timeout=30)
        assert response.status_code == 201, response.text
        for kill in range(KILLS):
            wait_for(
                lambda k=kill: sum(t.state.finished for t in trials_of(repo)) > 2 * k,
                f"server {kill} to end trials",
                timeout=120,
            )
            time.sleep(pick.uniform(0.0, 1.0))
            server.process.kill()
            server.process.wait(30)
            server = start_server(
                tmp_path, db, name=f"serve{kill + 1}", args=args, env=env, port=port
            )
        wait_for(
            lambda: repo.get_experiment("default", "rel").phase is not ExperimentPhase.RUNNING,
            "the experiment to end",
            timeout=120,
        )
    finally:
        stop_server(server)
    assert_nothing_lost(repo, tmp_path, MAX_TRIALS)
    for restart in range(1, KILLS + 1):
        log = (tmp_path / f"serve{restart}.log").read_text()
        assert "is dead; taking over" in log, log
