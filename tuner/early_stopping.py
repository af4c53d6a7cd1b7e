"""Early-stopping rules: should a running trial stop now, given every other trial?

A rule is named by ``spec.earlyStopping.algorithmName`` and configured by its
``algorithmSettings`` (string values, as Katib writes them). The controller calls
:meth:`EarlyStoppingRule.should_stop` with the running trial (its objective curve so far, as
``(step, value)`` pairs) and the experiment's other trials; the answer is a
:class:`StopDecision` whose reason gives the numbers it was based on.

Decisions are pure functions of ``(trial, history)``: rules keep no state between calls, so a
restarted controller re-derives the same decisions from the database. The direction comes from
the study's objective (``spec.objective.type``). "Best so far" means the best finite value of
the trial's curve up to its latest step. A curve is read sorted by step; a duplicated step
keeps its last value.

Shared behaviour of every rule:

* An empty curve never stops.
* A latest value that is NaN or infinite always stops, whatever the warm-up settings: a
  diverged metric does not recover, and no comparison with it is meaningful. No rule is
  exempt. Earlier non-finite points are ignored by the comparisons (treated as missing),
  except at a successive-halving rung, where a non-finite recorded value ranks last.
* ``history`` may contain trials in any state; each rule says which ones it compares with.
  An entry with the running trial's own name is ignored.

Rules (settings with defaults):

``medianstop`` (``min_trials_required=3``, ``start_step=4``)
    The median stopping rule of Google Vizier (Golovin et al., 2017), which Katib ships: at
    step ``s >= start_step`` the trial stops when its best value so far is strictly worse than
    the **median** of the running averages (mean of the values at steps ``<= s``) of the
    Succeeded trials, once at least ``min_trials_required`` such trials have a value at a step
    ``<= s``. Katib's implementation takes the *mean* of the averages (of the first
    ``start_step`` reports) although it calls it the median; we use the true median. As in
    Katib, only Succeeded trials are the reference (not EarlyStopped ones). Steps are the
    reported step numbers, so with steps counted from 0 the first judgment under the defaults
    comes at the fifth report.

``asha`` (``min_resource=1``, ``reduction_factor=3``, ``min_early_stopping_rate=0``)
    Asynchronous successive halving (Li et al., 2018). The resource is the step number of the
    objective metric. Rung ``k`` lies at step ``min_resource * reduction_factor ** (k +
    min_early_stopping_rate)``; a trial has reached it once it reported a step at or past it,
    and its value there is the value of its first report at or past it. The trial is judged at
    the highest rung it has reached, against the values every trial of the experiment (any
    state, the trial itself included) recorded at that rung: it continues only if its value is
    among the best ``max(1, n // reduction_factor)`` of those ``n`` values (ties continue; NaN
    and infinite values rank last). With fewer than ``reduction_factor`` values at the rung only
    the best continues, as in Optuna. Default reduction factor 3 as in the Hyperband/ASHA papers
    (Optuna's default is 4). Unlike Optuna, which judges a trial once when it reaches a rung and
    remembers the outcome, the rung is re-judged on every call until the next rung is reached
    (stateless and robust to batched observations): a trial that passed may still be stopped
    before the next rung if enough better trials reach that rung meanwhile.

``hyperband`` (``min_resource=1``, ``max_resource`` required, ``reduction_factor=3``)
    Hyperband (Li et al., 2017) as successive halving brackets: ``n_brackets = floor(log_rf(
    max_resource / min_resource)) + 1``; bracket ``b`` is an ASHA with
    ``min_early_stopping_rate = b`` whose rungs stop before ``max_resource`` (the last
    bracket therefore runs every trial to the end). A trial's bracket is drawn from
    ``crc32(str(trial.number))`` with weights proportional to Hyperband's number of
    configurations per bracket, ``ceil(n_brackets * rf**s / (s + 1))`` with
    ``s = n_brackets - 1 - b``; trials are compared only with trials of the same bracket.

``percentile`` (``percentile`` required, ``n_startup_trials=5``, ``n_warmup_steps=0``,
``interval_steps=1``)
    As Optuna's ``PercentilePruner``: judged at a step ``s >= n_warmup_steps`` that is the
    trial's first report at or past a pruning step (``n_warmup_steps + k * interval_steps``),
    once ``n_startup_trials`` trials have Succeeded. The trial stops when its best value so far
    is worse than the ``percentile``-th percentile (linear interpolation; for maximization the
    ``100 - percentile``-th, so ``percentile=25`` keeps the best quarter either way) of the
    Succeeded trials' values at step ``s`` (trials without a finite value at ``s`` are left
    out). ``percentile=50`` is Optuna's ``MedianPruner``.

``threshold`` (``lower`` and/or ``upper``)
    Stops when the latest value is below ``lower`` or above ``upper`` (independent of the
    direction), or is NaN or infinite.

``wilcoxon`` (``p_threshold=0.1``, ``n_startup_steps=2``)
    For objectives reported per fold or instance (the step is the instance id), as Optuna's
    ``WilcoxonPruner``: the reference is the best Succeeded trial by objective value (lowest
    number on ties). On the steps both report (finite values), a one-sided Wilcoxon
    signed-rank test (``zero_method="zsplit"``) asks whether the trial is worse; it stops when
    ``p < p_threshold`` and its mean over those steps is also worse than the reference's,
    given at least ``n_startup_steps`` common steps.

``patience`` (``patience`` required, ``min_delta=0``)
    As Keras' ``EarlyStopping``: stops once ``patience`` reports in a row came after the last
    improvement. A report improves when it beats the best so far by more than ``min_delta``;
    the first report sets the best. Reports are counted, not step numbers, so sparse curves
    behave like dense ones; a NaN report is not an improvement.

Optuna's pruners are not used at run time: they answer only yes/no (our reasons carry the
numbers) and its successive halving keeps rung outcomes in the study's storage, which is state
a restart would lose. The percentile rule is checked against Optuna's in the tests.
"""

from __future__ import annotations

import math
import statistics
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tuner.errors import FieldError, SpecError
from tuner.space import HasStudy, Study, study_of
from tuner.trials import Trial, TrialState

Curve = list[tuple[int, float]]


@dataclass(frozen=True)
class StopDecision:
    """A rule's answer: ``stop`` and, when stopping, a human-readable reason with numbers."""

    stop: bool
    reason: str | None = None


CONTINUE = StopDecision(False)


class EarlyStoppingRule(Protocol):
    """Decides whether a running trial should stop; a pure function of its inputs."""

    def should_stop(self, trial: Trial, history: Sequence[Trial]) -> StopDecision: ...


# ---------------------------------------------------------------------------------------------
# Helpers


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _curve(trial: Trial) -> Curve:
    """The trial's curve sorted by step; a duplicated step keeps its last value."""
    return sorted(dict(trial.curve).items())


def _others(trial: Trial, history: Sequence[Trial]) -> list[Trial]:
    return [t for t in history if t.name != trial.name]


def _succeeded(trials: Sequence[Trial]) -> list[Trial]:
    return [t for t in trials if t.state is TrialState.SUCCEEDED]


def _percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation (numpy's default method)."""
    xs = sorted(values)
    h = (len(xs) - 1) * q / 100.0
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


class _Rule:
    """Base of the rules: the shared empty-curve and non-finite handling, direction helpers.

    Subclasses are frozen dataclasses with a ``minimize`` field and implement :meth:`_decide`.
    """

    minimize: bool

    def should_stop(self, trial: Trial, history: Sequence[Trial]) -> StopDecision:
        curve = _curve(trial)
        if not curve:
            return CONTINUE
        step, value = curve[-1]
        if math.isnan(value):
            return StopDecision(True, f"step {step}: objective value is NaN")
        if math.isinf(value):
            return StopDecision(True, f"step {step}: objective value is {_fmt(value)}")
        return self._decide(trial, curve, _others(trial, history))

    def _decide(self, trial: Trial, curve: Curve, others: list[Trial]) -> StopDecision:
        raise NotImplementedError

    # Values are compared as losses: lower is better whatever the direction.
    def _loss(self, value: float) -> float:
        return value if self.minimize else -value

    @property
    def _worse(self) -> str:
        """The comparison sign of "worse than" in the user's direction, for reasons."""
        return ">" if self.minimize else "<"

    def _best(self, curve: Curve, up_to: int) -> float:
        """Best finite value at steps ``<= up_to`` (the latest point is finite when called)."""
        finite = [v for s, v in curve if s <= up_to and math.isfinite(v)]
        return min(finite, key=self._loss)


# ---------------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True)
class MedianStopRule(_Rule):
    """Vizier's median stopping rule (true median; Katib takes a mean). See the module doc."""

    minimize: bool
    min_trials_required: int = 3
    start_step: int = 4

    def _decide(self, trial: Trial, curve: Curve, others: list[Trial]) -> StopDecision:
        step = curve[-1][0]
        if step < self.start_step:
            return CONTINUE
        averages = []
        for t in _succeeded(others):
            values = [v for s, v in _curve(t) if s <= step and math.isfinite(v)]
            if values:
                averages.append(statistics.fmean(values))
        if len(averages) < self.min_trials_required:
            return CONTINUE
        median = statistics.median(averages)
        best = self._best(curve, step)
        if self._loss(best) > self._loss(median):
            return StopDecision(
                True,
                f"step {step}: best {_fmt(best)} {self._worse} median {_fmt(median)} of the "
                f"running averages of {len(averages)} succeeded trials up to step {step}",
            )
        return CONTINUE


def _value_from(curve: Curve, step: int) -> float | None:
    """The value of the first report at or past ``step``, if any."""
    return next((v for s, v in curve if s >= step), None)


@dataclass(frozen=True)
class AshaRule(_Rule):
    """Asynchronous successive halving over steps. See the module doc.

    ``max_resource`` (used by Hyperband's brackets) leaves rungs at or past it unjudged.
    """

    minimize: bool
    min_resource: int = 1
    reduction_factor: int = 3
    min_early_stopping_rate: int = 0
    max_resource: int | None = None

    def rung_step(self, rung: int) -> int:
        """The step at which rung ``rung`` (0, 1, ...) lies."""
        return int(
            self.min_resource * self.reduction_factor ** (rung + self.min_early_stopping_rate)
        )

    def rung_reached(self, last_step: int) -> int | None:
        """The highest judged rung a trial whose latest step is ``last_step`` has reached."""
        rung = None
        k = 0
        while self.rung_step(k) <= last_step and (
            self.max_resource is None or self.rung_step(k) < self.max_resource
        ):
            rung = k
            k += 1
        return rung

    def _decide(self, trial: Trial, curve: Curve, others: list[Trial]) -> StopDecision:
        rung = self.rung_reached(curve[-1][0])
        if rung is None:
            return CONTINUE
        at = self.rung_step(rung)
        mine = _value_from(curve, at)
        assert mine is not None  # the trial reached the rung
        competitors = [mine]
        for t in others:
            v = _value_from(_curve(t), at)
            if v is not None:
                competitors.append(v)
        losses = sorted(self._rank_loss(v) for v in competitors)
        keep = max(1, len(losses) // self.reduction_factor)
        cutoff = losses[keep - 1]
        if self._rank_loss(mine) > cutoff:
            return StopDecision(
                True,
                f"step {curve[-1][0]}: value {_fmt(mine)} at rung {rung} (step {at}) is not "
                f"among the best {keep} of {len(losses)} trials there "
                f"(cutoff {_fmt(self._loss(cutoff))})",
            )
        return CONTINUE

    def _rank_loss(self, value: float) -> float:
        return self._loss(value) if math.isfinite(value) else math.inf


@dataclass(frozen=True)
class HyperbandRule(_Rule):
    """Hyperband as brackets of successive halving. See the module doc."""

    minimize: bool
    max_resource: int
    min_resource: int = 1
    reduction_factor: int = 3
    _brackets: tuple[AshaRule, ...] = field(init=False, repr=False, compare=False)
    _budgets: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = 1
        while self.min_resource * self.reduction_factor**n <= self.max_resource:
            n += 1
        brackets = tuple(
            AshaRule(
                minimize=self.minimize,
                min_resource=self.min_resource,
                reduction_factor=self.reduction_factor,
                min_early_stopping_rate=b,
                max_resource=self.max_resource,
            )
            for b in range(n)
        )
        budgets = tuple(
            math.ceil(n * self.reduction_factor ** (n - 1 - b) / (n - b)) for b in range(n)
        )
        object.__setattr__(self, "_brackets", brackets)
        object.__setattr__(self, "_budgets", budgets)

    @property
    def n_brackets(self) -> int:
        return len(self._brackets)

    @property
    def budgets(self) -> tuple[int, ...]:
        """Relative share of trials of each bracket (Hyperband's n_i)."""
        return self._budgets

    def bracket(self, number: int) -> int:
        """The bracket of trial ``number``; deterministic across processes."""
        n = zlib.crc32(str(number).encode()) % sum(self._budgets)
        for b, budget in enumerate(self._budgets):
            if n < budget:
                return b
            n -= budget
        raise AssertionError("unreachable")

    def _decide(self, trial: Trial, curve: Curve, others: list[Trial]) -> StopDecision:
        b = self.bracket(trial.number)
        mates = [t for t in others if self.bracket(t.number) == b]
        decision = self._brackets[b]._decide(trial, curve, mates)
        if decision.stop:
            return StopDecision(
                True, f"{decision.reason}; Hyperband bracket {b} of {self.n_brackets}"
            )
        return decision


@dataclass(frozen=True)
class PercentileRule(_Rule):
    """Optuna's percentile pruning, statelessly. See the module doc."""

    minimize: bool
    percentile: float
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1

    def _decide(self, trial: Trial, curve: Curve, others: list[Trial]) -> StopDecision:
        step = curve[-1][0]
        if step < self.n_warmup_steps:
            return CONTINUE
        pruning_step = (
            self.n_warmup_steps
            + (step - self.n_warmup_steps) // self.interval_steps * self.interval_steps
        )
        if any(pruning_step <= s < step for s, _ in curve[:-1]):
            return CONTINUE  # judged already at an earlier report of this interval
        reference = _succeeded(others)
        if not reference or len(reference) < self.n_startup_trials:
            return CONTINUE
        losses = []
        for t in reference:
            v = dict(t.curve).get(step)
            if v is not None and math.isfinite(v):
                losses.append(self._loss(v))
        if not losses:
            return CONTINUE
        threshold = _percentile(losses, self.percentile)
        best = self._best(curve, step)
        if self._loss(best) > threshold:
            q = self.percentile if self.minimize else 100 - self.percentile
            return StopDecision(
                True,
                f"step {step}: best {_fmt(best)} {self._worse} {_fmt(q)}th percentile "
                f"{_fmt(self._loss(threshold))} of {len(losses)} succeeded trials at step {step}",
            )
        return CONTINUE


@dataclass(frozen=True)
class ThresholdRule(_Rule):
    """Stops a trial whose latest value leaves ``[lower, upper]``."""

    minimize: bool
    lower: float | None = None
    upper: float | None = None

    def _decide(self, trial: Trial, curve: Curve, others: list[Trial]) -> StopDecision:
        step, value = curve[-1]
        if self.lower is not None and value < self.lower:
            return StopDecision(True, f"step {step}: {_fmt(value)} < lower {_fmt(self.lower)}")
        if self.upper is not None and value > self.upper:
            return StopDecision(True, f"step {step}: {_fmt(value)} > upper {_fmt(self.upper)}")
        return CONTINUE


@dataclass(frozen=True)
class WilcoxonRule(_Rule):
    """Paired Wilcoxon signed-rank test against the best succeeded trial. See the module doc."""

    minimize: bool
    p_threshold: float = 0.1
    n_startup_steps: int = 2

    def _decide(self, trial: Trial, curve: Curve, others: list[Trial]) -> StopDecision:
        candidates = [
            t for t in _succeeded(others) if t.objective is not None and math.isfinite(t.objective)
        ]
        if not candidates:
            return CONTINUE
        best = min(candidates, key=lambda t: (self._loss(t.objective or 0.0), t.number))
        theirs = dict(best.curve)
        pairs = [
            (self._loss(v), self._loss(theirs[s]))
            for s, v in curve
            if s in theirs and math.isfinite(v) and math.isfinite(theirs[s])
        ]
        if not pairs or len(pairs) < self.n_startup_steps:
            return CONTINUE
        diffs = [a - b for a, b in pairs]
        mean_mine = statistics.fmean(a for a, _ in pairs)
        mean_best = statistics.fmean(b for _, b in pairs)
        if mean_mine <= mean_best:
            return CONTINUE
        p = _wilcoxon_greater(diffs)
        if p < self.p_threshold:
            return StopDecision(
                True,
                f"step {curve[-1][0]}: worse than best trial {best.name} on {len(pairs)} common "
                f"steps (mean {_fmt(self._loss(mean_mine))} vs {_fmt(self._loss(mean_best))}, "
                f"Wilcoxon p={p:.3g} < {_fmt(self.p_threshold)})",
            )
        return CONTINUE


def _wilcoxon_greater(diffs: Sequence[float]) -> float:
    """One-sided p-value that the differences are positive; NaN-safe (NaN counts as 1)."""
    from scipy.stats import wilcoxon  # imported here: scipy is slow to import

    with warnings.catch_warnings():
        # scipy warns when it switches to the normal approximation (ties, zeros); expected here.
        warnings.simplefilter("ignore")
        try:
            p = float(wilcoxon(diffs, alternative="greater", zero_method="zsplit").pvalue)
        except ValueError:  # e.g. scipy rejecting a degenerate sample
            return 1.0
    return 1.0 if math.isnan(p) else p


@dataclass(frozen=True)
class PatienceRule(_Rule):
    """Keras-style patience on the best value so far. See the module doc."""

    minimize: bool
    patience: int
    min_delta: float = 0.0

    def _decide(self, trial: Trial, curve: Curve, others: list[Trial]) -> StopDecision:
        best: float | None = None
        best_step = curve[0][0]
        since = 0
        for s, v in curve:
            if math.isfinite(v) and (best is None or self._loss(v) < best - self.min_delta):
                best, best_step, since = self._loss(v), s, 0
            else:
                since += 1
        if best is not None and since >= self.patience:
            return StopDecision(
                True,
                f"step {curve[-1][0]}: no improvement over best {_fmt(self._loss(best))} "
                f"(step {best_step}) by more than {_fmt(self.min_delta)} in {since} reports "
                f"(patience {self.patience})",
            )
        return CONTINUE


# ---------------------------------------------------------------------------------------------
# Settings and the registry

Value = int | float


@dataclass(frozen=True)
class _Setting:
    parse: Callable[[str], Value]
    default: Value | None = None
    required: bool = False


def _int(low: int) -> Callable[[str], Value]:
    def parse(text: str) -> Value:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
        if value < low:
            raise ValueError(f"must be an integer >= {low}, got {value}")
        return value

    return parse


def _float(
    low: float | None = None, high: float | None = None, low_open: bool = False
) -> Callable[[str], Value]:
    def parse(text: str) -> Value:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{text!r} is not a finite number")
        if low is not None and (value < low or (low_open and value == low)):
            raise ValueError(f"must be {'>' if low_open else '>='} {_fmt(low)}, got {text}")
        if high is not None and value > high:
            raise ValueError(f"must be <= {_fmt(high)}, got {text}")
        return value

    return parse


Builder = Callable[[bool, Mapping[str, Value]], _Rule]
Checker = Callable[[Mapping[str, Value]], list[tuple[str, str]]]


@dataclass(frozen=True)
class _RuleSpec:
    settings: dict[str, _Setting]
    build: Builder
    check: Checker | None = None


def _check_threshold(v: Mapping[str, Value]) -> list[tuple[str, str]]:
    lower, upper = v.get("lower"), v.get("upper")
    if lower is None and upper is None:
        return [("lower", "at least one of lower and upper is required")]
    if lower is not None and upper is not None and lower > upper:
        return [("upper", f"must be >= lower ({_fmt(lower)}), got {_fmt(upper)}")]
    return []


def _check_hyperband(v: Mapping[str, Value]) -> list[tuple[str, str]]:
    if "max_resource" in v and v["max_resource"] <= v["min_resource"]:
        return [("max_resource", f"must be greater than min_resource ({v['min_resource']})")]
    return []


def _opt_float(v: Mapping[str, Value], key: str) -> float | None:
    x = v.get(key)
    return None if x is None else float(x)


_RULES: dict[str, _RuleSpec] = {
    "medianstop": _RuleSpec(
        {
            "min_trials_required": _Setting(_int(1), 3),
            "start_step": _Setting(_int(1), 4),
        },
        lambda m, v: MedianStopRule(m, int(v["min_trials_required"]), int(v["start_step"])),
    ),
    "asha": _RuleSpec(
        {
            "min_resource": _Setting(_int(1), 1),
            "reduction_factor": _Setting(_int(2), 3),
            "min_early_stopping_rate": _Setting(_int(0), 0),
        },
        lambda m, v: AshaRule(
            m,
            int(v["min_resource"]),
            int(v["reduction_factor"]),
            int(v["min_early_stopping_rate"]),
        ),
    ),
    "hyperband": _RuleSpec(
        {
            "min_resource": _Setting(_int(1), 1),
            "max_resource": _Setting(_int(1), required=True),
            "reduction_factor": _Setting(_int(2), 3),
        },
        lambda m, v: HyperbandRule(
            m, int(v["max_resource"]), int(v["min_resource"]), int(v["reduction_factor"])
        ),
        _check_hyperband,
    ),
    "percentile": _RuleSpec(
        {
            "percentile": _Setting(_float(0.0, 100.0), required=True),
            "n_startup_trials": _Setting(_int(0), 5),
            "n_warmup_steps": _Setting(_int(0), 0),
            "interval_steps": _Setting(_int(1), 1),
        },
        lambda m, v: PercentileRule(
            m,
            float(v["percentile"]),
            int(v["n_startup_trials"]),
            int(v["n_warmup_steps"]),
            int(v["interval_steps"]),
        ),
    ),
    "threshold": _RuleSpec(
        {"lower": _Setting(_float()), "upper": _Setting(_float())},
        lambda m, v: ThresholdRule(m, _opt_float(v, "lower"), _opt_float(v, "upper")),
        _check_threshold,
    ),
    "wilcoxon": _RuleSpec(
        {
            "p_threshold": _Setting(_float(0.0, 1.0, low_open=True), 0.1),
            "n_startup_steps": _Setting(_int(1), 2),
        },
        lambda m, v: WilcoxonRule(m, float(v["p_threshold"]), int(v["n_startup_steps"])),
    ),
    "patience": _RuleSpec(
        {"patience": _Setting(_int(1), required=True), "min_delta": _Setting(_float(0.0), 0.0)},
        lambda m, v: PatienceRule(m, int(v["patience"]), float(v["min_delta"])),
    ),
}


def rule_names() -> list[str]:
    """Every ``earlyStopping.algorithmName`` this service knows, sorted."""
    return sorted(_RULES)


def _parse(
    name: str, settings: Mapping[str, str]
) -> tuple[dict[str, Value], list[tuple[str, str]]]:
    rule = _RULES.get(name)
    if rule is None:
        return {}, [
            ("", f"unknown early stopping algorithm {name!r}; known: {', '.join(rule_names())}")
        ]
    values: dict[str, Value] = {}
    problems: list[tuple[str, str]] = []
    for key, text in settings.items():
        setting = rule.settings.get(key)
        if setting is None:
            known = ", ".join(sorted(rule.settings))
            problems.append((key, f"unknown setting for {name}; known: {known}"))
            continue
        try:
            values[key] = setting.parse(text)
        except ValueError as e:
            problems.append((key, str(e)))
    for key, setting in rule.settings.items():
        if key in values or key in settings:
            continue
        if setting.required:
            problems.append((key, f"is required by {name}"))
        elif setting.default is not None:
            values[key] = setting.default
    if not problems and rule.check is not None:
        problems += rule.check(values)
    return values, problems


def validate_early_stopping(
    name: str, settings: Mapping[str, str], study: Study | HasStudy | None = None
) -> list[tuple[str, str]]:
    """Problems with an early-stopping choice: ``[(setting name or "", message)]``."""
    return _parse(name, settings)[1]


def create_rule(source: Study | HasStudy) -> EarlyStoppingRule | None:
    """The rule a study (or a validated spec, through its ``study``) asks for, if any.

    Raises:
        SpecError: the early-stopping settings are invalid (a spec that bypassed validation).
    """
    study = study_of(source)
    es = study.early_stopping
    if es is None:
        return None
    values, problems = _parse(es.name, es.settings)
    if problems:
        raise SpecError(
            [
                FieldError(
                    "spec.earlyStopping." + ("algorithmSettings" if key else "algorithmName"),
                    f"{key}: {message}" if key else message,
                )
                for key, message in problems
            ]
        )
    return _RULES[es.name].build(study.objective.minimize, values)
