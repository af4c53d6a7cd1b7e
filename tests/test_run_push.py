"""`tuner run` of a Push spec: trials call `tuner.report()` against the loopback endpoint the
run serves, as they would against `tuner serve` (same route, same per-trial tokens), and the
early-stopping answer comes back in the reply."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import DATA, experiment_dict
from tests.test_cli import tuner
from tuner.storage import Repository, make_engine
from tuner.templates import job_trial_template
from tuner.trials import TrialState

X = {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-2", "max": "2"}}


def push_run_spec(tmp_path: Path, name: str, steps: int, **overrides: Any) -> Path:
    data = experiment_dict(name, **{"parameters": [X], **overrides})
    spec = data["spec"]
    spec["metricsCollectorSpec"] = {"collector": {"kind": "Push"}}
    spec["trialTemplate"] = job_trial_template(
        [
            sys.executable,
            str(DATA / "push_trial.py"),
            "--x=${trialParameters.x}",
            f"--steps={steps}",
        ],
        ["x"],
    )
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_push_trials_report_to_tuner_run(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'run.db'}"
    spec = push_run_spec(tmp_path, "pushed", steps=3, maxTrialCount=4, maxFailedTrialCount=0)
    result = tuner("run", str(spec), "--db", db, "--quiet", "--workdir", str(tmp_path / "work"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Succeeded (ExperimentMaxTrialsReached)" in result.stdout

    repo = Repository(make_engine(db))
    record = repo.get_experiment("default", "pushed")
    trials = repo.trials(record.id)
    assert [t.state for t in trials] == [TrialState.SUCCEEDED] * 4, [
        (t.name, t.state, t.message) for t in trials
    ]
    for trial in trials:
        assert trial.steps == 3
        x = float(trial.parameters["x"])
        assert trial.objective is not None
        assert abs(trial.objective - (x - 0.5) ** 2) < 1e-9
        steps = [o.step for o in repo.observations(record.id, trial.name, "loss")]
        assert steps == [0, 1, 2]
    log = (tmp_path / "work" / "default" / "pushed" / trials[0].name).rglob("*")
    assert any("pushed step 2" in p.read_text() for p in log if p.is_file())


def test_early_stopping_answers_through_the_push_reply(tmp_path: Path) -> None:
    steps = 10
    db = f"sqlite:///{tmp_path / 'stop.db'}"
    spec = push_run_spec(
        tmp_path,
        "stopping",
        steps=steps,
        maxTrialCount=8,
        parallelTrialCount=2,
        maxFailedTrialCount=0,
        parameters=[
            {
                "name": "x",
                "parameterType": "discrete",
                "feasibleSpace": {"list": ["0.5", "0.6", "0.4", "0.55", "4", "-4", "5", "-5"]},
            }
        ],
        algorithm={"algorithmName": "grid"},
        earlyStopping={
            "algorithmName": "medianstop",
            "algorithmSettings": [
                {"name": "min_trials_required", "value": "2"},
                {"name": "start_step", "value": "1"},
            ],
        },
    )
    result = tuner("run", str(spec), "--db", db, "--quiet", "--workdir", str(tmp_path / "work"))
    assert result.returncode == 0, result.stdout + result.stderr

    repo = Repository(make_engine(db))
    record = repo.get_experiment("default", "stopping")
    trials = repo.trials(record.id)
    states = {t.state for t in trials}
    assert states <= {TrialState.SUCCEEDED, TrialState.EARLY_STOPPED}, [
        (t.name, t.state, t.message) for t in trials
    ]
    stopped = [t for t in trials if t.state is TrialState.EARLY_STOPPED]
    assert stopped, [(t.name, t.state, t.steps) for t in trials]
    assert all(t.steps < steps and "median" in (t.message or "") for t in stopped)
    best = repo.best_trial(record)
    assert best is not None and best.parameters["x"] == 0.5


def test_the_run_endpoint_takes_only_the_trials_own_token(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'probe.db'}"
    data = experiment_dict(
        "probed", parameters=[X], maxTrialCount=1, parallelTrialCount=1, maxFailedTrialCount=0
    )
    data["spec"]["metricsCollectorSpec"] = {"collector": {"kind": "Push"}}
    data["spec"]["trialTemplate"] = job_trial_template(
        [sys.executable, str(DATA / "push_probe.py"), "--x=${trialParameters.x}"], ["x"]
    )
    spec = tmp_path / "probed.yaml"
    spec.write_text(yaml.safe_dump(data))
    result = tuner("run", str(spec), "--db", db, "--quiet", "--workdir", str(tmp_path / "work"))
    assert result.returncode == 0, result.stdout + result.stderr
    log = next((tmp_path / "work" / "default" / "probed").rglob("trial.log")).read_text()
    probes = dict(
        line.removeprefix("probe ").split("=", 1)
        for line in log.splitlines()
        if line.startswith("probe ")
    )
    assert probes == {
        "no-token": "401",
        "wrong-token": "403",
        "other-trial": "403",
        "bad-body": "422",
        "loopback": "True",
    }, log
    repo = Repository(make_engine(db))
    record = repo.get_experiment("default", "probed")
    (trial,) = repo.trials(record.id)
    assert trial.state is TrialState.SUCCEEDED and trial.objective == 1.0


def test_a_later_run_binds_the_port_its_re_adopted_trials_report_to(tmp_path: Path) -> None:
    """Trials of a run that died keep the endpoint URL they were given: the next run binds
    the same port when it is free, and another one when it is not."""
    from tuner.cli.loopback import PORT_FILE, bind_loopback

    first = bind_loopback(tmp_path / PORT_FILE)
    port = first.getsockname()[1]
    first.close()
    again = bind_loopback(tmp_path / PORT_FILE)
    assert again.getsockname()[1] == port
    again.listen()  # busy now: a second run beside it gets a port of its own
    beside = bind_loopback(tmp_path / PORT_FILE)
    assert beside.getsockname()[1] != port
    beside.close()
    again.close()
