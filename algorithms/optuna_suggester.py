"""An Optuna study per suggester, fed incrementally from the trial history."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.samplers import RandomSampler
from optuna.trial import TrialState as OptunaState

from tuner.algorithms import space
from tuner.algorithms.base import Suggestion
from tuner.algorithms.multi_objective import (
    directions,
    generation_attrs,
    outcome,
    restored_generation,
)
from tuner.algorithms.sampler_factory import make_sampler, seed
from tuner.algorithms.sampler_settings import SamplerSettings
from tuner.space import Study
from tuner.trials import Trial

__all__ = ["GP_MAX_TRIALS", "OptunaSuggester"]

logger = logging.getLogger(__name__)

GP_MAX_TRIALS = 1000
"""Past this many trials, ``bayesianoptimization`` and ``gp`` suggest with multivariate TPE
(logged, and recorded in the trial's attrs): a GP costs O(n^3) per suggestion, seconds at a
few thousand trials."""
# Optuna announces every in-memory study on stderr; a service makes one per experiment.
optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass
class _Fed:
    """What the study knows of one history trial."""

    trial_id: int | None  # None: left out (parameters outside the space)
    finished: bool


class OptunaSuggester:
    """A :class:`~tuner.algorithms.base.Suggester` over one incrementally fed Optuna study.

    Thread-safe: calls are serialised.

    One study per suggester, fed incrementally:

    Each suggester keeps one Optuna study in an ``InMemoryStorage``. It starts empty
    and is filled from ``history`` on the first call, which is all a restarted process needs. On
    every call the suggester walks ``history`` and only acts on what is new to it:

    * a trial it has not seen is added once: ``Succeeded``/``EarlyStopped`` with a finite objective
      as ``COMPLETE`` (Katib counts early-stopped trials too), every other finished trial
      (``Failed``, ``MetricsUnavailable``, ``Killed``, or finished without a usable objective) as
      ``FAIL``, and ``Created``/``Running`` trials as ``RUNNING``, so that samplers see them as
      pending (TPE's constant liar, the GP's pending points);
    * a trial it fed as ``RUNNING`` and that has finished since is moved to its final state;
    * a trial whose parameters are outside the current space (the spec changed) is logged once and
      left out.

    A suggestion is an Optuna trial asked from the study. When the trial made from it shows up in
    ``history`` (recognised by its parameter values), the asked Optuna trial is *bound* to it rather
    than a copy added: samplers that keep state on their own trials (CMA-ES stores its generation
    there) keep working. Suggestions that never became trials by the next call are marked ``FAIL``,
    which every sampler here ignores. So the study holds what ``history`` holds, and the per-call
    cost is a dictionary look-up per trial plus the sampler's own cost. The study is rebuilt from
    scratch if trials ever disappear from ``history``.

    Seeding, and no repeats after a restart:

    A restart builds a new suggester from the stored history. A sampler simply re-created with
    ``seed=random_state`` would then replay the draws it made before the restart, and suggest points
    already tried. Instead, each suggestion gets a fresh sampler (cheap to build) whose seed is
    derived from ``(random_state, position)``, where ``position = len(history) + k`` for the
    ``k``-th suggestion of the call. With ``random_state`` set, suggestions are therefore a pure
    function of (settings, history, count): two suggesters given the same history agree, and a
    rebuilt suggester continues the sequence instead of restarting it. Without ``random_state``,
    every sampler is seeded from fresh entropy.

    Sobol points are indexed by the same ``position``: the ``n``-th trial of an experiment gets the
    ``n``-th point of the sequence whether or not the process restarted in between. With
    ``random_state`` the sequence is scrambled with that seed; without it the plain (unscrambled)
    Sobol sequence is used (Optuna's default), which starts at the lower corner of the space.
    """

    def __init__(self, study: Study, config: SamplerSettings) -> None:
        self._parameters = list(study.space)
        self._space = space.distributions(study.space)
        self._study_spec = study
        self._directions = directions(study)
        self._config = config
        self._gp_capped = False
        self._lock = threading.Lock()
        self._reset()

    @property
    def algorithm(self) -> str:
        return self._config.algorithm

    def _reset(self) -> None:
        self._storage = optuna.storages.InMemoryStorage()
        self._study_id: int = self._storage.create_new_study(self._directions, "tuner")
        self._study: optuna.Study = optuna.load_study(
            study_name="tuner", storage=self._storage, sampler=RandomSampler()
        )
        self._known: dict[str, _Fed] = {}
        # The history is append-only and in creation order: the first ``_fed_count`` trials
        # are in the study, and ``_open`` holds the positions of those not yet finished.
        self._fed_count = 0
        self._open: dict[int, str] = {}
        # Asked Optuna trials not yet seen in the history, by parameter key, oldest first.
        self._unclaimed: dict[tuple[Any, ...], list[int]] = {}

    def suggest(self, history: Sequence[Trial], count: int) -> list[Suggestion]:
        if count <= 0:
            return []
        with self._lock:
            study = self._sync(history)
            return [self._ask(study, len(history) + k) for k in range(count)]

    # -- feeding

    def _sync(self, history: Sequence[Trial]) -> optuna.Study:
        """Feed what changed since the last call: O(new + unfinished trials), not O(history)."""
        if not self._extends_fed(history):
            logger.info("the history is not the one fed; rebuilding the %s study", self.algorithm)
            self._reset()
        study = self._study
        for position, name in list(self._open.items()):
            trial = history[position]
            if trial.state.finished:
                fed = self._known[name]
                assert fed.trial_id is not None
                self._set_state(fed.trial_id, *outcome(trial, self._study_spec))
                fed.finished = True
                del self._open[position]
        for position in range(self._fed_count, len(history)):
            trial = history[position]
            fed = self._add(trial)
            self._known[trial.name] = fed
            if not fed.finished:
                self._open[position] = trial.name
        self._fed_count = len(history)
        # Suggestions that did not become trials: out of the way of every sampler.
        for trial_ids in self._unclaimed.values():
            for trial_id in trial_ids:
                self._storage.set_trial_state_values(trial_id, OptunaState.FAIL)
        self._unclaimed.clear()
        return study

    def _extends_fed(self, history: Sequence[Trial]) -> bool:
        """Whether ``history`` starts with the trials already fed (checked at the ends only)."""
        count = self._fed_count
        if count == 0:
            return True
        if len(history) < count:
            return False
        last = history[count - 1].name
        return self._known.get(last) is not None and all(
            history[p].name == n for p, n in self._open.items()
        )

    def _add(self, trial: Trial) -> _Fed:
        params = space.optuna_params(self._parameters, self._space, trial.parameters)
        if params is None:
            logger.warning(
                "trial %s: parameters %s are not in the current search space; %s ignores it",
                trial.name,
                trial.parameters,
                self.algorithm,
            )
            return _Fed(None, True)
        state, values, constraints = outcome(trial, self._study_spec)
        key = space.point_key(self._parameters, trial.parameters)
        pending = self._unclaimed.get(key)
        if pending:
            trial_id = pending.pop(0)
            if not pending:
                del self._unclaimed[key]
            if state is not OptunaState.RUNNING:
                self._set_state(trial_id, state, values, constraints)
            return _Fed(trial_id, state is not OptunaState.RUNNING)
        try:
            frozen = optuna.trial.create_trial(
                state=state,
                values=values,
                params=params,
                distributions=self._space,
                system_attrs={**constraints, **restored_generation(self.algorithm, trial)} or None,
            )
        except ValueError as e:
            logger.warning("trial %s: not usable by %s: %s", trial.name, self.algorithm, e)
            return _Fed(None, True)
        trial_id = self._storage.create_new_trial(self._study_id, template_trial=frozen)
        return _Fed(trial_id, state is not OptunaState.RUNNING)

    def _set_state(
        self,
        trial_id: int,
        state: OptunaState,
        values: list[float] | None,
        constraints: dict[str, float],
    ) -> None:
        for key, value in constraints.items():  # first: a finished trial's are read-only
            self._storage.set_trial_system_attr(trial_id, key, value)
        self._storage.set_trial_state_values(trial_id, state, values)

    # -- asking

    def _ask(self, study: optuna.Study, position: int) -> Suggestion:
        rs = self._config.random_state
        sampler_seed = None if rs is None else seed(rs, position)
        config, attrs = self._config, {}
        if config.algorithm in ("bayesianoptimization", "gp") and position >= GP_MAX_TRIALS:
            # A GP's cost grows with the cube of the trials; past the cap, TPE takes over.
            if not self._gp_capped:
                logger.warning(
                    "%s: %d trials reached the GP cap (%d); "
                    "suggesting with multivariate TPE from now on",
                    config.algorithm,
                    position,
                    GP_MAX_TRIALS,
                )
                self._gp_capped = True
            config = SamplerSettings("multivariate-tpe", random_state=rs)
            attrs = {"sampler": f"multivariate-tpe (GP capped at {GP_MAX_TRIALS} trials)"}
        study.sampler = make_sampler(config, self._space, sampler_seed, position)
        try:
            trial = study.ask(fixed_distributions=self._space)
        except Exception:
            self._fail_orphans()
            raise
        parameters = {p.name: p.convert(trial.params[p.name]) for p in self._parameters}
        trial_id = self._storage.get_trial_id_from_study_id_trial_number(
            self._study_id, trial.number
        )
        self._unclaimed.setdefault(space.point_key(self._parameters, parameters), []).append(
            trial_id
        )
        attrs.update(
            generation_attrs(self.algorithm, self._storage.get_trial_system_attrs(trial_id))
        )
        return Suggestion(parameters=parameters, attrs=attrs)

    def _fail_orphans(self) -> None:
        """After a failed ask: fail the half-made trial so it does not stay pending forever."""
        tracked = {f.trial_id for f in self._known.values()}
        tracked.update(i for ids in self._unclaimed.values() for i in ids)
        for t in self._storage.get_all_trials(
            self._study_id, deepcopy=False, states=(OptunaState.RUNNING,)
        ):
            trial_id = self._storage.get_trial_id_from_study_id_trial_number(
                self._study_id, t.number
            )
            if trial_id not in tracked:
                self._storage.set_trial_state_values(trial_id, OptunaState.FAIL)
