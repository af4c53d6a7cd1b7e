"""The settings of the Optuna-backed algorithms: Katib's names, one schema, one typed value."""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Mapping
from dataclasses import dataclass

import optuna
from optuna.samplers import BaseSampler, CmaEsSampler, TPESampler

from tuner.algorithms import space
from tuner.algorithms.multi_objective import SCHEMAS as _MULTI_SCHEMAS
from tuner.algorithms.settings import Problems, Schema, Setting, at_least, one_of, open_interval
from tuner.space import Study

__all__ = ["ALGORITHMS", "SCHEMAS", "SamplerSettings", "parse_settings", "validate_settings"]

ALGORITHMS = (
    "random",
    "tpe",
    "multivariate-tpe",
    "cmaes",
    "sobol",
    "bayesianoptimization",
    "gp",
    "nsga2",
    "nsga3",
    "motpe",
)

_GBRT = (
    "GBRT is not available: scikit-optimize 0.10's gradient-boosting surrogate does not run "
    "with numpy 2; use GP, RF or ET"
)
_PER_SECOND = (
    "is not available: it needs each trial's duration told with its objective; "
    "use gp_hedge, EI, LCB or PI"
)
_SAMPLING_ONLY = "RF and ET surrogates have no gradient: use acq_optimizer auto or sampling"

_RANDOM_STATE = Setting("random_state", at_least(0), description="seed of every draw")
_TPE = (
    _RANDOM_STATE,
    Setting("n_startup_trials", at_least(0), 10, description="random trials before TPE"),
    Setting("n_ei_candidates", at_least(1), 24, description="candidates per suggestion"),
    Setting("n_EI_candidates", at_least(1), description="hyperopt's n_ei_candidates"),
    Setting(
        "gamma",
        open_interval(0.0, 1.0, "a number in the open interval (0, 1)"),
        description="hyperopt's share of good trials",
    ),
    Setting(
        "prior_weight",
        open_interval(0.0, None, "a number greater than 0"),
        description="weight of the prior",
    ),
)

SCHEMAS: dict[str, Schema] = {
    "random": Schema("random", (_RANDOM_STATE,)),
    "tpe": Schema("tpe", _TPE),
    "multivariate-tpe": Schema("multivariate-tpe", _TPE),
    "motpe": Schema("motpe", _TPE),
    **_MULTI_SCHEMAS,
    "cmaes": Schema(
        "cmaes",
        (
            _RANDOM_STATE,
            Setting(
                "sigma",
                open_interval(0.0, None, "a number greater than 0"),
                description="initial step size in the normalised space",
            ),
            Setting("restart_strategy", one_of(("none", "ipop", "bipop")), "none"),
        ),
    ),
    "sobol": Schema("sobol", (_RANDOM_STATE,)),
    "bayesianoptimization": Schema(
        "bayesianoptimization",
        (
            _RANDOM_STATE,
            Setting("base_estimator", one_of(("GP", "RF", "ET"), {"GBRT": _GBRT}), "GP"),
            Setting("n_initial_points", at_least(0), 10, description="random trials first"),
            Setting(
                "acq_func",
                one_of(
                    ("gp_hedge", "EI", "LCB", "PI"),
                    {v: f"{v} {_PER_SECOND}" for v in ("EIps", "PIps")},
                ),
                "gp_hedge",
            ),
            Setting("acq_optimizer", one_of(("auto", "sampling", "lbfgs")), "auto"),
        ),
    ),
    "gp": Schema(
        "gp",
        (
            _RANDOM_STATE,
            Setting("n_initial_points", at_least(0), 10, description="trials before the GP"),
        ),
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
    "bayesianoptimization": ("skopt", "pip install scikit-optimize"),
    "gp": ("torch", "pip install 'tuner[gp]'"),
}


def _accepts(cls: type[BaseSampler], keyword: str) -> bool:
    return keyword in inspect.signature(cls.__init__).parameters


@dataclass(frozen=True)
class SamplerSettings:
    """The typed settings of one Optuna-backed algorithm; validated on construction.

    ``algorithmName`` → Optuna sampler, with the settings accepted (Katib's names):

    * ``random`` → ``RandomSampler``: ``random_state``.
    * ``tpe`` → ``TPESampler(multivariate=False)``: ``random_state``, ``n_startup_trials``
      (default 10), ``n_ei_candidates`` (or hyperopt's spelling ``n_EI_candidates``; default 24),
      ``gamma``, ``prior_weight``.
    * ``multivariate-tpe`` → ``TPESampler(multivariate=True)``: as ``tpe``.
    * ``cmaes`` → ``CmaEsSampler`` (needs the ``cmaes`` package): ``random_state``, ``sigma``,
      ``restart_strategy``.
    * ``sobol`` → ``QMCSampler(qmc_type="sobol")``: ``random_state``.
    * ``bayesianoptimization`` → scikit-optimize's ``Optimizer``, as Katib runs it
      (:class:`~tuner.algorithms.skopt_sampler.SkoptSampler`): ``random_state``,
      ``base_estimator`` (default ``GP``), ``n_initial_points`` (default 10), ``acq_func``
      (default ``gp_hedge``), ``acq_optimizer`` (default ``auto``).
    * ``gp`` (tuner's own name) → Optuna's ``GPSampler`` (needs torch: ``pip install
      'tuner[gp]'``): ``random_state``, ``n_initial_points`` (default 10).

    Past :data:`~tuner.algorithms.optuna_suggester.GP_MAX_TRIALS` trials, ``bayesianoptimization``
    and ``gp`` suggest with multivariate TPE instead, log that once, and record it in each such
    trial's attrs (``sampler``): they never slow down or time out silently.

    How the search space is mapped (and ``normal``/``logNormal`` treated as linear/log uniform) is
    described in :mod:`tuner.algorithms.space`.

    Deviations from Katib, and Optuna limits:

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
    * ``bayesianoptimization`` rejects ``base_estimator: GBRT`` (scikit-optimize 0.10's
      gradient-boosting surrogate fails with numpy 2) and ``acq_func`` ``EIps``/``PIps`` (they
      need trial durations told with the objective); ``RF``/``ET`` with ``acq_optimizer: lbfgs``
      are rejected at validation (scikit-optimize refuses them when asked). Trials still running
      are told with the best value so far (scikit-optimize's ``cl_min`` lie).
    * ``gp``: ``n_initial_points`` is the number of completed trials before the GP is used, at
      least 1.
    * ``nsga2``, ``nsga3``, ``motpe``: several objectives, see
      :mod:`tuner.algorithms.multi_objective` (``population_size``, ``crossover_prob``,
      ``swapping_prob`` are the genetic algorithms' settings).
    * ``sobol`` takes ``random_state`` (Katib's Sobol takes no settings).
    * A random or model-based sampler may repeat a point of a small discrete space; only ``grid``
      guarantees distinct points.

    Args:
        algorithm: the Katib ``algorithmName`` (one of :data:`ALGORITHMS`).
        random_state: seeds every draw; ``None`` for fresh entropy.
        n_startup_trials: ``tpe``: random trials before the model is used.
        n_ei_candidates: ``tpe``: candidates scored per suggestion.
        gamma: ``tpe``: hyperopt's share of "good" trials, or ``None`` for Optuna's default.
        prior_weight: ``tpe``: weight of the prior, or ``None`` for Optuna's default.
        sigma: ``cmaes``: the initial step size, or ``None`` for Optuna's default.
        restart_strategy: ``cmaes``: ``none``, ``ipop`` or ``bipop`` (no effect, see
            :mod:`tuner.algorithms.optuna_samplers`).
        n_initial_points: ``bayesianoptimization``, ``gp``: completed trials before the model
            is used.
        base_estimator: ``bayesianoptimization``: ``GP``, ``RF`` or ``ET``.
        acq_func: ``bayesianoptimization``: ``gp_hedge``, ``EI``, ``LCB`` or ``PI``.
        acq_optimizer: ``bayesianoptimization``: ``auto``, ``sampling`` or ``lbfgs``.

    Raises:
        ValueError: a value is out of its bounds.
    """

    algorithm: str
    random_state: int | None = None
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    gamma: float | None = None
    prior_weight: float | None = None
    sigma: float | None = None
    restart_strategy: str = "none"
    n_initial_points: int = 10
    base_estimator: str = "GP"
    acq_func: str = "gp_hedge"
    acq_optimizer: str = "auto"
    population_size: int = 50
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algorithm!r}")
        if self.random_state is not None and self.random_state < 0:
            raise ValueError("random_state must be >= 0")
        if self.n_startup_trials < 0 or self.n_ei_candidates < 1 or self.n_initial_points < 0:
            raise ValueError("n_startup_trials, n_initial_points >= 0 and n_ei_candidates >= 1")
        if self.gamma is not None and not 0 < self.gamma < 1:
            raise ValueError("gamma must lie in (0, 1)")
        for name in ("prior_weight", "sigma"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be greater than 0")
        if self.restart_strategy not in ("none", "ipop", "bipop"):
            raise ValueError("restart_strategy must be none, ipop or bipop")


def validate_settings(name: str, settings: Mapping[str, str], study: Study) -> Problems:
    """Problems with an Optuna-backed algorithm's settings and search space.

    Returns:
        ``(setting name, message)`` per problem, with ``""`` as the name for problems that
        belong to the algorithm choice as a whole (a missing dependency, an unsupported space).
    """
    return _parse(name, settings, study)[1]


def _parse(
    name: str, settings: Mapping[str, str], study: Study
) -> tuple[SamplerSettings | None, Problems]:
    schema = SCHEMAS.get(name)
    if schema is None:
        return None, [("", f"unknown algorithm {name!r}; known: {', '.join(ALGORITHMS)}")]
    values, problems = schema.parse(settings)
    for key in [k for k in settings if k in values and k in _DEPRECATED_IN_OPTUNA]:
        cls, keyword = _DEPRECATED_IN_OPTUNA[key]
        if not _accepts(cls, keyword):
            problems.append((key, f"not supported by the installed Optuna {optuna.__version__}"))
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
    if values.get("base_estimator") in ("RF", "ET") and values.get("acq_optimizer") == "lbfgs":
        problems.append(("acq_optimizer", _SAMPLING_ONLY))
    if problems:
        return None, problems
    if "n_EI_candidates" in values:
        values["n_ei_candidates"] = values.pop("n_EI_candidates")
    return SamplerSettings(algorithm=name, **values), []


def parse_settings(name: str, settings: Mapping[str, str], study: Study) -> SamplerSettings:
    """The typed settings of a validated choice.

    Raises:
        ValueError: if the settings do not pass :func:`validate_settings`.
    """
    parsed, problems = _parse(name, settings, study)
    if parsed is None:
        raise ValueError(
            f"invalid settings for {name}: "
            + "; ".join(f"{k}: {m}" if k else m for k, m in problems)
        )
    return parsed
