"""What a local trial inherits from the process that starts it: everything but tuner's own
settings.

A trial runs whatever command its spec names, and its output is served by ``/logs``: it must
not see the credentials of the server that starts it. Every ``TUNER_*`` variable of the
server's environment is dropped (``TUNER_API_TOKEN``, ``TUNER_SECRET``,
``TUNER_DATABASE_URL``, ``TUNER_SERVER``, and any other); the runner then adds the trial's own
``TUNER_*`` variables (:mod:`tuner.names`: API URL, namespace, experiment, trial, trial token,
trial directory), and the container's ``env`` of the spec on top. Everything else is kept
(``PATH``, ``HOME``, a virtualenv, ``CUDA_VISIBLE_DEVICES``, ...), so that a spec's command
works as it does by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from tuner import names

if TYPE_CHECKING:
    from tuner.storage import ExperimentRecord
    from tuner.trials import Trial

SERVER_PREFIX = "TUNER_"


def inherited(environment: Mapping[str, str]) -> dict[str, str]:
    """``environment`` without the server's ``TUNER_*`` settings."""
    return {k: v for k, v in environment.items() if not k.startswith(SERVER_PREFIX)}


def base_trial_env(experiment: ExperimentRecord, trial: Trial) -> dict[str, str]:
    """The ``TUNER_*`` variables that name a trial and its experiment."""
    return {
        names.ENV_EXPERIMENT: experiment.name,
        names.ENV_NAMESPACE: experiment.namespace,
        names.ENV_TRIAL: trial.name,
        names.ENV_KATIB_TRIAL: trial.name,  # what Katib's report_metrics reads
    }
