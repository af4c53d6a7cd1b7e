"""A trial's children never outlive it: not when it ends by itself, not when it is killed, not
when its supervisor vanished and the next controller finds it lost (real processes)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT
from tests.reliability.common import trial_env, write_spec
from tuner.controller import ExperimentController
from tuner.processes import process_start_time, session_members
from tuner.runners.local import LocalRunner
from tuner.spec import load_spec
from tuner.storage import Repository
from tuner.templates import render_trial
from tuner.trial_env import base_trial_env
from tuner.trials import ExperimentPhase, TrialState

pytestmark = pytest.mark.reliability


def grandchildren(directory: Path) -> dict[str, int]:
    """The ``sleep 300`` each trial left behind, by trial name."""
    return {p.name: int(p.read_text()) for p in directory.iterdir() if p.read_text()}


def alive(pids: dict[str, int]) -> list[int]:
    return [pid for pid in pids.values() if process_start_time(pid) is not None]


def setup(tmp_path: Path, repo: Repository, **env: str) -> tuple[LocalRunner, Path]:
    spec = write_spec(tmp_path, push=False, max_trials=2, parallel=2)
    repo.create_experiment(load_spec(yaml.safe_load(spec.read_text())))
    children = tmp_path / "children"
    children.mkdir()
    base = trial_env(tmp_path, GRANDCHILD_DIR=str(children), **env)
    return LocalRunner(tmp_path / "work", cwd=ROOT, base_env=base), children


def test_children_left_by_finished_or_killed_trials_are_killed(
    tmp_path: Path, repo: Repository
) -> None:
    runner, children = setup(tmp_path, repo)
    record = repo.get_experiment("default", "rel")
    final = asyncio.run(asyncio.wait_for(ExperimentController(repo, record, runner).run(), 90))
    assert final.phase is ExperimentPhase.SUCCEEDED, final.message
    left = grandchildren(children)
    assert len(left) == 2  # each trial did leave a `sleep 300` behind...
    assert alive(left) == []  # ...and none survives its trial

    # Trials held at their first step are killed by a stop: their children go with them.
    repo.delete_experiment(record.id)
    for path in children.iterdir():
        path.unlink()
    repo.create_experiment(record.experiment)
    record = repo.get_experiment("default", "rel")
    runner._base_env["GATE_FILE"] = str(tmp_path / "never")

    async def stop_when_started() -> ExperimentPhase:
        controller = ExperimentController(repo, record, runner)
        task = asyncio.create_task(controller.run())
        while len(grandchildren(children)) < 2:
            await asyncio.sleep(0.05)
        controller.request_stop("test")
        return (await asyncio.wait_for(task, 60)).phase

    assert asyncio.run(asyncio.wait_for(stop_when_started(), 90)) is ExperimentPhase.STOPPED
    left = grandchildren(children)
    assert len(left) == 2 and alive(left) == []


def test_a_lost_trials_children_are_killed_and_the_loss_is_not_a_failure(
    tmp_path: Path, repo: Repository
) -> None:
    """Its supervisor and command vanished (SIGKILL, no exit status), a child of it lives on:
    the next controller records TrialLost, kills the child, and the experiment goes on."""
    runner, children = setup(tmp_path, repo, GATE_FILE=str(tmp_path / "gate"))
    record = repo.get_experiment("default", "rel")
    experiment = record.experiment
    [trial] = repo.create_trials(record, [({"x": 0.5}, {})])

    async def lose_then_resume() -> tuple[ExperimentPhase, int]:
        handle = await runner.start(
            experiment, trial, render_trial(experiment, trial), base_trial_env(record, trial)
        )
        repo.mark_running(record.id, trial.name, handle.ref, handle.process_start)
        supervisor = int(handle.ref.removeprefix("pid:"))
        while not (child := grandchildren(children).get(trial.name)):
            await asyncio.sleep(0.05)
        for pid in session_members(supervisor):
            if pid != child:
                os.kill(pid, signal.SIGKILL)
        while process_start_time(supervisor) is not None:  # reaped by asyncio's watcher
            await asyncio.sleep(0.05)
        assert process_start_time(child) is not None  # nobody has looked after it yet
        (tmp_path / "gate").touch()  # the trial started next runs through
        final = await ExperimentController(repo, record, runner).run()
        assert handle._process is not None
        await handle._process.wait()  # (only closes the dead supervisor's transport)
        return final.phase, child

    phase, child = asyncio.run(asyncio.wait_for(lose_then_resume(), 90))
    lost = repo.trials(record.id)[0]
    assert (lost.state, lost.reason) == (TrialState.FAILED, "TrialLost")
    assert process_start_time(child) is None
    # maxFailedTrialCount is 1: a counted failure would have ended the experiment Failed.
    assert phase is ExperimentPhase.SUCCEEDED, repo.get_experiment("default", "rel").message
