"""A trial whose process started before its Running state was saved is re-adopted after a
restart, not started a second time; a stale directory of another trial is not taken for it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT
from tests.reliability.common import starts, trial_env, write_spec
from tuner.controller import ExperimentController
from tuner.runners.local import INTENT_NAME, LOG_NAME, PID_NAME, LocalRunner
from tuner.spec import load_spec
from tuner.storage import Repository
from tuner.templates import render_trial
from tuner.trial_env import base_trial_env
from tuner.trials import ExperimentPhase, TrialState

pytestmark = pytest.mark.reliability


def test_a_trial_started_before_its_running_state_was_saved_runs_once(
    tmp_path: Path, repo: Repository
) -> None:
    spec = write_spec(tmp_path, push=False, max_trials=2, parallel=2)
    record = repo.create_experiment(load_spec(yaml.safe_load(spec.read_text())))
    runner = LocalRunner(tmp_path / "work", cwd=ROOT, base_env=trial_env(tmp_path))
    experiment = record.experiment
    started, stale = repo.create_trials(record, [({"x": 0.5}, {}), ({"x": 1.0}, {})])
    # The second trial's directory holds what a deleted experiment of the same name left:
    # another trial's intent, and the pid of a live process (this one).
    stale_dir = runner.trial_dir(experiment, stale.name)
    stale_dir.mkdir(parents=True)
    (stale_dir / INTENT_NAME).write_text(f"{stale.name} 2001-01-01T00:00:00+00:00")
    (stale_dir / PID_NAME).write_text(f"{os.getpid()} 1\n")
    (stale_dir / LOG_NAME).write_text("loss=123\n")

    async def die_after_start_then_restart() -> ExperimentPhase:
        # A controller started the first trial and died before saving Running: both stay
        # Created in the database, one of them with a live process.
        handle = await runner.start(
            experiment, started, render_trial(experiment, started), base_trial_env(record, started)
        )
        while not (runner.trial_dir(experiment, started.name) / PID_NAME).exists():
            await asyncio.sleep(0.02)
        assert {t.state for t in repo.trials(record.id)} == {TrialState.CREATED}
        final = await ExperimentController(repo, record, runner).run()
        assert handle._process is not None
        await handle._process.wait()
        return final.phase

    phase = asyncio.run(asyncio.wait_for(die_after_start_then_restart(), 90))
    assert phase is ExperimentPhase.SUCCEEDED
    trials = {t.name: t for t in repo.trials(record.id)}
    assert len(trials) == 2
    assert all(t.state is TrialState.SUCCEEDED for t in trials.values())
    assert starts(tmp_path) == {started.name: 1, stale.name: 1}
    for trial in trials.values():
        steps = [o.step for o in repo.observations(record.id, trial.name, "loss")]
        assert steps == [0, 1, 2], (trial.name, steps)  # the stale log was not read
