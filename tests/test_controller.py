"""The controller with real trial processes (the local runner), end to end."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import DATA, command, experiment_dict, run, runner
from tuner.controller import ExperimentController
from tuner.events import Event
from tuner.spec import load_spec
from tuner.storage import ExperimentRecord, Repository, make_engine
from tuner.trials import ExperimentPhase, TrialState

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sqlite_repo(tmp_path: Path) -> Repository:
    return Repository(make_engine(f"sqlite:///{tmp_path / 'tuner.db'}"))


def fake_mnist_accuracy(params: dict[str, Any]) -> float:
    bonus = {"sgd": 0.0, "adam": 0.02, "ftrl": -0.01}[params["optimizer"]]
    return 0.9 - 100 * (params["lr"] - 0.02) ** 2 - 0.01 * abs(params["num-layers"] - 3) + bonus


def test_katib_example_runs_and_objectives_match_parameters(
    sqlite_repo: Repository, tmp_path: Path
) -> None:
    record = sqlite_repo.create_experiment(load_spec(DATA / "katib-random.yaml"))
    final = run(sqlite_repo, record, tmp_path)
    assert final.phase is ExperimentPhase.SUCCEEDED, final.message
    assert final.reason == "ExperimentMaxTrialsReached"
    trials = sqlite_repo.trials(record.id)
    assert len(trials) == 12
    assert {t.state for t in trials} == {TrialState.SUCCEEDED}
    for t in trials:
        assert t.objective == pytest.approx(fake_mnist_accuracy(t.parameters), abs=1e-12)
        assert t.steps == 3
        assert t.metrics["Train-accuracy"] == pytest.approx(t.objective + 0.01)
    board = sqlite_repo.leaderboard(record, limit=None)
    values = [t.objective for t in board]
    assert values == sorted(values, reverse=True)  # maximize: best first
    # Each trial kept its log.
    log = tmp_path / "work" / "kubeflow" / "random" / trials[0].name / "trial.log"
    assert "Validation-accuracy=" in log.read_text()


def test_failures_metrics_unavailable_and_max_failed(
    sqlite_repo: Repository, tmp_path: Path
) -> None:
    data = experiment_dict(maxTrialCount=6, maxFailedTrialCount=1, parallelTrialCount=1)
    command(data).append("--fail")
    record = sqlite_repo.create_experiment(load_spec(data))
    final = run(sqlite_repo, record, tmp_path)
    assert final.phase is ExperimentPhase.FAILED
    assert final.reason == "ExperimentFailed"
    trials = sqlite_repo.trials(record.id)
    assert len(trials) == 1  # the first failure reaches maxFailedTrialCount=1 (Katib's rule)
    for t in trials:
        # The exit code, the log's path and the end of the log (stderr last), in that order.
        log = tmp_path / "work" / "default" / "exp" / t.name / "trial.log"
        assert t.state is TrialState.FAILED and t.reason == "TrialFailed. Job reason: Error"
        assert t.message.startswith(f"exit code 3 (log: {log})\nepoch=0 loss=")
        assert t.message.endswith("\nboom")
        assert "boom" in log.read_text()  # stderr is in the log too

    data = experiment_dict("silent", maxTrialCount=2)
    del data["spec"]["maxFailedTrialCount"]  # no failure budget: MetricsUnavailable trials end it
    command(data).append("--silent")
    record = sqlite_repo.create_experiment(load_spec(data))
    final = run(sqlite_repo, record, tmp_path)
    assert final.phase is ExperimentPhase.SUCCEEDED
    assert {t.state for t in sqlite_repo.trials(record.id)} == {TrialState.METRICS_UNAVAILABLE}

    # MetricsUnavailable counts against maxFailedTrialCount, as in Katib.
    data = experiment_dict(
        "silent-budget", maxTrialCount=4, maxFailedTrialCount=2, parallelTrialCount=1
    )
    command(data).append("--silent")
    record = sqlite_repo.create_experiment(load_spec(data))
    final = run(sqlite_repo, record, tmp_path)
    assert final.phase is ExperimentPhase.FAILED
    assert final.reason == "ExperimentFailed"
    assert "(2 MetricsUnavailable)" in (final.message or "")


def test_goal_reached_kills_the_rest(sqlite_repo: Repository, tmp_path: Path) -> None:
    data = experiment_dict(maxTrialCount=20, parallelTrialCount=2)
    data["spec"]["objective"]["goal"] = 10.0  # every loss is below 10
    # Odd trials run long; the goal is reached by the first quick trial.
    data["spec"]["parameters"][1]["feasibleSpace"] = {"min": "1", "max": "1"}
    data["spec"]["parameters"][1]["parameterType"] = "discrete"
    data["spec"]["parameters"][1]["feasibleSpace"] = {"list": ["1", "40"]}
    command(data).append("--sleep=0.1")
    record = sqlite_repo.create_experiment(load_spec(data))
    final = run(sqlite_repo, record, tmp_path)
    assert final.phase is ExperimentPhase.SUCCEEDED
    assert final.reason == "ExperimentGoalReached"
    trials = sqlite_repo.trials(record.id)
    assert len(trials) < 20
    assert not any(t.state in (TrialState.RUNNING, TrialState.CREATED) for t in trials)


def test_grid_is_exhausted_once(sqlite_repo: Repository, tmp_path: Path) -> None:
    data = experiment_dict(
        maxTrialCount=50,
        algorithm={"algorithmName": "grid"},
        parameters=[
            {
                "name": "x",
                "parameterType": "double",
                "feasibleSpace": {"min": "0", "max": "1", "step": "0.5"},
            },
            {"name": "n", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "2"}},
        ],
    )
    record = sqlite_repo.create_experiment(load_spec(data))
    final = run(sqlite_repo, record, tmp_path)
    assert final.reason == "ExperimentSuggestionEndReached"
    points = [(t.parameters["x"], t.parameters["n"]) for t in sqlite_repo.trials(record.id)]
    assert sorted(points) == [(x, n) for x in (0.0, 0.5, 1.0) for n in (1, 2)]


def test_stop_kills_running_trials(sqlite_repo: Repository, tmp_path: Path) -> None:
    data = experiment_dict(maxTrialCount=4, parallelTrialCount=2)
    command(data).extend(["--sleep=60"])
    record = sqlite_repo.create_experiment(load_spec(data))
    controller = ExperimentController(sqlite_repo, record, runner(tmp_path))

    async def scenario() -> ExperimentRecord:
        task = asyncio.create_task(controller.run())
        # Wait (bounded) until both trials report their first step, then stop.
        for _ in range(200):
            trials = sqlite_repo.trials(record.id)
            if len(trials) == 2 and all(t.steps >= 1 for t in trials):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("trials never started")
        controller.request_stop("test stop")
        return await asyncio.wait_for(task, 10)

    final = asyncio.run(scenario())
    assert final.phase is ExperimentPhase.STOPPED
    trials = sqlite_repo.trials(record.id)
    assert [t.state for t in trials] == [TrialState.KILLED, TrialState.KILLED]
    for t in trials:
        assert t.runner_ref is not None
        pid = int(t.runner_ref.removeprefix("pid:"))
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )


def test_restart_starts_stored_trials_and_never_duplicates(
    sqlite_repo: Repository, tmp_path: Path
) -> None:
    record = sqlite_repo.create_experiment(load_spec(experiment_dict(maxTrialCount=4)))
    # A controller crashed after storing two trials: one started (its process is gone),
    # one never started.
    stored = sqlite_repo.create_trials(record, [({"x": 0.1, "n": 1}, {}), ({"x": 0.2, "n": 1}, {})])
    sqlite_repo.mark_running(record.id, stored[0].name, "pid:999999999")
    final = run(sqlite_repo, record, tmp_path)
    assert final.phase is ExperimentPhase.SUCCEEDED
    trials = sqlite_repo.trials(record.id)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert trials[0].state is TrialState.FAILED and trials[0].reason == "TrialLost"
    assert trials[1].state is TrialState.SUCCEEDED and trials[1].parameters == {"x": 0.2, "n": 1}
    assert trials[1].objective == pytest.approx((0.2 - 0.5) ** 2)


def test_arguments_stay_literal_and_env_is_layered(sqlite_repo: Repository, tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import json, os, sys\n"
        "out = os.path.join(os.environ['TUNER_TRIAL_DIR'], 'probe.json')\n"
        "keys = ('TUNER_TRIAL', 'TUNER_EXPERIMENT', 'FROM_SPEC', 'FROM_PARENT')\n"
        "json.dump({'argv': sys.argv[1:], 'env': {k: os.environ.get(k) for k in keys}},"
        " open(out, 'w'))\n"
        "print('loss=1.0')\n"
    )
    data = experiment_dict(
        maxTrialCount=1,
        parallelTrialCount=1,
        maxFailedTrialCount=0,
        algorithm={"algorithmName": "grid"},
        parameters=[
            {
                "name": "c",
                "parameterType": "categorical",
                "feasibleSpace": {"list": ["a; rm -rf x"]},
            }
        ],
    )
    tt = data["spec"]["trialTemplate"]
    tt["trialParameters"] = [{"name": "c", "reference": "c"}]
    container = tt["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["python3", str(probe), "${trialParameters.c}", "$(HOME)"]
    container["env"] = [{"name": "FROM_SPEC", "value": "spec-value"}]
    os.environ["FROM_PARENT"] = "parent-value"
    try:
        record = sqlite_repo.create_experiment(load_spec(data))
        final = run(sqlite_repo, record, tmp_path)
    finally:
        del os.environ["FROM_PARENT"]
    assert final.phase is ExperimentPhase.SUCCEEDED
    result = json.loads((tmp_path / "work/default/exp/exp-0000/probe.json").read_text())
    assert result["argv"] == ["a; rm -rf x", "$(HOME)"]
    assert result["env"] == {
        "TUNER_TRIAL": "exp-0000",
        "TUNER_EXPERIMENT": "exp",
        "FROM_SPEC": "spec-value",
        "FROM_PARENT": "parent-value",
    }


@pytest.mark.parametrize("fmt", ["TEXT", "JSON"])
def test_file_collector_gives_each_trial_its_own_file(
    sqlite_repo: Repository, tmp_path: Path, fmt: str
) -> None:
    data = experiment_dict(maxTrialCount=4, parallelTrialCount=2)
    data["spec"]["metricsCollectorSpec"] = {
        "collector": {"kind": "File"},
        "source": {
            "fileSystemPath": {"path": "/var/log/katib/metrics.log", "kind": "File", "format": fmt}
        },
    }
    command(data).extend(["--steps=3", "--file=/var/log/katib/metrics.log"])
    if fmt == "JSON":
        command(data).append("--json")
    record = sqlite_repo.create_experiment(load_spec(data))
    final = run(sqlite_repo, record, tmp_path)
    assert final.phase is ExperimentPhase.SUCCEEDED
    for t in sqlite_repo.trials(record.id):
        assert t.state is TrialState.SUCCEEDED
        assert t.steps == 3
        assert t.objective == pytest.approx((t.parameters["x"] - 0.5) ** 2)
    assert not Path("/var/log/katib/metrics.log").exists()


def test_events_report_trials_and_best(sqlite_repo: Repository, tmp_path: Path) -> None:
    record = sqlite_repo.create_experiment(load_spec(experiment_dict(maxTrialCount=3)))
    events: list[Event] = []
    final = run(sqlite_repo, record, tmp_path, listeners=[events.append])
    assert final.phase is ExperimentPhase.SUCCEEDED
    kinds = [(e.kind, e.state) for e in events]
    assert kinds[0] == ("experiment", "Running") and kinds[-1] == ("experiment", "Succeeded")
    assert kinds.count(("trial", "Running")) == 3 and kinds.count(("trial", "Succeeded")) == 3
    best = [e.value for e in events if e.kind == "best"]
    assert best and best == sorted(best, reverse=True)  # minimize: each new best is lower
