"""The checks an experiment passes before it is stored, whichever way it was submitted."""

from __future__ import annotations

import asyncio
import logging

from tuner import warmstart
from tuner.katib_grpc.remote import validate_remotely
from tuner.runners.base import Runner
from tuner.spec import Experiment, spec_warnings
from tuner.storage.aio import AsyncRepository

log = logging.getLogger(__name__)


async def vet(experiment: Experiment, runner: Runner, db: AsyncRepository) -> Experiment:
    """The experiment as it will be stored, or SpecError (422) naming what is wrong.

    The runner prepares the template and refuses what it cannot run, an external algorithm's
    service validates its settings, and a warm start's source must exist and be compatible.
    """
    if experiment.spec.trial_template is not None:
        experiment = await runner.prepare(experiment)  # e.g. a ConfigMap template read
        runner.check(experiment)
    experiment = await asyncio.to_thread(validate_remotely, experiment)
    for warning in spec_warnings(experiment):
        log.warning("experiment %s/%s: %s", experiment.namespace, experiment.name, warning)
    if experiment.spec.warm_start_from is not None:
        await db.run(warmstart.check_warm_start, experiment)
    return experiment
