"""SIGKILL ``tuner run`` again and again mid-experiment, then let a last run finish it.

The trials push their metrics (``tuner.report``) to the run's loopback endpoint, which dies with
each kill: they ride the restart out on their retries, and the next run re-adopts them (or
records how they ended meanwhile) instead of losing them or starting them again.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.reliability.common import assert_nothing_lost, start_run, trials_of, write_spec
from tests.waiting import wait_for
from tuner.storage import Repository, make_engine

pytestmark = pytest.mark.reliability

KILLS = 5
MAX_TRIALS = 12


def finished(repo: Repository) -> int:
    return sum(1 for t in trials_of(repo) if t.state.finished)


def test_sigkill_loop_of_tuner_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, push=True, max_trials=MAX_TRIALS, parallel=3)
    db = f"sqlite:///{tmp_path / 'tuner.db'}"
    repo = Repository(make_engine(db))
    pick = random.Random(12)
    for kill in range(KILLS):
        run = start_run(spec, db, tmp_path)
        # Each run makes progress (one more trial ended), then dies at a random point after.
        wait_for(
            lambda k=kill, r=run: finished(repo) > k or r.poll() is not None,
            f"run {kill + 1} to end a trial",
            timeout=120,
        )
        time.sleep(pick.uniform(0.0, 1.0))
        run.kill()
        out, err = run.communicate(timeout=60)
        assert run.returncode == -9, out + err
        assert len(trials_of(repo)) <= MAX_TRIALS

    last = start_run(spec, db, tmp_path)
    out, err = last.communicate(timeout=180)
    assert last.returncode == 0, out + err
    assert "Succeeded (ExperimentMaxTrialsReached)" in out, out
    assert_nothing_lost(repo, tmp_path, MAX_TRIALS)
