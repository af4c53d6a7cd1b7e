"""Katib algorithms backed by Optuna samplers: ``random``, ``tpe``, ``multivariate-tpe``,
``cmaes``, ``sobol``, ``bayesianoptimization`` (scikit-optimize behind an Optuna sampler), and
tuner's own ``gp`` (Optuna's ``GPSampler``, with torch).

The pieces, one module each:

* :mod:`tuner.algorithms.sampler_settings`: the settings each algorithm accepts (Katib's
  names), their schema and typed value :class:`SamplerSettings`, and the deviations from Katib;
* :mod:`tuner.algorithms.sampler_factory`: the Optuna sampler built for each suggestion;
* :mod:`tuner.algorithms.optuna_suggester`: :class:`OptunaSuggester`, one in-memory study fed
  incrementally from the history, and the seeding rules;
* :mod:`tuner.algorithms.space`: the search space as Optuna distributions.

This module is the registry's entry point for these names.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from tuner.algorithms.optuna_suggester import GP_MAX_TRIALS, OptunaSuggester
from tuner.algorithms.sampler_settings import (
    ALGORITHMS,
    SamplerSettings,
    parse_settings,
    validate_settings,
)
from tuner.space import Study

__all__ = [
    "ALGORITHMS",
    "GP_MAX_TRIALS",
    "OptunaSuggester",
    "SamplerSettings",
    "create",
    "validate_settings",
]

logger = logging.getLogger(__name__)


def create(name: str, settings: Mapping[str, str], study: Study) -> OptunaSuggester:
    """Build the suggester of a validated spec.

    Raises:
        ValueError: if the settings do not pass :func:`validate_settings`.
    """
    config = parse_settings(name, settings, study)
    if config.restart_strategy != "none":
        logger.warning(
            "cmaes: restart_strategy=%s has no effect: Optuna's CMA-ES no longer restarts "
            "(removed in Optuna 4.4); the search continues without restarts",
            config.restart_strategy,
        )
    return OptunaSuggester(study, config)
