"""Hyperband as a suggestion algorithm (``algorithmName: hyperband``), as in Katib.

The rules are on :class:`HyperbandSuggester`.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from tuner.algorithms.base import Suggestion
from tuner.algorithms.settings import Problems, Schema, Setting, at_least, open_interval, text
from tuner.algorithms.space import distribution, space_problems
from tuner.space import Parameter, ParameterKind, Study
from tuner.trials import ParamValue, Trial, TrialState

__all__ = [
    "ATTR",
    "HyperbandSettings",
    "HyperbandSuggester",
    "Schedule",
    "create",
    "schema",
    "validate_settings",
]

ATTR = "hyperband"
DEFAULT_ETA = 3.0
_MUST_BE_SET = "must be set for {owner} ({description})"


def schema(name: str = "hyperband") -> Schema:
    """Hyperband's settings, Katib's names (see :class:`HyperbandSuggester`)."""
    return Schema(
        name,
        (
            Setting(
                "resource_name",
                text,
                required=True,
                description="the budget parameter",
                missing=_MUST_BE_SET,
            ),
            Setting(
                "r_l",
                open_interval(0.0, None, "a positive number"),
                required=True,
                description="the largest budget",
                missing=_MUST_BE_SET,
            ),
            Setting(
                "eta",
                open_interval(1.0, None, "a number greater than 1"),
                DEFAULT_ETA,
                description="the reduction factor",
            ),
            Setting("random_state", at_least(0), description="seed of the configurations"),
        ),
    )


@dataclass(frozen=True)
class HyperbandSettings:
    """Hyperband's typed settings; validated on construction.

    Raises:
        ValueError: ``r_l`` is not positive, ``eta`` not above 1 or ``random_state`` negative.
    """

    resource_name: str
    r_l: float
    eta: float = DEFAULT_ETA
    random_state: int | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.r_l) and self.r_l > 0):
            raise ValueError(f"r_l must be a positive number, got {self.r_l}")
        if not (math.isfinite(self.eta) and self.eta > 1):
            raise ValueError(f"eta must be a number greater than 1, got {self.eta}")
        if self.random_state is not None and self.random_state < 0:
            raise ValueError("random_state must be >= 0")


_UNUSABLE = (TrialState.FAILED, TrialState.METRICS_UNAVAILABLE, TrialState.KILLED)


@dataclass(frozen=True)
class Schedule:
    """Hyperband's bracket table for ``r_l`` and ``eta``."""

    r_l: float
    eta: float

    @property
    def s_max(self) -> int:
        s = 0
        while self.eta ** (s + 1) <= self.r_l * (1 + 1e-9):
            s += 1
        return s

    def configs(self, s: int) -> int:
        """``n``: configurations bracket ``s`` starts with."""
        return math.ceil((self.s_max + 1) / (s + 1) * self.eta**s - 1e-9)

    def rung_size(self, s: int, i: int) -> int:
        return max(1, math.floor(self.configs(s) * self.eta**-i + 1e-9))

    def budget(self, s: int, i: int) -> float:
        return float(f"{self.r_l * self.eta ** (i - s):.12g}")

    def first_rung_size(self) -> int:
        """Katib's minimum ``parallelTrialCount``: ``ceil(eta**s_max)``."""
        return math.ceil(self.eta**self.s_max - 1e-9)


def _resource_value(p: Parameter, budget: float) -> ParamValue:
    if p.kind is ParameterKind.INT:
        return int(budget + 1e-9)
    return budget


def validate_settings(name: str, settings: Mapping[str, str], study: Study) -> Problems:
    """Problems with the Hyperband settings against the spec; see :class:`HyperbandSuggester`."""
    values, problems = schema(name).parse(settings)
    r_l: float | None = values.get("r_l")
    eta: float | None = values.get("eta")
    schedule = None if r_l is None or eta is None else Schedule(r_l, eta)
    if schedule is not None and study.parallel_trial_count < schedule.first_rung_size():
        problems.append(
            (
                "",
                f"parallelTrialCount must be at least {schedule.first_rung_size()} for {name} "
                f"with r_l={settings['r_l']} and eta={settings.get('eta', '3')} (eta**s_max, the "
                f"first rung), got {study.parallel_trial_count}",
            )
        )

    resource: str | None = values.get("resource_name")
    if resource is not None:
        problems += _resource_problems(resource, schedule, study)
    problems += [("", m) for m in space_problems(study.space)]
    return problems


def _resource_problems(
    resource: str, schedule: Schedule | None, study: Study
) -> list[tuple[str, str]]:
    if resource not in study.space:
        if not study.complete:
            return []  # it may be one of the parameters that did not parse
        names = ", ".join(study.space.names) or "none"
        return [("resource_name", f"{resource!r} is not a parameter of the spec (have: {names})")]
    p = study.space[resource]
    if not p.kind.numeric:
        return [
            (
                "resource_name",
                f"parameter {resource!r} is {p.kind}; the resource must be int or double",
            )
        ]
    # Katib assigns the schedule's budgets to the resource parameter as they are, inside its
    # feasible space or not (its own example has r_l=2 with max 1), and so does tuner.
    return []


def create(name: str, settings: Mapping[str, str], study: Study) -> HyperbandSuggester:
    """Build the Hyperband suggester of a validated spec.

    Raises:
        ValueError: if the settings do not pass :func:`validate_settings`.
    """
    problems = validate_settings(name, settings, study)
    if problems:
        raise ValueError(
            "invalid hyperband: " + "; ".join(f"{k}: {m}" if k else m for k, m in problems)
        )
    values, _ = schema(name).parse(settings)
    config = HyperbandSettings(**values)
    return HyperbandSuggester(
        study,
        resource_name=config.resource_name,
        r_l=config.r_l,
        eta=config.eta,
        random_state=config.random_state,
    )


@dataclass(frozen=True)
class _Slot:
    bracket: int
    rung: int
    config: int


def _slot(trial: Trial) -> _Slot | None:
    raw: Any = trial.attrs.get(ATTR)
    if not isinstance(raw, Mapping):
        return None
    values: list[int] = []
    for key in ("bracket", "rung", "config"):
        v = raw.get(key)
        if not isinstance(v, int) or isinstance(v, bool):
            return None
        values.append(v)
    return _Slot(*values)


class HyperbandSuggester:
    """A :class:`~tuner.algorithms.base.Suggester` running Hyperband.

    Settings (Katib's names):

    * ``resource_name`` (required): the spec parameter that carries the budget (epochs, steps, ...);
      an ``int`` or ``double`` parameter. Each suggestion sets it to its rung's budget; the other
      parameters are drawn at random from the space.
    * ``r_l`` (required): the largest budget a configuration gets, ``R`` in the paper; ``> 0``.
    * ``eta`` (default 3): the reduction factor; ``> 1``.
    * ``random_state`` (optional): seeds the draws of the configurations.

    Schedule (Li et al., 2017): ``s_max = floor(log_eta(r_l))``; brackets run one after the other,
    ``s = s_max, ..., 0``. Bracket ``s`` starts ``n = ceil((s_max + 1) / (s + 1) * eta**s)``
    configurations at budget ``r = r_l * eta**-s``; its rung ``i`` (``0..s``) holds the best
    ``n_i = floor(n * eta**-i)`` (at least 1) configurations of rung ``i - 1`` at budget
    ``r_i = r * eta**i``. For ``r_l=9, eta=3``:

    ======  =============  =============  =============
     s      rung 0         rung 1         rung 2
    ======  =============  =============  =============
     2      9 at 1         3 at 3         1 at 9
     1      5 at 3         1 at 9
     0      3 at 9
    ======  =============  =============  =============

    A trial of rung ``i`` is a fresh run at budget ``r_i`` (no checkpoint is resumed, as in Katib).
    An ``int`` resource gets ``int(r_i)`` (truncated, as Katib does); a ``double`` gets ``r_i``.

    State lives in the history only: each suggestion carries
    ``attrs={"hyperband": {"bracket": s, "rung": i, "config": k}}`` and every call re-derives the
    schedule's progress from those attributes, so a rebuilt suggester continues identically. The
    configuration ``k`` of bracket ``s`` is drawn from a generator seeded by ``(random_state, s,
    k)`` (a fresh random seed per suggester when ``random_state`` is unset); promoted
    configurations copy their parameters from the trial of the previous rung. Trials without the
    attribute (added by hand) are ignored.

    A rung is promoted once it is complete (all its trials created and finished). Its trials rank by
    objective in the spec's direction; Failed, MetricsUnavailable, Killed trials and trials without
    a finite objective rank last; ties go to the lower trial number. While a rung waits for running
    trials, :meth:`HyperbandSuggester.suggest` returns ``[]`` (the controller waits because trials
    are active). As in Katib, the next bracket starts as soon as the previous bracket's last rung
    has been created. Once every bracket is created the result is ``[]`` for good, which ends the
    experiment as exhausted when the last trial finishes.

    Validation follows Katib's ``ValidateAlgorithmSettings`` (``r_l`` and ``resource_name`` set,
    ``r_l`` positive, ``resource_name`` one of the parameters, ``parallelTrialCount >=
    eta**s_max``, Katib's requirement that the first rung can run at once), and adds what Katib
    leaves to a runtime failure: ``eta`` must be a number above 1 (Katib silently replaces values
    ``<= 0`` by 3 and divides by zero on 1), the resource must be an ``int`` or ``double``, and
    every budget of the schedule must lie in its feasible space (``max >= r_l`` in particular).
    """

    def __init__(
        self,
        study: Study,
        *,
        resource_name: str,
        r_l: float,
        eta: float = DEFAULT_ETA,
        random_state: int | None = None,
    ) -> None:
        self._schedule = Schedule(r_l, eta)
        self._resource = study.space[resource_name]
        self._others = [p for p in study.space if p.name != resource_name]
        self._space = {p.name: distribution(p) for p in self._others}
        self._parameters = list(study.space)
        self._maximize = not study.objective.minimize
        self._seed = secrets.randbits(63) if random_state is None else random_state

    @property
    def schedule(self) -> Schedule:
        return self._schedule

    def suggest(self, history: Sequence[Trial], count: int) -> list[Suggestion]:
        if count <= 0:
            return []
        sch = self._schedule
        rungs: dict[tuple[int, int], dict[int, Trial]] = {}
        for trial in history:
            slot = _slot(trial)
            if slot is None or not 0 <= slot.rung <= slot.bracket <= sch.s_max:
                continue
            rungs.setdefault((slot.bracket, slot.rung), {}).setdefault(slot.config, trial)
        out: list[Suggestion] = []
        for s in range(sch.s_max, -1, -1):
            for i in range(s + 1):
                size = sch.rung_size(s, i)
                have = rungs.get((s, i), {})
                if len(have) < size:
                    if i == 0:
                        todo = [(k, self._draw(s, k)) for k in range(size) if k not in have]
                    else:
                        ranked = self._ranked(rungs.get((s, i - 1), {}))
                        if ranked is None:
                            return out  # the previous rung is still running
                        todo = [(k, dict(t.parameters)) for k, t in ranked[:size] if k not in have]
                    for k, params in todo[: count - len(out)]:
                        params[self._resource.name] = _resource_value(
                            self._resource, sch.budget(s, i)
                        )
                        out.append(
                            Suggestion(
                                parameters={p.name: params[p.name] for p in self._parameters},
                                attrs={ATTR: {"bracket": s, "rung": i, "config": k}},
                            )
                        )
                    if len(out) >= count or i < s:
                        return out  # the next rung needs this one finished
                elif i < s and any(not t.state.finished for t in have.values()):
                    return out
        return out

    def _ranked(self, rung: Mapping[int, Trial]) -> list[tuple[int, Trial]] | None:
        """The rung's configurations best first, or ``None`` while one still runs."""
        if any(not t.state.finished for t in rung.values()):
            return None
        sign = -1.0 if self._maximize else 1.0

        def key(item: tuple[int, Trial]) -> tuple[int, float, int]:
            t = item[1]
            value = t.objective
            if t.state in _UNUSABLE or value is None or not math.isfinite(value):
                return (1, 0.0, t.number)
            return (0, sign * value, t.number)

        return sorted(rung.items(), key=key)

    def _draw(self, bracket: int, config: int) -> dict[str, ParamValue]:
        rng = np.random.default_rng([self._seed, bracket, config])
        out: dict[str, ParamValue] = {}
        for p in self._others:
            value = p.convert(_sample(self._space[p.name], rng))
            assert p.contains(value), (p.name, value)
            out[p.name] = value
        return out


def _sample(dist: BaseDistribution, rng: np.random.Generator) -> ParamValue:
    if isinstance(dist, CategoricalDistribution):
        choice = dist.choices[int(rng.integers(len(dist.choices)))]
        assert choice is not None
        return choice
    if isinstance(dist, IntDistribution):
        if dist.log:
            x = math.exp(rng.uniform(math.log(dist.low - 0.5 + 1e-9), math.log(dist.high + 0.5)))
            return min(max(round(x), dist.low), dist.high)
        return dist.low + dist.step * int(rng.integers((dist.high - dist.low) // dist.step + 1))
    assert isinstance(dist, FloatDistribution)
    if dist.log:
        return float(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high))))
    if dist.step is not None:
        k = int(rng.integers(round((dist.high - dist.low) / dist.step) + 1))
        return float(f"{dist.low + k * dist.step:.12g}")
    return float(rng.uniform(dist.low, dist.high))
