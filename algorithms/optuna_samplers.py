"""Katib algorithms backed by Optuna samplers.

``algorithmName`` → Optuna sampler, with the settings accepted (Katib's names):

* ``random`` → ``RandomSampler``: ``random_state``.
* ``tpe`` → ``TPESampler(multivariate=False)``: ``random_state``, ``n_startup_trials``
  (default 10), ``n_ei_candidates`` (or hyperopt's spelling ``n_EI_candidates``; default 24),
  ``gamma``, ``prior_weight``.
* ``multivariate-tpe`` → ``TPESampler(multivariate=True)``: as ``tpe``.
* ``cmaes`` → ``CmaEsSampler`` (needs the ``cmaes`` package): ``random_state``, ``sigma``,
  ``restart_strategy``.
* ``sobol`` → ``QMCSampler(qmc_type="sobol")``: ``random_state``.
* ``bayesianoptimization`` → ``GPSampler`` (needs torch: ``pip install 'tuner[gp]'``):
  ``random_state``, ``n_initial_points``, ``base_estimator``, ``acq_func``, ``acq_optimizer``.
  Past :data:`GP_MAX_TRIALS` trials it suggests with multivariate TPE instead, logs that once,
  and records it in each such trial's attrs (``sampler``): it never slows or times out silently.

How the search space is mapped (and ``normal``/``logNormal`` treated as linear/log uniform) is
described in :mod:`tuner.algorithms.space`.

One study per suggester, fed incrementally
------------------------------------------
Each :class:`OptunaSuggester` keeps one Optuna study in an ``InMemoryStorage``. It starts empty
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

Seeding, and no repeats after a restart
---------------------------------------
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

Deviations from Katib, and Optuna limits
----------------------------------------
* ``tpe`` accepts both Katib back-ends' settings: hyperopt's (``n_EI_candidates``, ``gamma``,
  ``prior_weight``) and Optuna's (``n_startup_trials``, ``n_ei_candidates``). ``gamma`` keeps
  hyperopt's meaning: the best ``min(ceil(gamma * sqrt(n)), 25)`` of ``n`` trials form the
  "good" group. Optuna 4.9 deprecated ``gamma`` and ``prior_weight`` (and CMA-ES's ``sigma0``);
  they are passed on with that warning silenced, and rejected at validation by an Optuna that
  no longer accepts them.
* ``cmaes``: ``sigma`` is the initial step size in the normalised space where every parameter
  spans ``[0, 1]`` (Optuna's default is 1/6). ``restart_strategy`` accepts ``none``, ``ipop``
  and ``bipop``, but Optuna dropped restarts in 4.4: ``ipop``/``bipop`` are logged and have no
  effect. Categorical and discrete parameters are sampled independently at random (Optuna's
  fallback); at least one ``int`` or ``double`` parameter is required (Katib's Goptuna service
  asks for two). After a restart CMA-ES starts a new search distribution, because Optuna keeps
  the CMA-ES state on the trials of the in-memory study.
* ``bayesianoptimization`` is Optuna's Gaussian-process sampler, not scikit-optimize: only
  ``base_estimator: GP`` is accepted; Optuna maximises log expected improvement, so ``acq_func``
  accepts ``EI`` and the default ``gp_hedge`` and rejects ``LCB``, ``PI``, ``EIps`` and ``PIps``;
  ``acq_optimizer`` (``auto``, ``sampling``, ``lbfgs``) is accepted and has no effect (Optuna
  samples, then refines with L-BFGS-B). ``n_initial_points`` (default 10) is the number of
  completed trials before the GP is used, at least 1.
* ``sobol`` takes ``random_state`` (Katib's Sobol takes no settings).
* A random or model-based sampler may repeat a point of a small discrete space; only ``grid``
  guarantees distinct points.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import math
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import (
    BaseSampler,
    CmaEsSampler,
    GPSampler,
    QMCSampler,
    RandomSampler,
    TPESampler,
)
from optuna.study import StudyDirection
from optuna.trial import TrialState as OptunaState

from tuner.algorithms import space
from tuner.algorithms.base import Suggestion
from tuner.space import Study
from tuner.trials import Trial

__all__ = ["ALGORITHMS", "OptunaSuggester", "create", "validate_settings"]

logger = logging.getLogger(__name__)

GP_MAX_TRIALS = 1000
"""Past this many trials, ``bayesianoptimization`` suggests with multivariate TPE (logged, and
recorded in the trial's attrs): Optuna's GP costs O(n^3) per suggestion, seconds at a few
thousand trials."""
# Optuna announces every in-memory study on stderr; a service makes one per experiment.
optuna.logging.set_verbosity(optuna.logging.WARNING)

ALGORITHMS = ("random", "tpe", "multivariate-tpe", "cmaes", "sobol", "bayesianoptimization")

# ---------------------------------------------------------------------------------------------
# Settings


def _int_setting(minimum: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            n = int(value.strip())
        except ValueError:
            raise ValueError(f"must be an integer >= {minimum}, got {value!r}") from None
        if n < minimum:
            raise ValueError(f"must be an integer >= {minimum}, got {value!r}")
        return n

    return parse


def _float_setting(low: float, high: float | None, description: str) -> Callable[[str], float]:
    """A float in the open interval (low, high), or (low, inf) when ``high`` is None."""

    def parse(value: str) -> float:
        try:
            x = float(value.strip())
        except ValueError:
            raise ValueError(f"must be {description}, got {value!r}") from None
        if not (math.isfinite(x) and x > low and (high is None or x < high)):
            raise ValueError(f"must be {description}, got {value!r}")
        return x

    return parse


def _choice_setting(
    choices: Sequence[str], unsupported: Mapping[str, str] | None = None
) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value in choices:
            return value
        if unsupported and value in unsupported:
            raise ValueError(unsupported[value])
        raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")

    return parse


_GP_ONLY = (
    "only GP is supported: bayesianoptimization runs Optuna's Gaussian-process sampler "
    "(scikit-optimize's RF, ET and GBRT surrogates are not available)"
)
_EI_ONLY = (
    "is not available: Optuna's Gaussian-process sampler maximises (log) expected improvement; "
    "use EI or gp_hedge"
)

_PARSERS: dict[str, Callable[[str], Any]] = {
    "random_state": _int_setting(0),
    "n_startup_trials": _int_setting(0),
    "n_ei_candidates": _int_setting(1),
    "n_EI_candidates": _int_setting(1),
    "gamma": _float_setting(0.0, 1.0, "a number in the open interval (0, 1)"),
    "prior_weight": _float_setting(0.0, None, "a number greater than 0"),
    "sigma": _float_setting(0.0, None, "a number greater than 0"),
    "restart_strategy": _choice_setting(("none", "ipop", "bipop")),
    "n_initial_points": _int_setting(0),
    "base_estimator": _choice_setting(("GP",), {v: _GP_ONLY for v in ("RF", "ET", "GBRT")}),
    "acq_func": _choice_setting(
        ("gp_hedge", "EI"), {v: f"{v} {_EI_ONLY}" for v in ("LCB", "PI", "EIps", "PIps")}
    ),
    "acq_optimizer": _choice_setting(("auto", "sampling", "lbfgs")),
}

_TPE_SETTINGS = (
    "random_state",
    "n_startup_trials",
    "n_ei_candidates",
    "n_EI_candidates",
    "gamma",
    "prior_weight",
)
_SETTINGS: dict[str, tuple[str, ...]] = {
    "random": ("random_state",),
    "tpe": _TPE_SETTINGS,
    "multivariate-tpe": _TPE_SETTINGS,
    "cmaes": ("random_state", "sigma", "restart_strategy"),
    "sobol": ("random_state",),
    "bayesianoptimization": (
        "random_state",
        "n_initial_points",
        "base_estimator",
        "acq_func",
        "acq_optimizer",
    ),
}

# Katib setting -> (Optuna sampler, keyword) for the arguments Optuna has deprecated.
_DEPRECATED_IN_OPTUNA: dict[str, tuple[type[BaseSampler], str]] = {
    "gamma": (TPESampler, "gamma"),
    "prior_weight": (TPESampler, "prior_weight"),
    "sigma": (CmaEsSampler, "sigma0"),
}

# Optional packages an algorithm needs, with the install hint.
_DEPENDENCIES: dict[str, tuple[str, str]] = {
    "cmaes": ("cmaes", "pip install cmaes"),
    "bayesianoptimization": ("torch", "pip install 'tuner[gp]'"),
}


def _accepts(cls: type[BaseSampler], keyword: str) -> bool:
    return keyword in inspect.signature(cls.__init__).parameters


def validate_settings(
    name: str, settings: Mapping[str, str], study: Study
) -> list[tuple[str, str]]:
    """Problems with an Optuna-backed algorithm's settings and search space.

    Returns:
        ``(setting name, message)`` per problem, with ``""`` as the name for problems that
        belong to the algorithm choice as a whole (a missing dependency, an unsupported space).
    """
    if name not in _SETTINGS:
        return [("", f"unknown algorithm {name!r}; known: {', '.join(ALGORITHMS)}")]
    known = _SETTINGS[name]
    problems: list[tuple[str, str]] = []
    for key, value in settings.items():
        if key not in known:
            problems.append((key, f"unknown setting for {name}; known: {', '.join(known)}"))
            continue
        try:
            _PARSERS[key](value)
        except ValueError as e:
            problems.append((key, str(e)))
            continue
        if key in _DEPRECATED_IN_OPTUNA:
            cls, keyword = _DEPRECATED_IN_OPTUNA[key]
            if not _accepts(cls, keyword):
                problems.append(
                    (key, f"not supported by the installed Optuna {optuna.__version__}")
                )
    if "n_ei_candidates" in settings and "n_EI_candidates" in settings:
        problems.append(("n_EI_candidates", "give either n_ei_candidates or n_EI_candidates"))

    if name in _DEPENDENCIES:
        module, hint = _DEPENDENCIES[name]
        if importlib.util.find_spec(module) is None:
            problems.append(("", f"{name} needs the optional dependency {module}: {hint}"))
    problems += [("", message) for message in space.space_problems(study.space)]
    if name == "cmaes" and study.complete and not any(p.kind.numeric for p in study.space):
        problems.append(
            (
                "",
                "cmaes needs at least one int or double parameter (categorical and discrete "
                "parameters are sampled at random)",
            )
        )
    return problems


@dataclass(frozen=True)
class _HyperoptGamma:
    """hyperopt's split: the best ``min(ceil(gamma * sqrt(n)), 25)`` of ``n`` trials are good."""

    gamma: float

    def __call__(self, n: int) -> int:
        return min(math.ceil(self.gamma * math.sqrt(n)), 25)


@dataclass(frozen=True)
class _Config:
    algorithm: str
    random_state: int | None
    settings: dict[str, Any] = field(default_factory=dict)


def _parse(name: str, settings: Mapping[str, str], study: Study) -> _Config:
    problems = validate_settings(name, settings, study)
    if problems:
        raise ValueError(
            f"invalid settings for {name}: "
            + "; ".join(f"{k}: {m}" if k else m for k, m in problems)
        )
    parsed = {key: _PARSERS[key](value) for key, value in settings.items()}
    if "n_EI_candidates" in parsed:
        parsed["n_ei_candidates"] = parsed.pop("n_EI_candidates")
    return _Config(name, parsed.pop("random_state", None), parsed)


def create(name: str, settings: Mapping[str, str], study: Study) -> OptunaSuggester:
    """Build the suggester of a validated spec.

    Raises:
        ValueError: if the settings do not pass :func:`validate_settings`.
    """
    config = _parse(name, settings, study)
    strategy = config.settings.get("restart_strategy", "none")
    if strategy != "none":
        logger.warning(
            "cmaes: restart_strategy=%s has no effect: Optuna's CMA-ES no longer restarts "
            "(removed in Optuna 4.4); the search continues without restarts",
            strategy,
        )
    return OptunaSuggester(study, config)


# ---------------------------------------------------------------------------------------------
# Samplers


class _SobolSampler(QMCSampler):
    """Optuna's Sobol sampler, drawing point ``position`` of the sequence over the whole space.

    ``QMCSampler`` numbers its points with a counter kept in the study, and samples the first
    trial at random; both would make a rebuilt study start the sequence again. Here the index
    comes from the caller and the search space is known up front.
    """

    def __init__(
        self, search_space: Mapping[str, BaseDistribution], position: int, seed: int | None
    ) -> None:
        super().__init__(
            qmc_type="sobol",
            scramble=seed is not None,
            seed=seed,
            warn_asynchronous_seeding=False,
            warn_independent_sampling=False,
        )
        self._fixed_space = {n: d for n, d in search_space.items() if not d.single()}
        self._position = position

    def infer_relative_search_space(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return dict(self._fixed_space)

    def _find_sample_id(
        self, study: optuna.Study, search_space: dict[str, BaseDistribution]
    ) -> int:
        return self._position


def _seed(random_state: int, *salt: int) -> int:
    """A 32-bit seed derived from ``random_state`` and ``salt`` (numpy's ``SeedSequence``)."""
    return int(np.random.SeedSequence([random_state, *salt]).generate_state(1)[0])


@contextmanager
def _quiet_construction() -> Iterator[None]:
    """Silence the warnings Optuna raises for the arguments we pass on purpose.

    Experimental samplers (``QMCSampler``) and the Katib settings mapped to deprecated Optuna
    arguments (see the module docstring) warn on every construction, and a sampler is built per
    suggestion. ``catch_warnings`` swaps the process-wide filters for the construction's
    duration, so a warning another thread raises in that instant may be lost.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings(
            "ignore",
            message=r"`(gamma|prior_weight|sigma0)` has been deprecated",
            category=FutureWarning,
        )
        yield


def _make_sampler(
    config: _Config, search_space: Mapping[str, BaseDistribution], seed: int | None, position: int
) -> BaseSampler:
    s = config.settings
    with _quiet_construction():
        if config.algorithm == "random":
            return RandomSampler(seed=seed)
        if config.algorithm in ("tpe", "multivariate-tpe"):
            kwargs: dict[str, Any] = {}
            if "gamma" in s:
                kwargs["gamma"] = _HyperoptGamma(s["gamma"])
            if "prior_weight" in s:
                kwargs["prior_weight"] = s["prior_weight"]
            return TPESampler(
                seed=seed,
                multivariate=config.algorithm == "multivariate-tpe",
                n_startup_trials=s.get("n_startup_trials", 10),
                n_ei_candidates=s.get("n_ei_candidates", 24),
                **kwargs,
            )
        if config.algorithm == "cmaes":
            kwargs = {"sigma0": s["sigma"]} if "sigma" in s else {}
            return CmaEsSampler(seed=seed, warn_independent_sampling=False, **kwargs)
        if config.algorithm == "sobol":
            scramble_seed = None if config.random_state is None else _seed(config.random_state)
            return _SobolSampler(search_space, position, scramble_seed)
        if config.algorithm == "bayesianoptimization":
            return GPSampler(
                seed=seed,
                n_startup_trials=max(1, s.get("n_initial_points", 10)),
                warn_independent_sampling=False,
            )
    raise AssertionError(config.algorithm)


# ---------------------------------------------------------------------------------------------
# The suggester


@dataclass
class _Fed:
    """What the study knows of one history trial."""

    trial_id: int | None  # None: left out (parameters outside the space)
    finished: bool


def _outcome(trial: Trial) -> tuple[OptunaState, float | None]:
    if not trial.state.finished:
        return OptunaState.RUNNING, None
    value = trial.objective
    if trial.state.completed and value is not None and math.isfinite(value):
        return OptunaState.COMPLETE, float(value)
    return OptunaState.FAIL, None


class OptunaSuggester:
    """A :class:`~tuner.algorithms.base.Suggester` over one incrementally fed Optuna study.

    See the module docstring for the feeding, binding and seeding rules. Thread-safe: calls are
    serialised.
    """

    def __init__(self, study: Study, config: _Config) -> None:
        self._parameters = list(study.space)
        self._space = space.distributions(study.space)
        self._direction = (
            StudyDirection.MINIMIZE if study.objective.minimize else StudyDirection.MAXIMIZE
        )
        self._config = config
        self._gp_capped = False
        self._lock = threading.Lock()
        self._reset()

    @property
    def algorithm(self) -> str:
        return self._config.algorithm

    def _reset(self) -> None:
        self._storage = optuna.storages.InMemoryStorage()
        self._study_id: int = self._storage.create_new_study([self._direction], "tuner")
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
                state, value = _outcome(trial)
                self._set_state(fed.trial_id, state, value)
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
        state, value = _outcome(trial)
        key = space.point_key(self._parameters, trial.parameters)
        pending = self._unclaimed.get(key)
        if pending:
            trial_id = pending.pop(0)
            if not pending:
                del self._unclaimed[key]
            if state is not OptunaState.RUNNING:
                self._set_state(trial_id, state, value)
            return _Fed(trial_id, state is not OptunaState.RUNNING)
        try:
            frozen = optuna.trial.create_trial(
                state=state, value=value, params=params, distributions=self._space
            )
        except ValueError as e:
            logger.warning("trial %s: not usable by %s: %s", trial.name, self.algorithm, e)
            return _Fed(None, True)
        trial_id = self._storage.create_new_trial(self._study_id, template_trial=frozen)
        return _Fed(trial_id, state is not OptunaState.RUNNING)

    def _set_state(self, trial_id: int, state: OptunaState, value: float | None) -> None:
        self._storage.set_trial_state_values(trial_id, state, None if value is None else [value])

    # -- asking

    def _ask(self, study: optuna.Study, position: int) -> Suggestion:
        rs = self._config.random_state
        seed = None if rs is None else _seed(rs, position)
        config, attrs = self._config, {}
        if config.algorithm == "bayesianoptimization" and position >= GP_MAX_TRIALS:
            # A GP's cost grows with the cube of the trials; past the cap, TPE takes over.
            if not self._gp_capped:
                logger.warning(
                    "bayesianoptimization: %d trials reached the GP cap (%d); "
                    "suggesting with multivariate TPE from now on",
                    position,
                    GP_MAX_TRIALS,
                )
                self._gp_capped = True
            config = replace(config, algorithm="multivariate-tpe", settings={})
            attrs = {"sampler": f"multivariate-tpe (GP capped at {GP_MAX_TRIALS} trials)"}
        study.sampler = _make_sampler(config, self._space, seed, position)
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
