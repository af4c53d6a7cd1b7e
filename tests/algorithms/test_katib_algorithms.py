"""Katib's algorithm names, setting names and defaults: bayesianoptimization on scikit-optimize
(no torch), the defaults Katib's services apply, and NAS refused by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.algorithms._support import (
    CONTINUOUS,
    MIXED,
    loss,
    make_spec,
    param,
    quadratic,
    run,
    suggester,
)
from tests.helpers import DATA, ROOT, cli_env
from tuner.algorithms.sampler_settings import SCHEMAS
from tuner.errors import SpecError
from tuner.spec import load_spec
from tuner.storage import Repository, make_engine
from tuner.trials import TrialState


def test_the_bayesian_optimization_example_runs_without_torch(tmp_path: Path) -> None:
    # A torch that cannot be imported stands first on the path: the default install's situation.
    blocker = tmp_path / "no-torch" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('torch is blocked by this test')\n")
    env = {**cli_env(), "PYTHONPATH": f"{blocker.parent}:{ROOT}"}
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True)
    assert probe.returncode != 0 and b"blocked by this test" in probe.stderr

    db = f"sqlite:///{tmp_path / 'bo.db'}"
    spec = str(DATA / "katib-bayesian.yaml")
    result = subprocess.run(  # tuner run validates the spec first
        [
            sys.executable,
            "-m",
            "tuner.cli",
            "run",
            spec,
            "--db",
            db,
            "--workdir",
            str(tmp_path / "work"),
            "--quiet",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    assert "Succeeded (ExperimentMaxTrialsReached)" in result.stdout
    repo = Repository(make_engine(db))
    try:
        history = repo.history(repo.get_experiment("kubeflow", "bayesian-optimization").id)
    finally:
        repo.engine.dispose()
    assert len(history) == 6 and all(t.state is TrialState.SUCCEEDED for t in history)
    assert len({tuple(sorted(t.parameters.items())) for t in history}) == 6


def test_katib_defaults_fill_the_absent_settings() -> None:
    values, problems = SCHEMAS["bayesianoptimization"].parse({})
    assert problems == []
    assert values == {
        "base_estimator": "GP",
        "n_initial_points": 10,
        "acq_func": "gp_hedge",
        "acq_optimizer": "auto",
    }
    assert SCHEMAS["tpe"].parse({})[0] == {"n_startup_trials": 10, "n_ei_candidates": 24}
    assert SCHEMAS["cmaes"].parse({})[0] == {"restart_strategy": "none"}


def test_a_tree_surrogate_suggests_inside_the_space() -> None:
    # ET stands for RF too (the same scikit-optimize code path; RF is several times slower).
    settings = {"random_state": "1", "base_estimator": "ET", "acq_func": "EI"}
    history = run(suggester("bayesianoptimization", MIXED, settings), 3, 2, loss)
    spec = make_spec("bayesianoptimization", MIXED)
    assert len(history) == 6
    for trial in history:
        assert all(p.contains(trial.parameters[p.name]) for p in spec.parameters)


def test_bayesianoptimization_maximizes_and_spreads_parallel_asks() -> None:
    settings = {"random_state": "4", "n_initial_points": "3"}
    s = suggester("bayesianoptimization", CONTINUOUS, settings, objective="maximize")
    history = run(s, rounds=4, batch=2, objective=lambda p: -quadratic(p))
    values = [t.objective for t in history if t.objective is not None]
    assert len(values) == 8
    # Rounds of two asks: 4 random trials before 3 have completed, then the model's, which beat
    # the random start; two asked together differ (the pending one is told as a lie).
    assert max(values[4:]) > max(values[:4])
    pairs = zip(history[4::2], history[5::2], strict=True)
    assert all(a.parameters != b.parameters for a, b in pairs)


def nas_spec(algorithm: str) -> dict[str, object]:
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": algorithm},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "Validation-Accuracy"},
            "algorithm": {"algorithmName": algorithm},
            "nasConfig": {"graphConfig": {"numLayers": 8}, "operations": []},
            "parameters": [param("lr", "double", min="0.01", max="0.1")],
        },
    }


@pytest.mark.parametrize("algorithm", ["enas", "darts"])
def test_nas_is_refused_with_a_clear_message(algorithm: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(nas_spec(algorithm))
    messages = {e.path: e.message for e in info.value.errors}
    assert messages["spec.algorithm.algorithmName"].startswith("NAS is not supported by tuner: ")
    assert algorithm in messages["spec.algorithm.algorithmName"]
    assert messages["spec.nasConfig"].startswith("NAS is not supported by tuner: ")
