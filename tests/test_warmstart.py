"""Warm starts: enqueued points (spec.initialPoints) and spec.warmStartFrom, with real trial
processes (the local runner) and real Optuna samplers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import ask_tell_dict, experiment_dict, run, run_tuner
from tuner import warmstart
from tuner.algorithms.optuna_suggester import OptunaSuggester
from tuner.errors import SpecError
from tuner.spec import Experiment, load_spec
from tuner.storage import Repository, make_engine
from tuner.trials import ExperimentPhase, Trial, TrialState

POINTS = [{"x": 0.5, "n": 2}, {"x": -1.25, "n": 1}]


def _errors(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as e:
        load_spec(data)
    return {error.path: error.message for error in e.value.errors}


def test_points_outside_the_space_are_refused_with_field_paths() -> None:
    data = experiment_dict(
        initialPoints=[{"x": 0.5, "n": 2}, {"x": 7, "n": 2.5}, {"x": 0.1, "lr": 1}]
    )
    errors = _errors(data)
    assert "not a double in [-2, 2]" in errors["spec.initialPoints[1].x"]
    assert "2.5 is not a int in [1, 3]" in errors["spec.initialPoints[1].n"]
    assert "'lr' is not a parameter" in errors["spec.initialPoints[2].lr"]
    assert "missing" in errors["spec.initialPoints[2].n"]
    assert not any(path.startswith("spec.initialPoints[0]") for path in errors)


def test_scheduled_algorithms_refuse_points_and_warm_starts() -> None:
    data = experiment_dict(initialPoints=POINTS, warmStartFrom="other")
    data["spec"]["algorithm"] = {"algorithmName": "pbt"}
    errors = _errors(data)
    assert "pbt does not take enqueued points" in errors["spec.initialPoints"]
    assert "pbt does not take warm starts" in errors["spec.warmStartFrom"]
    assert (
        "cannot be the experiment itself"
        in _errors(experiment_dict("same", warmStartFrom="same"))["spec.warmStartFrom"]
    )


def test_enqueued_points_run_first_once_each_across_a_restart(
    repo: Repository, tmp_path: Path
) -> None:
    # The first controller has room for one trial: it uses point 0 and stops (budget reached).
    data = experiment_dict(
        "queued", initialPoints=POINTS, maxTrialCount=1, parallelTrialCount=1, maxFailedTrialCount=0
    )
    record = repo.create_experiment(load_spec(data))
    run(repo, record, tmp_path)
    # A new controller (a restart) after raising the budget: point 1, then the algorithm's own.
    data["spec"]["maxTrialCount"] = 4
    repo.update_spec(record.id, load_spec(data))
    repo.set_phase(record.id, ExperimentPhase.RUNNING)
    run(repo, repo.experiment_by_id(record.id), tmp_path)
    trials = repo.trials(record.id)
    assert [t.parameters for t in trials[:2]] == POINTS
    assert [t.attrs.get(warmstart.ENQUEUED_ATTR) for t in trials] == [0, 1, None, None]
    assert all(t.state is TrialState.SUCCEEDED for t in trials)
    # Each enqueued point ran exactly once, and ordinary trials followed.
    assert sum(t.parameters in POINTS for t in trials) == 2
    assert all(t.objective is not None for t in trials)


def _completed(name: str, x: float, n: int, loss: float) -> Trial:
    return Trial(name, 0, {"x": x, "n": n}, TrialState.SUCCEEDED, objective=loss)


def test_pending_points_follow_the_stored_history() -> None:
    spec = load_spec(experiment_dict(initialPoints=POINTS)).spec
    assert [s.attrs for s in warmstart.pending_points(spec, [])] == [
        {"enqueued": 0},
        {"enqueued": 1},
    ]
    used = Trial("t1", 1, dict(POINTS[0]), attrs={"enqueued": 0})
    assert [s.parameters for s in warmstart.pending_points(spec, [used])] == [POINTS[1]]


def _source(repo: Repository, tmp_path: Path, **spec: Any) -> None:
    data = experiment_dict("source", maxTrialCount=4, **spec)
    record = repo.create_experiment(load_spec(data))
    assert run(repo, record, tmp_path).phase.finished


def test_warm_start_feeds_the_finished_trials_without_running_them(
    repo: Repository, tmp_path: Path
) -> None:
    _source(repo, tmp_path)
    source_trials = repo.trials(repo.get_experiment("default", "source").id)
    target = load_spec(experiment_dict("target", warmStartFrom="source", maxTrialCount=2))
    suggester = warmstart.build_suggester(repo, target)
    assert isinstance(suggester, warmstart.WarmSuggester)
    assert {t.name for t in suggester.prior} == {t.name for t in source_trials}
    suggester.suggest([], 1)
    # The Optuna study behind the sampler holds the source's results as finished trials.
    inner = suggester.inner
    assert isinstance(inner, OptunaSuggester)
    completed = [t for t in inner._study.trials if t.state.name == "COMPLETE"]
    assert sorted(t.value for t in completed if t.value is not None) == sorted(
        t.objective for t in source_trials if t.objective is not None
    )
    # Run it: only its own trials count, the source's are not run again.
    record = repo.create_experiment(target)
    final = run(repo, record, tmp_path)
    assert final.phase.finished
    assert len(repo.trials(record.id)) == 2
    assert len(repo.leaderboard(record, limit=None)) == 2


def test_grid_skips_the_points_of_the_warm_start(repo: Repository, tmp_path: Path) -> None:
    grid = {"algorithmName": "grid"}
    params = [
        {"name": "x", "parameterType": "discrete", "feasibleSpace": {"list": ["0", "1", "2"]}},
        {"name": "n", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "2"}},
    ]
    _source(repo, tmp_path, algorithm=grid, parameters=params)
    done = {
        (t.parameters["x"], t.parameters["n"])
        for t in repo.trials(repo.get_experiment("default", "source").id)
    }
    assert len(done) == 4
    target = experiment_dict(
        "target", algorithm=grid, parameters=params, warmStartFrom="source", maxTrialCount=6
    )
    record = repo.create_experiment(load_spec(target))
    final = run(repo, record, tmp_path)
    left = {(t.parameters["x"], t.parameters["n"]) for t in repo.trials(record.id)}
    assert len(left) == 2 and not left & done
    assert final.reason == "ExperimentSuggestionEndReached" or "exhausted" in (final.message or "")


def test_an_incompatible_space_is_refused_naming_the_parameter(
    repo: Repository, tmp_path: Path
) -> None:
    _source(repo, tmp_path)

    def refused(**spec: Any) -> str:
        data = ask_tell_dict("target", **{"warmStartFrom": "source", **spec})
        experiment: Experiment = load_spec(data)
        with pytest.raises(SpecError) as e:
            warmstart.check_warm_start(repo, experiment)
        assert all(error.path == "spec.warmStartFrom" for error in e.value.errors)
        return str(e.value)

    narrow = experiment_dict()["spec"]["parameters"]
    narrow[0]["feasibleSpace"] = {"min": "-0.001", "max": "0.001"}
    assert "parameter 'x': trial source-" in refused(parameters=narrow)
    as_int = experiment_dict()["spec"]["parameters"]
    as_int[0] = {"name": "x", "parameterType": "int", "feasibleSpace": {"min": "-2", "max": "2"}}
    assert "parameter 'x' is double in experiment source and int here" in refused(parameters=as_int)
    renamed = experiment_dict()["spec"]["parameters"]
    renamed[1]["name"] = "m"
    message = refused(parameters=renamed)
    assert "parameter 'n' of experiment source is not here" in message
    assert "parameter 'm' is not in experiment source" in message
    assert "experiment default/missing not found" in refused(warmStartFrom="missing")
    other = ask_tell_dict()["spec"]["objective"] | {"type": "maximize"}
    assert "has objective minimize 'loss', this one maximize 'loss'" in refused(objective=other)


def test_tuner_run_warm_starts_and_enqueues(tmp_path: Path) -> None:
    """`tuner run` as a process: a source experiment, then one that warm-starts from it with an
    enqueued point; a spec whose space is incompatible is refused before anything runs."""
    db = f"sqlite:///{tmp_path / 'tuner.db'}"
    source = tmp_path / "source.yaml"
    source.write_text(yaml.safe_dump(experiment_dict("source", maxTrialCount=3)))
    assert run_tuner("run", str(source), "--db", db, "--quiet", cwd=tmp_path).returncode == 0
    target = tmp_path / "target.yaml"
    data = experiment_dict(
        "target", maxTrialCount=2, warmStartFrom="source", initialPoints=[{"x": 1.5, "n": 3}]
    )
    target.write_text(yaml.safe_dump(data))
    done = run_tuner("run", str(target), "--db", db, "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    repo = Repository(make_engine(db))
    trials = repo.trials(repo.get_experiment("default", "target").id)
    assert len(trials) == 2 and trials[0].parameters == {"x": 1.5, "n": 3}

    data["metadata"]["name"] = "narrow"
    data["spec"]["parameters"][0]["feasibleSpace"] = {"min": "1.4", "max": "1.6"}
    data["spec"]["initialPoints"] = [{"x": 1.5, "n": 3}]
    target.write_text(yaml.safe_dump(data))
    refused = run_tuner("run", str(target), "--db", db, "--quiet", cwd=tmp_path)
    assert refused.returncode == 2
    assert "spec.warmStartFrom: parameter 'x': trial source-" in refused.stderr
    assert "narrow" not in {e.name for e in repo.list_experiments()}
