"""``bayesianoptimization`` as Katib runs it: scikit-optimize's ``Optimizer`` behind an Optuna
sampler.

Katib's ``bayesianoptimization`` service builds a ``skopt.Optimizer`` from the experiment's
settings, tells it the completed trials and asks it for new points. :class:`SkoptSampler` does
the same inside :class:`~tuner.algorithms.optuna_suggester.OptunaSuggester`, so the history
feeding, seeding and restart rules of the other Optuna-backed algorithms apply unchanged:

* until ``n_initial_points`` trials have completed, points are drawn at random (Optuna's
  ``RandomSampler``, seeded like every other suggestion);
* then a fresh ``skopt.Optimizer`` (``base_estimator``, ``acq_func``, ``acq_optimizer``, seeded
  from the suggestion's seed) is told every completed trial and asked for one point. Trials still
  running are told with the best value so far (scikit-optimize's own ``cl_min`` lie for parallel
  asks), so that parallel suggestions spread out instead of piling onto one point.

scikit-optimize minimises: a maximised objective is told negated. Search space mapping:
``double`` → ``Real`` (``log-uniform`` prior for log distributions; a ``step`` grid is sampled
continuously and snapped), ``int`` → ``Integer`` (a ``step`` other than 1 as the index of the grid
point), ``discrete`` and ``categorical`` → ``Categorical``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

__all__ = ["SkoptSampler"]


class SkoptSampler(BaseSampler):
    """An Optuna sampler asking scikit-optimize, with Katib's ``bayesianoptimization`` settings.

    Args:
        search_space: the Optuna distributions of the whole space (single-valued ones are left to
            the independent sampler).
        base_estimator: ``GP``, ``RF`` or ``ET`` (scikit-optimize's surrogate models).
        n_initial_points: completed trials before the model is used (random points until then).
        acq_func: ``gp_hedge``, ``EI``, ``LCB`` or ``PI``.
        acq_optimizer: ``auto``, ``sampling`` or ``lbfgs``.
        seed: this suggestion's seed, or ``None`` for fresh entropy.
    """

    def __init__(
        self,
        search_space: Mapping[str, BaseDistribution],
        *,
        base_estimator: str = "GP",
        n_initial_points: int = 10,
        acq_func: str = "gp_hedge",
        acq_optimizer: str = "auto",
        seed: int | None = None,
    ) -> None:
        self._space = {n: d for n, d in search_space.items() if not d.single()}
        self._base_estimator = base_estimator
        self._n_initial_points = n_initial_points
        self._acq_func = acq_func
        self._acq_optimizer = acq_optimizer
        self._seed = seed
        self._random = RandomSampler(seed=seed)

    def reseed_rng(self) -> None:
        self._random.reseed_rng()

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return dict(self._space)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        names = list(search_space)
        complete = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if all(n in t.params for n in names) and t.value is not None
        ]
        if not complete or len(complete) < self._n_initial_points:
            return {}  # the random start: sample_independent draws every parameter
        sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
        xs = [_point(search_space, t.params) for t in complete]
        ys = [sign * float(t.value) for t in complete if t.value is not None]
        pending = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if t.number != trial.number and all(n in t.params for n in names)
        ]
        xs += [_point(search_space, t.params) for t in pending]
        ys += [min(ys)] * len(pending)
        # Imported here: scikit-optimize brings scikit-learn, seconds to import.
        from sklearn.exceptions import ConvergenceWarning
        from skopt import Optimizer
        from threadpoolctl import threadpool_limits

        # One BLAS thread: the fits are small, and on a busy machine BLAS threads spinning for
        # cores cost several times the work itself (3 s against 11 s for 12 suggestions).
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            # A repeated point makes skopt warn and draw at random, which is what we want;
            # the GP's hyper-parameter fit may not converge on a few noisy points.
            warnings.filterwarnings("ignore", category=UserWarning, module="skopt")
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            optimizer = Optimizer(
                [_dimension(d) for d in search_space.values()],
                base_estimator=self._base_estimator,
                n_initial_points=0,
                acq_func=self._acq_func,
                acq_optimizer=self._acq_optimizer,
                random_state=self._seed,
            )
            optimizer.tell(xs, ys)
            asked = optimizer.ask()
        return {
            name: _value(dist, x)
            for (name, dist), x in zip(search_space.items(), asked, strict=True)
        }

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)


def _dimension(dist: BaseDistribution) -> Any:
    """The scikit-optimize dimension of one Optuna distribution."""
    from skopt.space import Categorical, Integer, Real

    if isinstance(dist, CategoricalDistribution):
        return Categorical(list(range(len(dist.choices))), transform="onehot")
    if isinstance(dist, IntDistribution):
        if dist.step != 1:
            return Integer(0, (dist.high - dist.low) // dist.step)
        return Integer(dist.low, dist.high, prior="log-uniform" if dist.log else "uniform")
    assert isinstance(dist, FloatDistribution)
    return Real(dist.low, dist.high, prior="log-uniform" if dist.log else "uniform")


def _point(space: Mapping[str, BaseDistribution], params: Mapping[str, Any]) -> list[Any]:
    """A trial's parameters as a scikit-optimize point (the inverse of :func:`_value`)."""
    point: list[Any] = []
    for name, dist in space.items():
        value = params[name]
        if isinstance(dist, CategoricalDistribution):
            point.append(dist.choices.index(value))
        elif isinstance(dist, IntDistribution):
            point.append((int(value) - dist.low) // dist.step if dist.step != 1 else int(value))
        else:
            point.append(float(value))
    return point


def _value(dist: BaseDistribution, x: Any) -> Any:
    """One coordinate of a scikit-optimize point as the distribution's external value."""
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[int(x)]
    if isinstance(dist, IntDistribution):
        if dist.step != 1:
            return dist.low + int(x) * dist.step
        return int(x)
    assert isinstance(dist, FloatDistribution)
    v = float(x)
    if dist.step is not None:
        v = dist.low + round((v - dist.low) / dist.step) * dist.step
    return min(max(v, dist.low), dist.high)
