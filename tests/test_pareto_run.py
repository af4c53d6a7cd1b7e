"""Several objectives end to end with `tuner run`: the stored trials, `tuner pareto` and the
status agree with the non-dominated set the test computes itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.helpers import run_tuner
from tests.pareto_support import non_dominated, two_objective_dict


@pytest.mark.parametrize("algorithm", ["nsga2", "motpe"])
def test_tuner_run_then_pareto_is_the_non_dominated_set(tmp_path: Path, algorithm: str) -> None:
    settings = (
        {"population_size": "4", "random_state": "7"}
        if algorithm == "nsga2"
        else {"n_startup_trials": "4", "random_state": "7"}
    )
    spec = tmp_path / "multi.yaml"
    spec.write_text(yaml.safe_dump(two_objective_dict("multi", algorithm, settings, trials=12)))
    db = f"sqlite:///{tmp_path / 'multi.db'}"
    ran = run_tuner("run", str(spec), "--db", db, "--quiet", "--workdir", str(tmp_path / "w"))
    assert ran.returncode == 0, ran.stderr
    assert "Succeeded" in ran.stdout

    trials = json.loads(run_tuner("trials", "multi", "--db", db, "--json").stdout)
    assert len(trials) == 12
    assert all(t["status"] == "Succeeded" for t in trials)
    expected = non_dominated(trials)
    assert expected  # at least one trial is optimal

    front = json.loads(run_tuner("pareto", "multi", "--db", db, "--json").stdout)
    assert {r["trial"] for r in front} == expected
    assert len(front) == len(expected)  # each trial once
    assert set(front[0]) == set(trials[0])  # leaderboard-shaped rows

    status = json.loads(run_tuner("status", "multi", "--db", db, "--json").stdout)
    optimal = status["currentOptimalTrial"]
    assert isinstance(optimal, list)
    assert {o["bestTrialName"] for o in optimal} == expected

    text = run_tuner("status", "multi", "--db", db).stdout
    assert f"Pareto front: {len(expected)} trial(s)" in text
    listed = run_tuner("list", "--db", db).stdout
    assert f"{len(expected)} on the Pareto front" in listed
