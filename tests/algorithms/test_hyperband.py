"""Hyperband as a suggestion algorithm: validation, the bracket table, promotions, restarts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tests.algorithms._support import experiment, param
from tuner.algorithms.base import Suggester, Suggestion
from tuner.algorithms.hyperband import HyperbandSuggester, Schedule
from tuner.algorithms.registry import create_suggester
from tuner.errors import SpecError
from tuner.spec import ExperimentSpec, load_spec
from tuner.trials import ParamValue, Trial, TrialState

SPACE = [
    param("lr", "double", min="0.001", max="0.1", distribution="logUniform"),
    param("units", "int", min="8", max="64", step="8"),
    param("optimizer", "categorical", list=["sgd", "adam"]),
    param("epochs", "int", min="1", max="9"),
]
SETTINGS = {"resource_name": "epochs", "r_l": "9", "eta": "3", "random_state": "4"}


def spec_dict(
    settings: Mapping[str, str] = SETTINGS,
    parameters: Sequence[Mapping[str, Any]] = SPACE,
    parallel: int = 9,
    objective: str = "maximize",
) -> dict[str, Any]:
    return experiment("hyperband", parameters, settings, objective, parallel)


def make(**kw: Any) -> tuple[ExperimentSpec, Suggester]:
    spec = load_spec(spec_dict(**kw)).spec
    return spec, create_suggester(spec)


def errors(**kw: Any) -> dict[str, list[str]]:
    with pytest.raises(SpecError) as info:
        load_spec(spec_dict(**kw))
    out: dict[str, list[str]] = {}
    for e in info.value.errors:
        out.setdefault(e.path, []).append(e.message)
    return out


# ---------------------------------------------------------------------------------------------
# Validation


SETTING = "spec.algorithm.algorithmSettings"
ALGORITHM = "spec.algorithm.algorithmName"


@pytest.mark.parametrize(
    ("settings", "path", "fragment"),
    [
        ({"r_l": "9"}, SETTING, "resource_name: must be set for hyperband"),
        ({"resource_name": "epochs"}, SETTING, "r_l: must be set for hyperband"),
        ({**SETTINGS, "resource_name": "steps"}, f"{SETTING}[0]", "'steps' is not a parameter"),
        ({**SETTINGS, "resource_name": "optimizer"}, f"{SETTING}[0]", "must be int or double"),
        ({**SETTINGS, "r_l": "0"}, f"{SETTING}[1]", "r_l: must be a positive number"),
        ({**SETTINGS, "r_l": "-9"}, f"{SETTING}[1]", "r_l: must be a positive number"),
        ({**SETTINGS, "r_l": "many"}, f"{SETTING}[1]", "r_l: must be a positive number"),
        ({**SETTINGS, "eta": "1"}, f"{SETTING}[2]", "eta: must be a number greater than 1"),
        ({**SETTINGS, "eta": "0.5"}, f"{SETTING}[2]", "eta: must be a number greater than 1"),
        ({**SETTINGS, "random_state": "-1"}, f"{SETTING}[3]", "must be an integer >= 0"),
        ({**SETTINGS, "s_max": "2"}, f"{SETTING}[4]", "unknown setting for hyperband"),
    ],
)
def test_bad_settings_are_reported_at_their_path(
    settings: dict[str, str], path: str, fragment: str
) -> None:
    found = errors(settings=settings)
    assert path in found, found
    assert any(fragment in m for m in found[path]), found[path]


def test_parallel_trial_count_must_hold_the_first_rung_as_in_katib() -> None:
    # r_l=9, eta=3: s_max=2, the first rung has 3**2 = 9 configurations.
    found = errors(parallel=8)
    assert list(found) == [ALGORITHM]
    (message,) = found[ALGORITHM]
    assert "parallelTrialCount must be at least 9" in message
    load_spec(spec_dict(parallel=9))  # enough
    load_spec(spec_dict(settings={**SETTINGS, "eta": "4"}, parallel=4))  # s_max=1: 4


def test_budgets_outside_the_resource_space_are_accepted_as_in_katib() -> None:
    """Katib assigns the schedule's budgets as they are; its own example has r_l=2, max 1."""
    even = [*SPACE[:3], param("epochs", "int", min="2", max="10", step="2")]
    assert load_spec(spec_dict(parameters=even, settings={**SETTINGS, "r_l": "8", "eta": "2"}))
    assert load_spec(spec_dict(settings={**SETTINGS, "r_l": "27"}, parallel=27))  # max is 9


def test_katib_style_spec_is_accepted_with_string_numbers_and_default_eta() -> None:
    spec, s = make(settings={"resource_name": "epochs", "r_l": "9"})
    assert isinstance(s, HyperbandSuggester)
    assert s.schedule == Schedule(9.0, 3.0)
    assert spec.parallel_trial_count == 9


# ---------------------------------------------------------------------------------------------
# The schedule


def test_schedule_matches_the_papers_table() -> None:
    # Li et al. (2017), Table 1: R=81, eta=3.
    table = Schedule(81, 3)
    assert table.s_max == 4
    sizes = {s: [table.rung_size(s, i) for i in range(s + 1)] for s in range(5)}
    assert sizes == {4: [81, 27, 9, 3, 1], 3: [34, 11, 3, 1], 2: [15, 5, 1], 1: [8, 2], 0: [5]}
    assert [table.budget(4, i) for i in range(5)] == [1, 3, 9, 27, 81]
    assert [table.budget(1, i) for i in range(2)] == [27, 81]
    assert Schedule(1000, 10).s_max == 3  # no float trouble with log(1000)/log(10)


def accuracy(p: Mapping[str, ParamValue]) -> float:
    """Deterministic, better with more epochs, and ranked by lr within a budget."""
    return float(p["epochs"]) / 10 - abs(float(p["lr"]) - 0.01)


def finish(trial: Trial, value: float | None, state: TrialState = TrialState.SUCCEEDED) -> None:
    trial.state, trial.objective = state, value


def add(history: list[Trial], suggestions: Sequence[Suggestion]) -> list[Trial]:
    new = [
        Trial(
            name=f"t{len(history) + j}",
            number=len(history) + j,
            parameters=dict(s.parameters),
            state=TrialState.RUNNING,
            attrs=dict(s.attrs),
        )
        for j, s in enumerate(suggestions)
    ]
    history.extend(new)
    return new


def slot(t: Trial) -> tuple[int, int, int]:
    hb = t.attrs["hyperband"]
    assert isinstance(hb, dict)
    return hb["bracket"], hb["rung"], hb["config"]


def drive(s: Suggester, batch: int, history: list[Trial] | None = None) -> list[Trial]:
    """Run everything to the end: ask ``batch``, finish the oldest running trial, repeat."""
    history = [] if history is None else history
    for _ in range(1000):
        running = [t for t in history if t.state is TrialState.RUNNING]
        new = s.suggest(history, batch - len(running)) if len(running) < batch else []
        if not new and not running:
            return history
        add(history, new)
        running = [t for t in history if t.state is TrialState.RUNNING]
        if running:
            finish(running[0], accuracy(running[0].parameters))
    raise AssertionError("did not end")


@pytest.mark.parametrize("batch", [1, 2, 9])
def test_a_simulated_run_follows_the_bracket_table(batch: int) -> None:
    spec, s = make()
    history = drive(s, batch)

    sizes = Counter((slot(t)[0], slot(t)[1]) for t in history)
    assert sizes == {(2, 0): 9, (2, 1): 3, (2, 2): 1, (1, 0): 5, (1, 1): 1, (0, 0): 3}
    budgets = {(slot(t)[0], slot(t)[1]): t.parameters["epochs"] for t in history}
    assert budgets == {(2, 0): 1, (2, 1): 3, (2, 2): 9, (1, 0): 3, (1, 1): 9, (0, 0): 9}
    for t in history:
        for p in spec.parameters:
            assert p.contains(t.parameters[p.name]), (p.name, t.parameters[p.name])
        assert type(t.parameters["epochs"]) is int
    # Promotions keep the configuration and pick the best of the previous rung.
    for t in history:
        b, i, k = slot(t)
        if i == 0:
            continue
        previous = [u for u in history if slot(u)[:2] == (b, i - 1)]
        (parent,) = [u for u in previous if slot(u)[2] == k]
        assert {n: v for n, v in t.parameters.items() if n != "epochs"} == {
            n: v for n, v in parent.parameters.items() if n != "epochs"
        }
        best = sorted(previous, key=lambda u: -(u.objective or 0.0))
        promoted = [u for u in history if slot(u)[:2] == (b, i)]
        assert {slot(u)[2] for u in promoted} == {slot(u)[2] for u in best[: len(promoted)]}
    # Then nothing more, for good.
    assert s.suggest(history, 5) == []
    assert create_suggester(spec).suggest(history, 5) == []


def test_waits_for_a_rung_and_respects_count() -> None:
    _, s = make()
    history: list[Trial] = []
    first = add(history, s.suggest(history, 4))
    assert len(first) == 4
    assert s.suggest(history, 0) == []
    rest = add(history, s.suggest(history, 10))
    assert len(rest) == 5  # the rest of the first rung of 9, then a wait
    assert s.suggest(history, 10) == []
    for t in history[:-1]:
        finish(t, accuracy(t.parameters))
    assert s.suggest(history, 10) == []  # one trial of the rung still runs
    finish(history[-1], None, TrialState.FAILED)
    promoted = s.suggest(history, 10)
    assert len(promoted) == 3
    assert {sg.parameters["epochs"] for sg in promoted} == {3}
    assert all(sg.attrs["hyperband"]["rung"] == 1 for sg in promoted)


def test_promotion_order_follows_the_direction_and_failures_rank_last() -> None:
    for objective, best in (("maximize", [0.9, 0.8, 0.7]), ("minimize", [0.1, 0.2, 0.3])):
        _, s = make(objective=objective)
        history: list[Trial] = []
        add(history, s.suggest(history, 9))
        values = [0.5, 0.1, 0.9, 0.2, 0.8, 0.3, 0.7, None, None]
        for t, v in zip(history, values, strict=True):
            finish(t, v)
        history[7].state = TrialState.FAILED
        history[8].state = TrialState.METRICS_UNAVAILABLE
        history[8].objective = 0.95 if objective == "maximize" else 0.0  # not usable anyway
        promoted = s.suggest(history, 9)
        configs = [sg.attrs["hyperband"]["config"] for sg in promoted]
        by_config = {slot(t)[2]: t.objective for t in history}
        assert [by_config[k] for k in configs] == best


def test_only_failures_still_promote_so_the_run_goes_on() -> None:
    _, s = make()
    history: list[Trial] = []
    add(history, s.suggest(history, 9))
    for t in history:
        finish(t, None, TrialState.FAILED)
    promoted = s.suggest(history, 9)
    assert [sg.attrs["hyperband"]["config"] for sg in promoted] == [0, 1, 2]


def test_a_rebuilt_suggester_continues_identically() -> None:
    spec, s = make()
    history: list[Trial] = []
    # Part way: first bracket's first rung done and promoted, with two promotions running.
    add(history, s.suggest(history, 9))
    for t in history:
        finish(t, accuracy(t.parameters))
    add(history, s.suggest(history, 2))

    continued = drive(s, 2, [Trial(**vars(t)) for t in history])
    restarted = drive(create_suggester(spec), 2, [Trial(**vars(t)) for t in history])
    assert [(t.parameters, t.attrs) for t in continued] == [
        (t.parameters, t.attrs) for t in restarted
    ]
    assert len(continued) == 22


def test_seeds_change_the_configurations_only() -> None:
    _, a = make()
    _, b = make(settings={**SETTINGS, "random_state": "5"})
    sa, sb = a.suggest([], 9), b.suggest([], 9)
    assert [x.attrs for x in sa] == [x.attrs for x in sb]
    assert [x.parameters for x in sa] != [x.parameters for x in sb]
    assert [x.parameters for x in sa] == [x.parameters for x in make()[1].suggest([], 9)]


def test_a_double_resource_gets_the_exact_budgets() -> None:
    parameters = [*SPACE[:3], param("epochs", "double", min="0.5", max="12")]
    spec, s = make(parameters=parameters, settings={**SETTINGS, "r_l": "12"})
    history = drive(s, 3)
    budgets = sorted({float(t.parameters["epochs"]) for t in history})
    assert budgets == [pytest.approx(12 / 9), 4.0, 12.0]
    assert all(type(t.parameters["epochs"]) is float for t in history)
    assert all(spec.parameter("epochs").contains(t.parameters["epochs"]) for t in history)


def test_trials_without_hyperband_attrs_are_ignored() -> None:
    _, s = make()
    manual = Trial(name="manual", number=0, parameters={"epochs": 9}, state=TrialState.SUCCEEDED)
    assert len(s.suggest([manual], 9)) == 9
