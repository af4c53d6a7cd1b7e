"""How the Optuna-backed suggesters feed their study: incrementally, by state, bound to asks."""

from __future__ import annotations

import logging
import math
import time

import optuna
import pytest
from optuna.trial import TrialState as OptunaState

from tests.algorithms._support import (
    CONTINUOUS,
    make_trial,
    param,
    point,
    quadratic,
    run,
    suggester,
)
from tuner.algorithms.optuna_samplers import OptunaSuggester
from tuner.trials import Trial, TrialState


def optuna_suggester(algorithm: str, settings: dict[str, str] | None = None) -> OptunaSuggester:
    s = suggester(algorithm, CONTINUOUS, settings)
    assert isinstance(s, OptunaSuggester)
    return s


def study_trials(s: OptunaSuggester) -> list[optuna.trial.FrozenTrial]:
    return s._study.get_trials(deepcopy=False)


def test_each_history_trial_enters_the_study_once() -> None:
    s = optuna_suggester("random", {"random_state": "1"})
    created = 0
    original = s._storage.create_new_trial

    def counting(*args: object, **kwargs: object) -> int:
        nonlocal created
        created += 1
        return original(*args, **kwargs)  # type: ignore[arg-type]

    s._storage.create_new_trial = counting  # type: ignore[method-assign]
    history = run(s, rounds=50, batch=2, objective=quadratic)
    s.suggest(history, 1)

    # One Optuna trial per suggestion; the trials made from them are bound, not added again.
    assert created == 101
    trials = study_trials(s)
    assert len(trials) == 101
    assert all(t.state is OptunaState.COMPLETE for t in trials[:100])
    assert [t.value for t in trials[:100]] == [t.objective for t in history]
    assert trials[100].state is OptunaState.RUNNING


def test_states_are_mapped_and_running_trials_are_updated() -> None:
    s = optuna_suggester("tpe", {"random_state": "1"})
    states = [
        (TrialState.SUCCEEDED, 1.5),
        (TrialState.EARLY_STOPPED, 2.5),
        (TrialState.FAILED, None),
        (TrialState.KILLED, None),
        (TrialState.METRICS_UNAVAILABLE, None),
        (TrialState.SUCCEEDED, None),
        (TrialState.SUCCEEDED, math.nan),
        (TrialState.RUNNING, None),
        (TrialState.CREATED, None),
    ]
    history = [
        make_trial(i, {"x": i / 10, "y": -i / 10}, state, objective)
        for i, (state, objective) in enumerate(states)
    ]
    s.suggest(history, 1)
    fed = {t.params["x"]: t for t in study_trials(s)}
    assert [fed[i / 10].state for i in range(len(states))] == [
        OptunaState.COMPLETE,
        OptunaState.COMPLETE,
        *[OptunaState.FAIL] * 5,
        OptunaState.RUNNING,
        OptunaState.RUNNING,
    ]
    assert fed[0.0].value == 1.5 and fed[0.1].value == 2.5

    history[7].state, history[7].objective = TrialState.SUCCEEDED, 0.25
    history[8].state = TrialState.RUNNING
    s.suggest(history, 1)
    fed = {t.params["x"]: t for t in study_trials(s)}
    assert fed[0.7].state is OptunaState.COMPLETE and fed[0.7].value == 0.25
    assert fed[0.8].state is OptunaState.RUNNING


def test_suggestions_never_made_into_trials_are_failed() -> None:
    s = optuna_suggester("random", {"random_state": "1"})
    history = run(s, rounds=2, batch=2, objective=quadratic)
    dropped = s.suggest(history, 3)
    again = s.suggest(history, 1)  # the three were never created

    trials = study_trials(s)
    assert [t.state for t in trials[4:]] == [OptunaState.FAIL] * 3 + [OptunaState.RUNNING]
    # Same history, same answer: the dropped asks left no trace on the sampling.
    assert again[0].parameters == dropped[0].parameters


def test_pending_trials_are_seen_by_the_sampler_as_running() -> None:
    s = optuna_suggester("tpe", {"random_state": "1"})
    history = run(s, rounds=3, batch=2, objective=quadratic)
    for suggestion in s.suggest(history, 2):
        history.append(make_trial(len(history), suggestion.parameters, TrialState.RUNNING))
    s.suggest(history, 1)
    running = [t for t in study_trials(s) if t.state is OptunaState.RUNNING]
    # The two running trials (bound to their asks) and the new suggestion.
    assert len(running) == 3


def test_cmaes_generations_advance_across_calls() -> None:
    pytest.importorskip("cmaes")
    s = optuna_suggester("cmaes", {"random_state": "1"})
    run(s, rounds=8, batch=3, objective=quadratic)
    generations = {
        value
        for t in study_trials(s)
        for key, value in t.system_attrs.items()
        if key.endswith("generation")
    }
    # CMA-ES keeps its state on the asked trials: binding them to the history lets it move on.
    assert max(generations) >= 2


def test_trials_outside_the_space_are_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    s = optuna_suggester("tpe", {"random_state": "1"})
    history = [
        make_trial(0, {"x": 7.0, "y": 0.0}, objective=1.0),  # out of bounds
        make_trial(1, {"x": 0.5}, objective=1.0),  # missing parameter
        make_trial(2, {"x": "abc", "y": 0.0}, objective=1.0),  # not a number
        make_trial(3, {"x": 0.5, "y": 0.5, "gone": 3}, objective=2.0),  # a removed parameter
    ]
    with caplog.at_level(logging.WARNING, logger="tuner.algorithms.optuna_suggester"):
        assert len(s.suggest(history, 2)) == 2
        s.suggest(history, 1)
    ignored = [r for r in caplog.records if "not in the current search space" in r.message]
    assert len(ignored) == 3  # logged once each, not on every call
    complete = [t for t in study_trials(s) if t.state is OptunaState.COMPLETE]
    assert [t.params for t in complete] == [{"x": 0.5, "y": 0.5}]


def test_values_off_by_storage_noise_are_snapped_into_the_space() -> None:
    parameters = [
        param("x", "double", min="0", max="1", step="0.1"),
        param("y", "double", min="-5", max="5"),
    ]
    s = suggester("tpe", parameters, {"random_state": "1"})
    assert isinstance(s, OptunaSuggester)
    history = [make_trial(0, {"x": 0.30000000000000004, "y": 5.000000000001}, objective=1.0)]
    s.suggest(history, 1)
    fed = study_trials(s)[0]
    assert fed.state is OptunaState.COMPLETE
    assert fed.params["x"] == pytest.approx(0.3) and fed.params["y"] == 5.0


def test_a_shrunk_history_rebuilds_the_study() -> None:
    s = optuna_suggester("random", {"random_state": "1"})
    history = run(s, rounds=3, batch=2, objective=quadratic)
    s.suggest(history[:2], 1)
    assert len(study_trials(s)) == 3


@pytest.mark.parametrize("seeded", [True, False])
def test_sobol_points_are_indexed_by_the_history_length(seeded: bool) -> None:
    settings = {"random_state": "3"} if seeded else {}
    long_lived = optuna_suggester("sobol", settings)
    history: list[Trial] = []
    rebuilt = []
    for _ in range(6):
        rebuilt += optuna_suggester("sobol", settings).suggest(history, 2)
        for suggestion in long_lived.suggest(history, 2):
            history.append(make_trial(len(history), suggestion.parameters, objective=1.0))
    assert [s.parameters for s in rebuilt] == [t.parameters for t in history]
    assert len({point(t.parameters) for t in history}) == 12
    if not seeded:  # the plain sequence starts at the lower corner, then the centre
        assert history[0].parameters == {"x": -5.0, "y": -5.0}
        assert history[1].parameters == {"x": 0.0, "y": 0.0}


def test_sobol_fills_the_space_evenly() -> None:
    s = optuna_suggester("sobol", {"random_state": "9"})
    history = run(s, rounds=16, batch=4, objective=quadratic)
    # 64 scrambled Sobol points: every one of the 4 x 4 cells of the square holds exactly 4.
    cells: dict[tuple[int, int], int] = {}
    for t in history:
        cell = (
            int((float(t.parameters["x"]) + 5) // 2.5),
            int((float(t.parameters["y"]) + 5) // 2.5),
        )
        cells[cell] = cells.get(cell, 0) + 1
    assert sorted(cells.values()) == [4] * 16


def test_restart_strategy_without_effect_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("cmaes")
    with caplog.at_level(logging.WARNING, logger="tuner.algorithms.optuna_samplers"):
        s = optuna_suggester("cmaes", {"restart_strategy": "ipop"})
    assert "restart_strategy=ipop has no effect" in caplog.text
    assert len(run(s, rounds=2, batch=2, objective=quadratic)) == 4


def test_direction_follows_the_objective() -> None:
    s = suggester("random", CONTINUOUS, objective="maximize")
    assert isinstance(s, OptunaSuggester)
    assert s._study.direction is optuna.study.StudyDirection.MAXIMIZE


def test_sequential_calls_stay_cheap() -> None:
    s = optuna_suggester("random", {"random_state": "1"})
    start = time.perf_counter()
    history = run(s, rounds=1000, batch=1, objective=quadratic)
    elapsed = time.perf_counter() - start
    assert len(history) == 1000
    # ~0.5 s here; a per-call rebuild of the study would be quadratic and take far longer.
    assert elapsed < 10.0
