"""Several objectives and constraints through the real Optuna samplers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
import pytest
from optuna.study import StudyDirection
from optuna.trial import TrialState as OptunaState

from tests.algorithms._support import CONTINUOUS, experiment
from tuner.algorithms.optuna_samplers import OptunaSuggester
from tuner.algorithms.registry import create_suggester
from tuner.spec import load_spec
from tuner.trials import ParamValue, Trial, TrialState

SIZE_MAX = 4.0


def spec(algorithm: str, settings: Mapping[str, str], constraints: bool = True) -> Any:
    data = experiment(algorithm, CONTINUOUS, settings)
    data["spec"].pop("objective", None)
    data["spec"]["objectives"] = [
        {"objectiveMetricName": "f1", "type": "minimize"},
        {"objectiveMetricName": "f2", "type": "maximize"},
    ]
    if constraints:
        data["spec"]["constraints"] = [{"metricName": "size", "max": SIZE_MAX}]
    return load_spec(data).spec


def metrics(p: Mapping[str, ParamValue]) -> dict[str, float]:
    x, y = float(p["x"]), float(p["y"])
    return {"f1": x**2 + y**2, "f2": x + y, "size": abs(x) + abs(y)}


def loop(s: Any, rounds: int, batch: int = 2) -> list[Trial]:
    history: list[Trial] = []
    for _ in range(rounds):
        for suggestion in s.suggest(history, batch):
            n = len(history)
            history.append(
                Trial(
                    f"t{n}",
                    n,
                    suggestion.parameters,
                    state=TrialState.SUCCEEDED,
                    objective=metrics(suggestion.parameters)["f1"],
                    metrics=metrics(suggestion.parameters),
                )
            )
    return history


SETTINGS = {
    "nsga2": {"population_size": "4", "random_state": "3"},
    "nsga3": {"population_size": "4", "random_state": "3"},
    "motpe": {"n_startup_trials": "4", "random_state": "3"},
    "tpe": {"n_startup_trials": "4", "random_state": "3"},
    "random": {"random_state": "3"},
}


@pytest.mark.parametrize("algorithm", sorted(SETTINGS))
def test_each_algorithm_runs_two_objectives_with_constraints(algorithm: str) -> None:
    s = create_suggester(spec(algorithm, SETTINGS[algorithm]))
    assert isinstance(s, OptunaSuggester)
    history = loop(s, rounds=8)
    assert len(history) == 16
    s.suggest(history, 1)  # the study catches up with the last round
    study = s._study
    assert study.directions == [StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE]
    done = study.get_trials(states=(OptunaState.COMPLETE,))
    assert len(done) == 16
    for trial, frozen in zip(history, done, strict=True):
        assert frozen.params == trial.parameters
        m = trial.metrics
        assert frozen.values == pytest.approx([m["f1"], m["f2"]])
        # Where Optuna's samplers read constraints (Trial.set_constraint's keys): <= 0 feasible.
        assert frozen.constraints == pytest.approx({"size:max": m["size"] - SIZE_MAX})


def test_a_rebuilt_suggester_feeds_values_and_constraints_again() -> None:
    first = create_suggester(spec("nsga2", SETTINGS["nsga2"]))
    history = loop(first, rounds=5)
    again = create_suggester(spec("nsga2", SETTINGS["nsga2"]))
    assert isinstance(again, OptunaSuggester)
    again.suggest(history, 1)
    done = again._study.get_trials(states=(OptunaState.COMPLETE,))
    assert len(done) == len(history)
    assert all(len(t.values) == 2 and set(t.constraints) == {"size:max"} for t in done)


def test_trials_missing_an_objective_are_failed_for_the_sampler() -> None:
    s = create_suggester(spec("motpe", SETTINGS["motpe"], constraints=False))
    assert isinstance(s, OptunaSuggester)
    first = s.suggest([], 1)[0]
    history = [Trial("t0", 0, first.parameters, TrialState.SUCCEEDED, 1.0, {"f1": 1.0})]
    s.suggest(history, 1)
    states = [t.state for t in s._study.get_trials()]
    assert states[0] is OptunaState.FAIL


def test_nsga2_with_a_constraint_ends_with_feasible_offspring() -> None:
    """NSGA-II ranks infeasible trials after feasible ones (constrained domination), so once
    the first generations are in, the children it breeds are mostly feasible."""
    s = create_suggester(spec("nsga2", {"population_size": "8", "random_state": "5"}))
    history = loop(s, rounds=20, batch=4)
    late = history[-16:]
    feasible = [t for t in late if t.metrics["size"] <= SIZE_MAX]
    early = history[:8]
    assert len(feasible) / len(late) > sum(t.metrics["size"] <= SIZE_MAX for t in early) / 8
    assert optuna.__version__  # the real package


def test_nsga2_generations_survive_a_rebuilt_study() -> None:
    """Each suggestion records its generation; a suggester rebuilt from the stored history (a
    restart) gives the trials their generations back and breeds the next one, not generation 0."""
    settings = {"population_size": "4", "random_state": "9"}
    first = create_suggester(spec("nsga2", settings))
    history: list[Trial] = []  # the attrs kept, as the controller stores them
    for _ in range(6):
        for suggestion in first.suggest(history, 2):
            n = len(history)
            m = metrics(suggestion.parameters)
            history.append(
                Trial(f"t{n}", n, suggestion.parameters, TrialState.SUCCEEDED, m["f1"], m,
                      attrs=suggestion.attrs)
            )  # fmt: skip
    generations = [t.attrs["nsga.generation"] for t in history]
    assert generations[0] == 0 and max(generations) >= 2

    again = create_suggester(spec("nsga2", settings))
    assert isinstance(again, OptunaSuggester)
    [next_one] = again.suggest(history, 1)
    assert next_one.attrs["nsga.generation"] >= max(generations)
    fed = again._study.get_trials(states=(OptunaState.COMPLETE,))
    key = optuna.samplers.NSGAIISampler._get_generation_key()
    assert [t.system_attrs[key] for t in fed] == generations
