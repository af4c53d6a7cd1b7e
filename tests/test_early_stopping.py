"""Tests of tuner.early_stopping: one contract over every rule, then each rule's own semantics."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest

from tests.helpers import experiment_dict
from tuner.early_stopping import (
    AshaRule,
    EarlyStoppingRule,
    HyperbandRule,
    MedianStopRule,
    PatienceRule,
    PercentileRule,
    StopDecision,
    ThresholdRule,
    WilcoxonRule,
    create_rule,
    rule_names,
    validate_early_stopping,
)
from tuner.errors import SpecError
from tuner.spec import ExperimentSpec, load_spec
from tuner.trials import Trial, TrialState

STEPS = range(10)


def make_trial(
    number: int,
    curve: Mapping[int, float],
    state: TrialState = TrialState.SUCCEEDED,
    objective: float | None = None,
    maximize: bool = True,
) -> Trial:
    """A trial whose objective defaults to the best finite value of its curve."""
    if objective is None and state is not TrialState.RUNNING:
        finite = [v for v in curve.values() if math.isfinite(v)]
        if finite:
            objective = max(finite) if maximize else min(finite)
    t = Trial(name=f"t-{number}", number=number, parameters={}, state=state, objective=objective)
    return t.with_curve(curve)


def running(curve: Mapping[int, float], number: int = 100) -> Trial:
    return make_trial(number, curve, state=TrialState.RUNNING)


def spec_for(name: str, settings: Mapping[str, str], maximize: bool = True) -> ExperimentSpec:
    return ExperimentSpec.model_validate(
        {
            "objective": {
                "type": "maximize" if maximize else "minimize",
                "objectiveMetricName": "accuracy",
            },
            "algorithm": {"algorithmName": "random"},
            "earlyStopping": {
                "algorithmName": name,
                "algorithmSettings": [{"name": k, "value": v} for k, v in settings.items()],
            },
        }
    )


def rule_for(name: str, settings: Mapping[str, str], maximize: bool = True) -> EarlyStoppingRule:
    rule = create_rule(spec_for(name, settings, maximize))
    assert rule is not None
    return rule


# ---------------------------------------------------------------------------------------------
# The contract every rule meets (written for maximization; mirrored for minimization)

HYPERBAND_SETTINGS = {"min_resource": "1", "max_resource": "9", "reduction_factor": "3"}
_HB = HyperbandRule(minimize=False, max_resource=9)
HYPERBAND_NUMBER = next(n for n in range(100, 1000) if _HB.bracket(n) == 0)


@dataclass(frozen=True)
class Case:
    name: str
    settings: dict[str, str]
    mirrored: dict[str, str] | None = None  # settings after negating every value
    bad_curve: dict[int, float] | None = None  # own bad case, instead of the shared one
    uses_history: bool = True
    number: int = 100

    def rule(self, maximize: bool = True) -> EarlyStoppingRule:
        settings = self.settings if maximize or self.mirrored is None else self.mirrored
        return rule_for(self.name, settings, maximize)

    def __str__(self) -> str:
        return self.name


CASES = [
    Case("medianstop", {"min_trials_required": "3", "start_step": "2"}),
    Case("asha", {"min_resource": "1", "reduction_factor": "3"}),
    Case("hyperband", HYPERBAND_SETTINGS, number=HYPERBAND_NUMBER),
    Case("percentile", {"percentile": "50", "n_startup_trials": "3"}),
    Case("threshold", {"lower": "0.2"}, mirrored={"upper": "-0.2"}, uses_history=False),
    Case("wilcoxon", {"p_threshold": "0.1", "n_startup_steps": "2"}),
    Case(
        "patience",
        {"patience": "3"},
        bad_curve={0: 0.5, 1: 0.6, 2: 0.6, 3: 0.59, 4: 0.6, 5: 0.55},
        uses_history=False,
    ),
]


def test_every_rule_has_a_contract_case() -> None:
    assert sorted(c.name for c in CASES) == rule_names()


def good_curve() -> dict[int, float]:
    return {s: 0.62 + 0.03 * s for s in STEPS}


def bad_curve(case: Case) -> dict[int, float]:
    return case.bad_curve or {s: 0.1 + 0.001 * s for s in STEPS}


def history(offset: float, n: int = 10) -> list[Trial]:
    """``n`` succeeded trials; ``offset`` 0.5 gives good ones, 0.2 worse ones than good_curve."""
    return [make_trial(i, {s: offset + 0.02 * s + 0.01 * i for s in STEPS}) for i in range(n)]


def mirror(t: Trial) -> Trial:
    """The same trial under the opposite direction: every value negated."""
    objective = None if t.objective is None else -t.objective
    return replace(t, objective=objective, curve=tuple((s, -v) for s, v in t.curve))


def prefixes(curve: Mapping[int, float]) -> list[dict[int, float]]:
    items = sorted(curve.items())
    return [dict(items[: k + 1]) for k in range(len(items))]


def decide(
    case: Case, curve: Mapping[int, float], others: Sequence[Trial], maximize: bool = True
) -> StopDecision:
    trial = running(curve, case.number)
    if not maximize:
        trial, others = mirror(trial), [mirror(t) for t in others]
    return case.rule(maximize).should_stop(trial, others)


DIRECTIONS = pytest.mark.parametrize("maximize", [True, False], ids=["max", "min"])
EACH_RULE = pytest.mark.parametrize("case", CASES, ids=str)


@EACH_RULE
@DIRECTIONS
def test_good_curve_is_never_stopped_when_others_are_worse(case: Case, maximize: bool) -> None:
    worse = history(0.2)
    for curve in prefixes(good_curve()):
        decision = decide(case, curve, worse, maximize)
        assert decision == StopDecision(False), curve


@EACH_RULE
@DIRECTIONS
def test_bad_curve_among_good_ones_is_stopped(case: Case, maximize: bool) -> None:
    decision = decide(case, bad_curve(case), history(0.5), maximize)
    assert decision.stop
    assert decision.reason and any(ch.isdigit() for ch in decision.reason)


@EACH_RULE
def test_directions_mirror_each_other(case: Case) -> None:
    rng = random.Random(7)
    for _ in range(30):
        others = [
            make_trial(
                i,
                {s: rng.uniform(0, 1) for s in STEPS if rng.random() < 0.8},
                state=rng.choice([TrialState.SUCCEEDED, TrialState.FAILED, TrialState.RUNNING]),
            )
            for i in range(rng.randrange(0, 8))
        ]
        curve = {s: rng.uniform(0, 1) for s in range(rng.randrange(1, 12)) if rng.random() < 0.8}
        up = decide(case, curve, others, maximize=True)
        down = decide(case, curve, others, maximize=False)
        assert up.stop == down.stop, (curve, up, down)


@EACH_RULE
@DIRECTIONS
def test_sparse_curves_do_not_crash(case: Case, maximize: bool) -> None:
    sparse_history = [make_trial(i, {0: 0.5, 1: 0.55, 3: 0.6, 8: 0.7}) for i in range(6)]
    sparse_history += [make_trial(6, {}), make_trial(7, {4: 0.4})]
    for curve in ({0: 0.3, 2: 0.35, 5: 0.4}, {0: 0.9, 2: 0.95, 5: 0.99}, {7: 0.1}):
        for prefix in prefixes(curve):
            assert isinstance(decide(case, prefix, sparse_history, maximize), StopDecision)


@EACH_RULE
@DIRECTIONS
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinite_latest_values_stop(case: Case, maximize: bool, bad: float) -> None:
    curve = {0: 0.7, 1: 0.8, 2: bad}
    for others in ([], history(0.2)):
        decision = decide(case, curve, others, maximize)
        assert decision.stop
        assert decision.reason is not None
        assert ("NaN" if math.isnan(bad) else "inf") in decision.reason


@EACH_RULE
def test_earlier_nan_is_ignored(case: Case) -> None:
    curve = {0: math.nan, **{s: v for s, v in good_curve().items() if s > 0}}
    assert not decide(case, curve, history(0.2)).stop


@EACH_RULE
@DIRECTIONS
def test_single_trial_with_empty_history_is_not_stopped(case: Case, maximize: bool) -> None:
    assert not decide(case, {}, [], maximize).stop
    for curve in prefixes(good_curve()):
        assert not decide(case, curve, [], maximize).stop
    if case.uses_history:
        for curve in prefixes(bad_curve(case)):
            assert not decide(case, curve, [], maximize).stop


@EACH_RULE
def test_decisions_are_deterministic_and_order_free(case: Case) -> None:
    others = history(0.5) + history(0.3, n=4)
    others = [replace(t, name=f"u-{i}", number=i) for i, t in enumerate(others)]
    for curve in (bad_curve(case), good_curve(), {0: 0.5, 3: 0.55, 4: 0.52}):
        first = decide(case, curve, others)
        assert decide(case, curve, others) == first
        assert decide(case, curve, list(reversed(others))) == first
        assert case.rule().should_stop(running(curve, case.number), others) == first


@EACH_RULE
def test_the_trial_itself_in_history_is_ignored(case: Case) -> None:
    trial = running(bad_curve(case), case.number)
    others = history(0.5)
    assert case.rule().should_stop(trial, [*others, trial]) == case.rule().should_stop(
        trial, others
    )


# ---------------------------------------------------------------------------------------------
# medianstop


def test_median_uses_succeeded_trials_running_averages_and_true_median() -> None:
    rule = MedianStopRule(minimize=False, min_trials_required=3, start_step=2)
    others = [
        make_trial(1, {0: 0.1, 1: 0.1, 2: 0.1, 3: 0.9}),  # average up to step 2: 0.1
        make_trial(2, {0: 0.5, 1: 0.6, 2: 0.7}),  # 0.6
        make_trial(3, {0: 0.6, 1: 0.7, 2: 0.8}),  # 0.7
        make_trial(4, {0: 0.99, 1: 0.99, 2: 0.99}, state=TrialState.EARLY_STOPPED),
        make_trial(5, {0: 0.99, 1: 0.99, 2: 0.99}, state=TrialState.RUNNING),
        make_trial(6, {0: 0.99, 1: 0.99, 2: 0.99}, state=TrialState.FAILED),
    ]
    # best so far 0.5 < median 0.6 (the mean of the averages, 0.467, would not stop it)
    decision = rule.should_stop(running({0: 0.3, 1: 0.5, 2: 0.4}), others)
    assert decision.stop
    assert decision.reason == (
        "step 2: best 0.5 < median 0.6 of the running averages of 3 succeeded trials up to step 2"
    )
    assert not rule.should_stop(running({0: 0.3, 1: 0.65, 2: 0.4}), others).stop


def test_median_waits_for_start_step_and_min_trials() -> None:
    others = [make_trial(i, {s: 0.9 for s in STEPS}) for i in range(3)]
    bad = running({s: 0.1 for s in range(4)})  # latest step 3
    assert not MedianStopRule(minimize=False, start_step=4).should_stop(bad, others).stop
    assert MedianStopRule(minimize=False, start_step=3).should_stop(bad, others).stop
    rule = MedianStopRule(minimize=False, min_trials_required=4, start_step=1)
    assert not rule.should_stop(bad, others).stop
    # a succeeded trial without a value at or before the step does not count
    late = make_trial(9, {8: 0.9})
    assert not rule.should_stop(bad, [*others, late]).stop
    assert rule.should_stop(bad, [*others, make_trial(9, {3: 0.9})]).stop


def test_median_minimize_reason() -> None:
    others = [make_trial(i, {0: 1.0, 1: 2.0}, maximize=False) for i in range(3)]
    rule = MedianStopRule(minimize=True, min_trials_required=3, start_step=1)
    decision = rule.should_stop(running({0: 3.0, 1: 2.0}), others)
    assert decision.stop
    assert decision.reason is not None
    assert decision.reason.startswith("step 1: best 2 > median 1.5 ")


# ---------------------------------------------------------------------------------------------
# asha


def test_asha_rungs() -> None:
    rule = AshaRule(minimize=True, min_resource=2, reduction_factor=3)
    assert [rule.rung_step(k) for k in range(4)] == [2, 6, 18, 54]
    assert [rule.rung_reached(s) for s in (0, 1, 2, 5, 6, 17, 18)] == [
        None,
        None,
        0,
        0,
        1,
        1,
        2,
    ]
    shifted = AshaRule(minimize=True, min_resource=1, reduction_factor=2, min_early_stopping_rate=2)
    assert [shifted.rung_step(k) for k in range(3)] == [4, 8, 16]
    capped = AshaRule(minimize=True, min_resource=1, reduction_factor=3, max_resource=9)
    assert capped.rung_reached(100) == 1  # step 9 is the end of training, not a rung


def test_asha_keeps_the_top_fraction_at_a_rung() -> None:
    rule = AshaRule(minimize=False, min_resource=1, reduction_factor=2)
    # four trials recorded 0.9, 0.8, 0.7, 0.6 at rung 0 (step 1); with the trial, n = 5, keep 2
    others = [make_trial(i, {0: 0.0, 1: v, 2: 1.0}) for i, v in enumerate([0.9, 0.8, 0.7, 0.6])]
    stopped = rule.should_stop(running({0: 0.5, 1: 0.75}), others)
    assert stopped.stop
    assert stopped.reason == (
        "step 1: value 0.75 at rung 0 (step 1) is not among the best 2 of 5 trials there "
        "(cutoff 0.8)"
    )
    assert not rule.should_stop(running({0: 0.5, 1: 0.8}), others).stop  # ties continue
    # rung 1 (step 2): everyone recorded 1.0 there, and the trial's value is its first report at
    # or past step 2, here at step 3
    assert not rule.should_stop(running({0: 0.5, 1: 0.1, 3: 1.0}), others).stop
    assert rule.should_stop(running({0: 0.5, 1: 0.1, 3: 0.99}), others).stop


def test_asha_with_fewer_than_reduction_factor_values_only_the_best_continues() -> None:
    rule = AshaRule(minimize=True, min_resource=1, reduction_factor=3)
    one = [make_trial(1, {1: 0.5}, maximize=False)]
    assert not rule.should_stop(running({1: 0.4}), one).stop
    assert rule.should_stop(running({1: 0.6}), one).stop
    assert not rule.should_stop(running({1: 0.6}), []).stop


def test_asha_counts_trials_in_any_state_and_non_finite_ranks_last() -> None:
    rule = AshaRule(minimize=False, min_resource=1, reduction_factor=2)
    others = [
        make_trial(1, {1: 0.9}, state=TrialState.RUNNING),
        make_trial(2, {1: 0.8}, state=TrialState.EARLY_STOPPED),
        make_trial(3, {1: math.nan}, state=TrialState.FAILED),
        make_trial(4, {1: math.inf}, state=TrialState.FAILED),
    ]
    # n = 5, keep 2: cutoff 0.8 (NaN and inf rank last, even when maximizing)
    assert rule.should_stop(running({1: 0.7}), others).stop
    assert not rule.should_stop(running({1: 0.85}), others).stop


def test_asha_judges_the_highest_rung_reached_only() -> None:
    rule = AshaRule(minimize=False, min_resource=1, reduction_factor=3)
    others = [make_trial(i, {1: 0.9, 2: 0.9}) for i in range(6)]  # nobody reached step 3
    # the trial was bad at rung 0 but has reached rung 1 (step 3), where it is alone
    assert not rule.should_stop(running({1: 0.1, 3: 0.2}), others).stop
    assert rule.should_stop(running({1: 0.1, 2: 0.2}), others).stop


# ---------------------------------------------------------------------------------------------
# hyperband


def test_hyperband_brackets_follow_the_paper() -> None:
    rule = HyperbandRule(minimize=True, min_resource=1, max_resource=27, reduction_factor=3)
    assert rule.n_brackets == 4
    assert rule.budgets == (27, 12, 6, 4)  # Hyperband's n_i for R = 27, eta = 3
    # R = 8, eta = 2: n_s = ceil(4 / (s + 1) * 2**s) for s = 3, 2, 1, 0
    eight = HyperbandRule(minimize=True, max_resource=8, reduction_factor=2)
    assert eight.budgets == (8, 6, 4, 4)
    assert HyperbandRule(minimize=True, min_resource=5, max_resource=9).n_brackets == 1


def test_hyperband_bracket_assignment_is_deterministic_and_weighted() -> None:
    rule = HyperbandRule(minimize=True, min_resource=1, max_resource=27, reduction_factor=3)
    again = HyperbandRule(minimize=False, min_resource=1, max_resource=27, reduction_factor=3)
    numbers = range(20000)
    brackets = [rule.bracket(n) for n in numbers]
    assert brackets == [again.bracket(n) for n in numbers]
    counts = Counter(brackets)
    total = sum(rule.budgets)
    for b, budget in enumerate(rule.budgets):
        assert abs(counts[b] / len(numbers) - budget / total) < 0.02
    # the assignment is fixed across processes (crc32, not hash())
    assert [rule.bracket(n) for n in range(8)] == [0, 0, 0, 0, 0, 2, 2, 0]


def test_hyperband_compares_within_the_bracket_only() -> None:
    rule = HyperbandRule(minimize=False, min_resource=1, max_resource=9, reduction_factor=3)
    b0 = [n for n in range(200) if rule.bracket(n) == 0]
    b1 = [n for n in range(200) if rule.bracket(n) == 1]
    trial = running({s: 0.1 for s in range(4)}, number=b0[0])
    strangers = [make_trial(n, {s: 0.9 for s in STEPS}) for n in b1[:5]]
    assert not rule.should_stop(trial, strangers).stop
    mate = make_trial(b0[1], {s: 0.9 for s in STEPS})
    decision = rule.should_stop(trial, [*strangers, mate])
    assert decision.stop
    assert decision.reason is not None
    assert decision.reason.startswith("step 3: value 0.1 at rung 1 (step 3) is not among")
    assert decision.reason.endswith("; Hyperband bracket 0 of 3")


def test_hyperband_bracket_rungs() -> None:
    rule = HyperbandRule(minimize=False, min_resource=1, max_resource=9, reduction_factor=3)
    b1 = [n for n in range(200) if rule.bracket(n) == 1]
    b2 = [n for n in range(200) if rule.bracket(n) == 2]
    good = {s: 0.9 for s in STEPS}
    # bracket 1 starts halving at step 3: a bad trial at steps 0..2 continues, at step 3 stops
    mates1 = [make_trial(n, good) for n in b1[1:4]]
    assert not rule.should_stop(running({s: 0.1 for s in range(3)}, b1[0]), mates1).stop
    assert rule.should_stop(running({s: 0.1 for s in range(4)}, b1[0]), mates1).stop
    # the last bracket runs every trial to max_resource
    mates2 = [make_trial(n, good) for n in b2[1:4]]
    assert not rule.should_stop(running({s: 0.1 for s in STEPS}, b2[0]), mates2).stop


# ---------------------------------------------------------------------------------------------
# percentile


def test_percentile_reason_and_direction() -> None:
    others = [make_trial(i, {0: v}) for i, v in enumerate([0.1, 0.2, 0.3, 0.4, 0.5])]
    rule = PercentileRule(minimize=False, percentile=25.0, n_startup_trials=5)
    decision = rule.should_stop(running({0: 0.35}), others)
    assert decision.stop  # top quarter: the 75th percentile is 0.4
    assert (
        decision.reason == "step 0: best 0.35 < 75th percentile 0.4 of 5 succeeded trials at step 0"
    )
    assert not rule.should_stop(running({0: 0.4}), others).stop
    assert not replace(rule, n_startup_trials=6).should_stop(running({0: 0.35}), others).stop


def test_percentile_warmup_and_interval() -> None:
    others = [make_trial(i, {s: 0.9 for s in STEPS}) for i in range(5)]
    rule = PercentileRule(minimize=False, percentile=50.0, n_warmup_steps=2, interval_steps=3)
    bad = {s: 0.1 for s in STEPS}

    def stops(*steps: int) -> bool:
        return rule.should_stop(running({s: bad[s] for s in steps}), others).stop

    assert not stops(0, 1)  # warm-up
    assert stops(0, 1, 2)  # pruning steps are 2, 5, 8
    assert not stops(0, 1, 2, 3)  # already judged in this interval
    assert stops(0, 1, 2, 3, 4, 5)
    assert stops(0, 1, 6)  # first report at or past pruning step 5


@pytest.mark.parametrize("maximize", [True, False], ids=["max", "min"])
@pytest.mark.parametrize(
    ("percentile", "warmup", "interval"), [(50.0, 0, 1), (25.0, 2, 3), (80.0, 1, 2)]
)
def test_percentile_agrees_with_optuna(
    maximize: bool, percentile: float, warmup: int, interval: int
) -> None:
    import optuna
    from optuna.trial import TrialState as OptunaState
    from optuna.trial import create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    states = {
        TrialState.SUCCEEDED: OptunaState.COMPLETE,
        TrialState.FAILED: OptunaState.FAIL,
        TrialState.EARLY_STOPPED: OptunaState.PRUNED,
        TrialState.RUNNING: OptunaState.RUNNING,
    }
    ours = PercentileRule(
        minimize=not maximize,
        percentile=percentile,
        n_startup_trials=3,
        n_warmup_steps=warmup,
        interval_steps=interval,
    )
    pruner = optuna.pruners.PercentilePruner(
        percentile, n_startup_trials=3, n_warmup_steps=warmup, interval_steps=interval
    )
    rng = random.Random(percentile + warmup)
    stops = 0
    for _ in range(40):
        study = optuna.create_study(direction="maximize" if maximize else "minimize")
        others = []
        for i in range(rng.randrange(0, 9)):
            curve = {s: rng.uniform(0, 1) for s in range(12) if rng.random() < 0.8}
            state = rng.choice([*states, TrialState.SUCCEEDED, TrialState.SUCCEEDED])
            others.append(make_trial(i, curve, state=state, objective=rng.uniform(0, 1)))
            study.add_trial(
                create_trial(
                    state=states[state],
                    value=others[-1].objective if state is TrialState.SUCCEEDED else None,
                    intermediate_values=curve,
                )
            )
        curve = {s: rng.uniform(0, 1) for s in range(rng.randrange(1, 12)) if rng.random() < 0.7}
        if not curve:
            continue
        study.add_trial(create_trial(state=OptunaState.RUNNING, intermediate_values=curve))
        expected = pruner.prune(study, study.get_trials(deepcopy=False)[-1])
        decision = ours.should_stop(running(curve), others)
        assert decision.stop == expected, (curve, others, decision)
        stops += expected
    assert 0 < stops < 40


# ---------------------------------------------------------------------------------------------
# threshold


def test_threshold_bounds() -> None:
    rule = ThresholdRule(minimize=True, lower=0.0, upper=1.0)
    assert not rule.should_stop(running({0: 0.0, 1: 1.0}), []).stop
    assert rule.should_stop(running({0: 0.5, 1: 1.5}), []) == StopDecision(
        True, "step 1: 1.5 > upper 1"
    )
    assert rule.should_stop(running({0: -0.5}), []) == StopDecision(True, "step 0: -0.5 < lower 0")
    assert not rule.should_stop(running({0: 5.0, 1: 0.5}), []).stop  # only the latest counts
    only_upper = ThresholdRule(minimize=True, upper=2.0)
    assert not only_upper.should_stop(running({0: -1e9}), []).stop
    assert only_upper.should_stop(running({0: math.inf}), []).stop


# ---------------------------------------------------------------------------------------------
# wilcoxon


def test_wilcoxon_against_the_best_succeeded_trial() -> None:
    rule = WilcoxonRule(minimize=True, p_threshold=0.1, n_startup_steps=5)
    best = make_trial(1, {s: 1.0 + 0.1 * s for s in STEPS}, objective=1.0, maximize=False)
    worse = make_trial(2, {s: 9.0 for s in STEPS}, objective=9.0, maximize=False)
    pending = make_trial(3, {s: 0.0 for s in STEPS}, state=TrialState.RUNNING)
    others = [worse, best, pending]
    trial = running({s: 1.05 + 0.1 * s for s in range(6)})
    decision = rule.should_stop(trial, others)
    assert decision.stop
    assert decision.reason == (
        "step 5: worse than best trial t-1 on 6 common steps (mean 1.3 vs 1.25, "
        "Wilcoxon p=0.0156 < 0.1)"
    )
    assert not rule.should_stop(running({s: 1.05 + 0.1 * s for s in range(4)}), others).stop
    # mixed signs: not significant
    mixed = {s: 1.0 + 0.1 * s + (0.05 if s % 2 else -0.04) for s in range(6)}
    assert not rule.should_stop(running(mixed), others).stop
    # no succeeded trial: no reference
    assert not rule.should_stop(trial, [pending]).stop


def test_wilcoxon_needs_a_worse_mean_and_common_steps() -> None:
    rule = WilcoxonRule(minimize=False, p_threshold=0.5, n_startup_steps=2)
    best = make_trial(1, {0: 0.5, 1: 0.5, 2: 0.5, 3: 0.5}, objective=0.5)
    # worse on 3 of 4 steps but far better on one: the mean is better, so it continues
    assert not rule.should_stop(running({0: 0.49, 1: 0.49, 2: 0.49, 3: 2.0}), [best]).stop
    # only one common step with the reference
    assert not rule.should_stop(running({3: 0.1, 7: 0.1, 8: 0.1}), [best]).stop
    assert rule.should_stop(running({0: 0.1, 1: 0.2, 2: 0.3}), [best]).stop
    # all differences zero: p = 1
    assert not rule.should_stop(running({0: 0.5, 1: 0.5, 2: 0.5}), [best]).stop


# ---------------------------------------------------------------------------------------------
# patience


def test_patience_counts_reports_since_the_last_improvement() -> None:
    rule = PatienceRule(minimize=True, patience=2)
    assert not rule.should_stop(running({0: 1.0, 1: 1.1}), []).stop
    decision = rule.should_stop(running({0: 1.0, 1: 1.1, 5: 1.0}), [])
    assert decision == StopDecision(
        True, "step 5: no improvement over best 1 (step 0) by more than 0 in 2 reports (patience 2)"
    )
    assert not rule.should_stop(running({0: 1.0, 1: 1.1, 2: 0.9, 3: 0.95}), []).stop


def test_patience_min_delta() -> None:
    rule = PatienceRule(minimize=False, patience=2, min_delta=0.05)
    creeping = {0: 0.50, 1: 0.52, 2: 0.54}  # each gain below min_delta
    assert rule.should_stop(running(creeping), []).stop
    assert not PatienceRule(minimize=False, patience=2).should_stop(running(creeping), []).stop
    # 0.56 beats the best (0.50) by more than min_delta: an improvement
    assert not rule.should_stop(running({**creeping, 3: 0.56}), []).stop


# ---------------------------------------------------------------------------------------------
# Settings, validation and construction


@pytest.mark.parametrize(
    ("name", "settings", "problems"),
    [
        ("medianstop", {}, []),
        ("medianstop", {"min_trials_required": "0"}, [("min_trials_required", ">= 1")]),
        ("medianstop", {"start_step": "x"}, [("start_step", "'x' is not an integer")]),
        ("medianstop", {"foo": "1"}, [("foo", "unknown setting for medianstop")]),
        ("asha", {"reduction_factor": "1"}, [("reduction_factor", ">= 2")]),
        ("asha", {"min_early_stopping_rate": "-1"}, [("min_early_stopping_rate", ">= 0")]),
        ("hyperband", {}, [("max_resource", "is required")]),
        (
            "hyperband",
            {"min_resource": "9", "max_resource": "9"},
            [("max_resource", "greater than min_resource")],
        ),
        ("percentile", {}, [("percentile", "is required")]),
        ("percentile", {"percentile": "101"}, [("percentile", "<= 100")]),
        ("percentile", {"percentile": "nan"}, [("percentile", "not a finite number")]),
        ("percentile", {"percentile": "10", "interval_steps": "0"}, [("interval_steps", ">= 1")]),
        ("threshold", {}, [("lower", "at least one of lower and upper")]),
        ("threshold", {"lower": "2", "upper": "1"}, [("upper", "must be >= lower")]),
        ("threshold", {"upper": "inf"}, [("upper", "not a finite number")]),
        ("wilcoxon", {"p_threshold": "0"}, [("p_threshold", "must be > 0")]),
        ("wilcoxon", {"p_threshold": "1", "n_startup_steps": "1"}, []),
        (
            "patience",
            {"patience": "0", "min_delta": "-1"},
            [("patience", ">= 1"), ("min_delta", ">= 0")],
        ),
        ("median", {}, [("", "unknown early stopping algorithm 'median'; known: asha, ")]),
    ],
)
def test_validate_settings(
    name: str, settings: dict[str, str], problems: list[tuple[str, str]]
) -> None:
    spec = spec_for("medianstop", {})
    found = validate_early_stopping(name, settings, spec)
    assert [key for key, _ in found] == [key for key, _ in problems]
    for (_, message), (_, fragment) in zip(found, problems, strict=True):
        assert fragment in message


def test_every_rule_validates_its_defaults_or_requires_settings() -> None:
    spec = spec_for("medianstop", {})
    for name in rule_names():
        for _key, message in validate_early_stopping(name, {}, spec):
            assert "required" in message


def test_create_rule() -> None:
    no_es = spec_for("medianstop", {})
    no_es.early_stopping = None
    assert create_rule(no_es) is None
    rule = create_rule(spec_for("asha", {"reduction_factor": "4"}, maximize=False))
    assert rule == AshaRule(minimize=True, min_resource=1, reduction_factor=4)
    assert create_rule(spec_for("medianstop", {})) == MedianStopRule(minimize=False)
    with pytest.raises(SpecError) as info:
        create_rule(spec_for("hyperband", {"reduction_factor": "x"}))
    assert [(e.path, e.message) for e in info.value.errors] == [
        ("spec.earlyStopping.algorithmSettings", "reduction_factor: 'x' is not an integer"),
        ("spec.earlyStopping.algorithmSettings", "max_resource: is required by hyperband"),
    ]


def katib_experiment(early_stopping: dict[str, Any]) -> dict[str, Any]:
    return experiment_dict("es", earlyStopping=early_stopping)


def test_load_spec_accepts_katib_medianstop() -> None:
    es = {
        "algorithmName": "medianstop",
        "algorithmSettings": [
            {"name": "min_trials_required", "value": "2"},
            {"name": "start_step", "value": 3},
        ],
    }
    spec = load_spec(katib_experiment(es)).spec
    assert create_rule(spec) == MedianStopRule(minimize=True, min_trials_required=2, start_step=3)


def test_load_spec_reports_setting_paths() -> None:
    es = {
        "algorithmName": "percentile",
        "algorithmSettings": [
            {"name": "n_warmup_steps", "value": "2"},
            {"name": "percentile", "value": "150"},
            {"name": "bogus", "value": "1"},
        ],
    }
    with pytest.raises(SpecError) as info:
        load_spec(katib_experiment(es))
    errors = [(e.path, e.message) for e in info.value.errors]
    assert errors == [
        ("spec.earlyStopping.algorithmSettings[1]", "percentile: must be <= 100, got 150"),
        (
            "spec.earlyStopping.algorithmSettings[2]",
            "bogus: unknown setting for percentile; known: interval_steps, n_startup_trials, "
            "n_warmup_steps, percentile",
        ),
    ]


def test_load_spec_reports_missing_setting_and_unknown_rule() -> None:
    with pytest.raises(SpecError) as info:
        load_spec(katib_experiment({"algorithmName": "patience"}))
    assert [(e.path, e.message) for e in info.value.errors] == [
        ("spec.earlyStopping.algorithmSettings", "patience: is required by patience")
    ]
    with pytest.raises(SpecError) as info:
        load_spec(katib_experiment({"algorithmName": "hyperbnd"}))
    [error] = info.value.errors
    assert error.path == "spec.earlyStopping.algorithmName"
    assert error.message.startswith("unknown early stopping algorithm 'hyperbnd'; known: asha")


def test_import_is_cheap() -> None:
    code = (
        "import sys, tuner.early_stopping, tuner.collectors; "
        "print(sorted(m for m in ('optuna', 'scipy', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
