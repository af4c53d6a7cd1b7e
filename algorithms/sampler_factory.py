"""Optuna samplers built from :class:`~tuner.algorithms.sampler_settings.SamplerSettings`.

A sampler is built per suggestion (cheap), seeded from ``(random_state, position)`` so that a
rebuilt suggester continues a seeded sequence rather than replaying it; see
:class:`~tuner.algorithms.optuna_suggester.OptunaSuggester`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
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

from tuner.algorithms.multi_objective import make_genetic_sampler
from tuner.algorithms.sampler_settings import SamplerSettings
from tuner.algorithms.skopt_sampler import SkoptSampler

__all__ = ["make_sampler", "seed"]


@dataclass(frozen=True)
class _HyperoptGamma:
    """hyperopt's split: the best ``min(ceil(gamma * sqrt(n)), 25)`` of ``n`` trials are good."""

    gamma: float

    def __call__(self, n: int) -> int:
        return min(math.ceil(self.gamma * math.sqrt(n)), 25)


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


def seed(random_state: int, *salt: int) -> int:
    """A 32-bit seed derived from ``random_state`` and ``salt`` (numpy's ``SeedSequence``)."""
    return int(np.random.SeedSequence([random_state, *salt]).generate_state(1)[0])


@contextmanager
def _quiet_construction() -> Iterator[None]:
    """Silence the warnings Optuna raises for the arguments we pass on purpose.

    Experimental samplers (``QMCSampler``) and the Katib settings mapped to deprecated Optuna
    arguments (see :class:`~tuner.algorithms.sampler_settings.SamplerSettings`) warn on every
    construction, and a sampler is built per suggestion. ``catch_warnings`` swaps the process-wide
    filters for the construction's duration, so a warning another thread raises in that instant may
    be lost.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings(
            "ignore",
            message=r"`(gamma|prior_weight|sigma0)` has been deprecated",
            category=FutureWarning,
        )
        yield


def make_sampler(
    config: SamplerSettings,
    search_space: Mapping[str, BaseDistribution],
    sampler_seed: int | None,
    position: int,
) -> BaseSampler:
    """The sampler of ``config.algorithm`` for the suggestion at ``position`` of the history.

    Args:
        config: the algorithm and its settings.
        search_space: the Optuna distributions (Sobol needs the space up front).
        sampler_seed: this suggestion's seed, or ``None`` for fresh entropy.
        position: the suggestion's index in the experiment (Sobol's point index).
    """
    with _quiet_construction():
        if config.algorithm == "random":
            return RandomSampler(seed=sampler_seed)
        if config.algorithm in ("tpe", "multivariate-tpe", "motpe"):
            kwargs: dict[str, Any] = {}
            if config.gamma is not None:
                kwargs["gamma"] = _HyperoptGamma(config.gamma)
            if config.prior_weight is not None:
                kwargs["prior_weight"] = config.prior_weight
            return TPESampler(
                seed=sampler_seed,
                multivariate=config.algorithm == "multivariate-tpe",
                n_startup_trials=config.n_startup_trials,
                n_ei_candidates=config.n_ei_candidates,
                **kwargs,
            )
        if config.algorithm == "cmaes":
            kwargs = {} if config.sigma is None else {"sigma0": config.sigma}
            return CmaEsSampler(seed=sampler_seed, warn_independent_sampling=False, **kwargs)
        if config.algorithm == "sobol":
            scramble_seed = None if config.random_state is None else seed(config.random_state)
            return _SobolSampler(search_space, position, scramble_seed)
        if config.algorithm == "bayesianoptimization":
            return SkoptSampler(
                search_space,
                base_estimator=config.base_estimator,
                n_initial_points=config.n_initial_points,
                acq_func=config.acq_func,
                acq_optimizer=config.acq_optimizer,
                seed=sampler_seed,
            )
        if config.algorithm == "gp":
            return GPSampler(
                seed=sampler_seed,
                n_startup_trials=max(1, config.n_initial_points),
                warn_independent_sampling=False,
            )
        if config.algorithm in ("nsga2", "nsga3"):
            return make_genetic_sampler(
                config.algorithm,
                sampler_seed,
                population_size=config.population_size,
                crossover_prob=config.crossover_prob,
                swapping_prob=config.swapping_prob,
            )
    raise AssertionError(config.algorithm)
