"""Two ``tuner run`` of one experiment on one database: the second refuses at once, naming the
first, and touches nothing; with ``--wait`` it waits for the first to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.common import (
    assert_nothing_lost,
    start_run,
    trial_env,
    trials_of,
    write_spec,
)
from tests.waiting import wait_for
from tuner.storage import Repository, make_engine
from tuner.trials import TrialState

pytestmark = pytest.mark.reliability

MAX_TRIALS = 6
PARALLEL = 2


def test_a_second_run_refuses_or_waits_and_the_first_keeps_its_limits(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, push=False, max_trials=MAX_TRIALS, parallel=PARALLEL)
    db = f"sqlite:///{tmp_path / 'tuner.db'}"
    repo = Repository(make_engine(db))
    gate = tmp_path / "gate"
    env = trial_env(tmp_path, GATE_FILE=str(gate))
    first = start_run(spec, db, tmp_path, env=env)
    try:
        wait_for(lambda: trials_of(repo), "the first run to start trials")
        second = start_run(spec, db, tmp_path, env=env)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 1, out + err
        assert "experiment default/rel is being driven by run@" in err, err
        assert "pass --wait" in err
        assert first.poll() is None, "the second run must not disturb the first"

        waiting = start_run(spec, db, tmp_path, "--wait", env=env)
        assert waiting.stdout is not None
        said = waiting.stdout.readline()  # it waits, saying so, while the first one is held
        assert "is being driven by run@" in said and "waiting for it to end" in said, said
        gate.touch()
        peak = 0

        def ended() -> bool:
            nonlocal peak
            running = sum(t.state is TrialState.RUNNING for t in trials_of(repo))
            peak = max(peak, running)
            return first.poll() is not None

        wait_for(ended, "the first run to end", timeout=120, interval=0.05)
        first_out, first_err = first.communicate(timeout=60)
        out, err = waiting.communicate(timeout=120)
    finally:
        for run in (first, locals().get("second"), locals().get("waiting")):
            if run is not None and run.poll() is None:
                run.kill()
                run.communicate()
    assert first.returncode == 0, first_out + first_err
    assert waiting.returncode == 0, out + err
    assert "already finished (Succeeded); showing it" in out, out
    assert peak <= PARALLEL
    assert_nothing_lost(repo, tmp_path, MAX_TRIALS)
