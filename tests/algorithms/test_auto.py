"""``algorithmName: auto``: the choice per case, deterministic, recorded and visible."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    AUTH,
    V1,
    TestClient,
    ask_tell_dict,
    experiment_dict,
    make_settings,
    run_tuner,
)
from tests.pareto_support import two_objective_dict
from tuner.algorithms import auto
from tuner.algorithms.registry import create_suggester
from tuner.api.app import create_app
from tuner.errors import SpecError
from tuner.spec import load_spec
from tuner.storage import Repository, make_engine
from tuner.trials import Trial, TrialState

DOUBLE = {"parameterType": "double", "feasibleSpace": {"min": "-2", "max": "2"}}
INT = {"parameterType": "int", "feasibleSpace": {"min": "1", "max": "9"}}
CATEGORICAL = {"parameterType": "categorical", "feasibleSpace": {"list": ["a", "b"]}}


def spec_dict(
    kinds: list[dict[str, Any]],
    budget: int | None,
    settings: dict[str, str] | None = None,
    *,
    names: tuple[str, ...] = (),
) -> dict[str, Any]:
    """An ask/tell spec over ``kinds`` (named ``names``, else ``p0``...), or with the quadratic
    trial of :func:`experiment_dict` when the names are its ``x`` and ``n``."""
    overrides: dict[str, Any] = {
        "parameters": [
            {"name": names[i] if names else f"p{i}", **kind} for i, kind in enumerate(kinds)
        ],
        "algorithm": {
            "algorithmName": "auto",
            "algorithmSettings": [
                {"name": k, "value": v} for k, v in (settings or {"random_state": "5"}).items()
            ],
        },
    }
    data = (experiment_dict if names else ask_tell_dict)("auto", **overrides)
    if budget is None:
        del data["spec"]["maxTrialCount"]
    else:
        data["spec"]["maxTrialCount"] = budget
    return data


@pytest.mark.parametrize(
    ("kinds", "budget", "chosen"),
    [
        ([DOUBLE, DOUBLE], 20, "multivariate-tpe"),
        ([DOUBLE, DOUBLE], auto.CMAES_BUDGET - 1, "multivariate-tpe"),
        ([DOUBLE, DOUBLE], auto.CMAES_BUDGET, "cmaes"),
        ([DOUBLE, INT, DOUBLE], 500, "cmaes"),
        ([DOUBLE, DOUBLE], None, "tpe"),
        ([DOUBLE, CATEGORICAL], 20, "tpe"),
        ([DOUBLE, CATEGORICAL], 5000, "tpe"),
        ([CATEGORICAL], 10, "tpe"),
    ],
)
def test_the_choice_per_space_and_budget(
    kinds: list[dict[str, Any]], budget: int | None, chosen: str
) -> None:
    study = load_spec(spec_dict(kinds, budget)).spec.study
    choice = auto.choose(study)
    assert choice.algorithm == chosen
    assert choice.reason
    shown = {"algorithmName": "auto", "chosen": chosen, "reason": choice.reason}
    assert auto.status(study) == shown


@pytest.mark.parametrize(
    ("budget", "chosen"),
    [
        (12, "motpe"),
        (auto.NSGA2_BUDGET - 1, "motpe"),
        (auto.NSGA2_BUDGET, "nsga2"),
        (None, "nsga2"),
    ],
)
def test_several_objectives_choose_motpe_then_nsga2(budget: int | None, chosen: str) -> None:
    assert auto.objective_count(load_spec(spec_dict([DOUBLE], 10)).spec.study) == 1
    data = two_objective_dict("pair", "auto", {"random_state": "5"})
    if budget is None:
        del data["spec"]["maxTrialCount"]
    else:
        data["spec"]["maxTrialCount"] = budget
    study = load_spec(data).spec.study
    assert auto.objective_count(study) == 2
    assert auto.choose(study).algorithm == chosen
    assert create_suggester(study).chosen == chosen  # type: ignore[attr-defined]


def test_other_algorithms_show_no_choice() -> None:
    assert auto.status(load_spec(experiment_dict()).spec.study) == {}


def _trials(suggester: Any, rounds: int) -> list[Trial]:
    history: list[Trial] = []
    for n in range(rounds):
        for s in suggester.suggest(history, 1):
            value = sum(float(v) ** 2 for v in s.parameters.values())
            state = TrialState.SUCCEEDED
            history.append(Trial(f"t{n}", n, s.parameters, state, value, {"loss": value}, s.attrs))
    return history


def test_auto_is_the_chosen_algorithm_seeded_alike_and_records_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = spec_dict([DOUBLE, DOUBLE], 200)
    with caplog.at_level(logging.INFO, logger="tuner.algorithms.auto"):
        ours = _trials(create_suggester(load_spec(data).spec), 15)
    assert "algorithm auto chose cmaes" in caplog.text
    assert all(t.attrs["algorithm"] == "cmaes" for t in ours)

    data["spec"]["algorithm"]["algorithmName"] = "cmaes"
    theirs = _trials(create_suggester(load_spec(data).spec), 15)
    assert [t.parameters for t in ours] == [t.parameters for t in theirs]


def test_settings_other_than_random_state_are_refused_with_their_path() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(spec_dict([DOUBLE], 10, {"random_state": "1", "sigma": "0.3"}))
    paths = [e.path for e in caught.value.errors]
    assert paths == ["spec.algorithm.algorithmSettings[1]"], caught.value.errors
    with pytest.raises(SpecError):
        load_spec(spec_dict([DOUBLE], 10, {"random_state": "-1"}))


def test_tuner_run_with_auto_shows_the_choice(tmp_path: Path) -> None:
    spec = tmp_path / "auto.json"
    spec.write_text(json.dumps(spec_dict([DOUBLE, INT], 4, names=("x", "n"))))
    db = f"sqlite:///{tmp_path / 'auto.db'}"
    ran = run_tuner("run", str(spec), "--db", db, "--quiet", "--workdir", str(tmp_path / "w"))
    assert ran.returncode == 0, ran.stderr
    assert "Succeeded (ExperimentMaxTrialsReached)" in ran.stdout

    status = run_tuner("status", "auto", "--db", db, "--json")
    assert json.loads(status.stdout)["algorithm"]["chosen"] == "multivariate-tpe"
    text = run_tuner("status", "auto", "--db", db).stdout
    assert "algorithm: auto chose multivariate-tpe (" in text

    repo = Repository(make_engine(db))
    trials = repo.trials(repo.get_experiment("default", "auto").id)
    assert [t.attrs["algorithm"] for t in trials] == ["multivariate-tpe"] * 4


def test_the_rest_status_shows_the_choice(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path)), headers=AUTH) as client:
        data = spec_dict([DOUBLE, CATEGORICAL], 10)
        assert client.post(f"{V1}/experiments", json=data).status_code == 201
        asked = client.post(f"{V1}/experiments/auto/suggestions", json={"count": 2})
        assert asked.status_code == 200 and len(asked.json()["trials"]) == 2
        status = client.get(f"{V1}/experiments/auto").json()["status"]
    assert status["algorithm"]["algorithmName"] == "auto"
    assert status["algorithm"]["chosen"] == "tpe"
    assert "categorical" in status["algorithm"]["reason"]
