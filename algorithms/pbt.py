"""Population-based training (``algorithmName: pbt``), with Katib's settings.

A population of ``n_population`` members trains in generations. Every trial is one member of one
generation: it resumes from its parent's checkpoint (none in generation 0), trains, saves its
checkpoint, and reports the objective. Once every member of a generation has finished, the next
generation is bred from it, member by member (Katib's truncation selection):

* the ``truncation_threshold`` share of worst members (``int(n_population * threshold)``)
  **exploit**: each is replaced by a copy of one of the same number of best members, chosen at
  random, hyperparameters and checkpoint;
* the others **explore**: they continue from their own checkpoint with perturbed
  hyperparameters. Without ``resample_probability``, an ``int`` or ``double`` is multiplied by 0.8
  or 1.2 (clipped to the feasible space, snapped to its ``step``), and a ``discrete`` or
  ``categorical`` value moves to a neighbouring choice; with it, each parameter is drawn afresh
  from the feasible space with that probability and kept otherwise.

A member whose trial failed (or ended without the objective) is run again with the same
hyperparameters and parent, as Katib re-queues failed PBT trials. ``maxTrialCount`` ends the
search (generations never run out); ``maxFailedTrialCount`` bounds the retries.

Each suggestion carries its place in the population in the trial's attrs: ``pbt.generation``,
``pbt.member`` (0..n_population-1) and ``pbt.parent`` (the trial whose checkpoint it resumes).
The history is all the state there is: a restarted controller breeds the same generation.
Where the checkpoint lives: ``suggestion_trial_dir`` is the directory the trial command reads and
writes its checkpoint in. Locally, each trial gets a directory of its own in its place (the path is
rewritten in the command's arguments and environment, as the File collector's path is), holding a
copy of its parent's checkpoint; see :mod:`tuner.runners.checkpoints`.

Deviations from Katib:

* Generations are synchronous: generation ``g + 1`` is bred once all ``n_population`` members of
  ``g`` have finished (Katib also spawns extra members from the previous generation when more
  trials may run than are queued). With ``parallelTrialCount >= n_population`` a generation runs
  entirely in parallel.
* An exploiting member inherits the checkpoint of the better member it copies (Katib copies the
  hyperparameters but keeps the member's own checkpoint).
* ``random_state`` (not in Katib) seeds the random draws; with it a run is reproducible.
"""

from __future__ import annotations

import math
import os
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tuner.algorithms.base import Suggestion
from tuner.algorithms.settings import (
    Problems,
    Schema,
    Setting,
    at_least,
    bounded_float,
)
from tuner.space import Parameter, ParameterKind, Study
from tuner.trials import ParamValue, Trial

__all__ = [
    "GENERATION",
    "MEMBER",
    "PARENT",
    "PbtSettings",
    "PbtSuggester",
    "create",
    "validate_settings",
]

GENERATION = "pbt.generation"
MEMBER = "pbt.member"
PARENT = "pbt.parent"

_ABSOLUTE = "must be an absolute path (where the trial's container reads its checkpoint)"


def _directory(value: str) -> str:
    if not value.strip() or not os.path.isabs(value.strip()):
        raise ValueError(f"{_ABSOLUTE}, got {value!r}")
    return value.strip()


SCHEMA = Schema(
    "pbt",
    (
        Setting(
            "suggestion_trial_dir",
            _directory,
            required=True,
            description="the checkpoint directory of the trial command",
        ),
        Setting("n_population", at_least(5), required=True, description="members per generation"),
        Setting(
            "truncation_threshold",
            bounded_float(0.0, 1.0),
            required=True,
            description="share of the worst members that exploit the best",
        ),
        Setting(
            "resample_probability",
            bounded_float(0.0, 1.0),
            description="chance that exploring redraws a parameter (else x0.8 or x1.2)",
        ),
        Setting("random_state", at_least(0), description="seed of every draw"),
    ),
)


@dataclass(frozen=True)
class PbtSettings:
    """The typed settings of ``pbt`` (Katib's names)."""

    suggestion_trial_dir: str
    n_population: int
    truncation_threshold: float
    resample_probability: float | None = None
    random_state: int | None = None


def validate_settings(name: str, settings: Mapping[str, str], study: Study) -> Problems:
    """Problems with ``pbt``'s settings."""
    return SCHEMA.parse(settings)[1]


def parse_settings(settings: Mapping[str, str]) -> PbtSettings:
    """The typed settings of a validated choice.

    Raises:
        ValueError: the settings do not pass :func:`validate_settings`.
    """
    values, problems = SCHEMA.parse(settings)
    if problems:
        raise ValueError(
            "invalid settings for pbt: " + "; ".join(f"{k}: {m}" if k else m for k, m in problems)
        )
    return PbtSettings(**values)


def create(name: str, settings: Mapping[str, str], study: Study) -> PbtSuggester:
    return PbtSuggester(study, parse_settings(settings))


@dataclass(frozen=True)
class _Member:
    """The latest trial of one member of a generation."""

    trial: Trial

    @property
    def good(self) -> bool:
        t = self.trial
        return t.state.completed and t.objective is not None and math.isfinite(t.objective)

    @property
    def failed(self) -> bool:
        return self.trial.state.finished and not self.good


class PbtSuggester:
    """A :class:`~tuner.algorithms.base.Suggester` for population-based training.

    A pure function of the history (and, with ``random_state``, reproducible): see the module.
    Thread-safe (stateless).
    """

    def __init__(self, study: Study, config: PbtSettings) -> None:
        self._parameters = list(study.space)
        self._minimize = study.objective.minimize
        self._config = config
        self._lock = threading.Lock()

    @property
    def algorithm(self) -> str:
        return "pbt"

    def suggest(self, history: Sequence[Trial], count: int) -> list[Suggestion]:
        if count <= 0:
            return []
        with self._lock:
            return self._suggest(history, count)

    def _suggest(self, history: Sequence[Trial], count: int) -> list[Suggestion]:
        generations = self._generations(history)
        current = max(generations, default=0)
        members = generations.get(current, {})
        n = self._config.n_population
        if len(members) == n and all(m.good for m in members.values()):
            current, previous, members = current + 1, members, {}
        else:
            previous = generations.get(current - 1, {})
        out: list[Suggestion] = []
        # Failed members first (run again as they were), then the members not yet created.
        for member in sorted(m for m in members if members[m].failed):
            trial = members[member].trial
            out.append(Suggestion(dict(trial.parameters), dict(trial.attrs)))
        for member in range(n):
            if member not in members:
                out.append(self._new_member(current, member, previous))
        return out[:count]

    def _generations(self, history: Sequence[Trial]) -> dict[int, dict[int, _Member]]:
        """Generation -> member -> its latest trial (trials without PBT attrs are ignored)."""
        out: dict[int, dict[int, _Member]] = {}
        names = {p.name for p in self._parameters}
        for trial in history:
            generation, member = trial.attrs.get(GENERATION), trial.attrs.get(MEMBER)
            if not isinstance(generation, int) or not isinstance(member, int):
                continue
            if not 0 <= member < self._config.n_population or not names <= set(trial.parameters):
                continue
            out.setdefault(generation, {})[member] = _Member(trial)
        return out

    def _rng(self, generation: int, member: int) -> random.Random:
        rs = self._config.random_state
        # A text seed is hashed (SHA-512) by random.Random: stable across processes.
        return random.Random(None if rs is None else f"pbt/{rs}/{generation}/{member}")

    def _new_member(
        self, generation: int, member: int, previous: Mapping[int, _Member]
    ) -> Suggestion:
        rng = self._rng(generation, member)
        attrs: dict[str, Any] = {GENERATION: generation, MEMBER: member}
        if generation == 0 or member not in previous:
            return Suggestion({p.name: _sample(p, rng) for p in self._parameters}, attrs)
        ranked = sorted(
            previous,
            key=lambda m: float(previous[m].trial.objective or 0.0),
            reverse=not self._minimize,
        )  # best first
        k = int(len(ranked) * self._config.truncation_threshold)
        own = previous[member].trial
        if k > 0 and member in ranked[len(ranked) - k :]:
            donor = previous[rng.choice(ranked[:k])].trial
            attrs[PARENT] = donor.name
            return Suggestion(dict(donor.parameters), attrs)
        attrs[PARENT] = own.name
        return Suggestion(
            {p.name: self._explore(p, own.parameters[p.name], rng) for p in self._parameters},
            attrs,
        )

    def _explore(self, p: Parameter, value: ParamValue, rng: random.Random) -> ParamValue:
        probability = self._config.resample_probability
        if probability is not None:
            return _sample(p, rng) if rng.random() < probability else value
        return _perturb(p, value, rng)


def _snap(p: Parameter, x: float) -> ParamValue:
    """``x`` clipped to the parameter's range and snapped to its grid, in its type."""
    x = min(max(x, p.low), p.high)
    if p.step:
        k = min(math.floor((x - p.low) / p.step + 0.5), math.floor((p.high - p.low) / p.step))
        x = p.low + k * p.step
    return p.convert(round(x) if p.kind is ParameterKind.INT else x)


def _sample(p: Parameter, rng: random.Random) -> ParamValue:
    """A value drawn uniformly from the feasible space (on a log scale for log distributions)."""
    if not p.kind.numeric:
        return rng.choice(p.choices)
    if p.kind is ParameterKind.INT and not p.log:
        step = int(p.step or 1)
        return int(p.low) + step * rng.randint(0, (int(p.high) - int(p.low)) // step)
    if p.log:
        return _snap(p, math.exp(rng.uniform(math.log(p.low), math.log(p.high))))
    return _snap(p, rng.uniform(p.low, p.high))


def _perturb(p: Parameter, value: ParamValue, rng: random.Random) -> ParamValue:
    """Katib's perturbation: x0.8 or x1.2 for numbers, a neighbouring choice for lists."""
    if not p.kind.numeric:
        index = p.choices.index(value) if value in p.choices else 0
        return p.choices[(index + rng.choice((-1, 1))) % len(p.choices)]
    assert not isinstance(value, str)
    factor = rng.choice((0.8, 1.2))
    new = _snap(p, float(value) * factor)
    if new == value and p.kind is ParameterKind.INT:
        # x0.8 or x1.2 of a small integer rounds back to it: move one step instead.
        step = int(p.step or 1)
        new = _snap(p, float(value) + (step if factor > 1 else -step))
    return new
