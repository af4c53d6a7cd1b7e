"""Checkpoint directories of population-based training (``pbt``) trials on one host.

Katib mounts, in each PBT trial's container, a directory of its own at the path named by the
``suggestion_trial_dir`` setting, pre-filled with a copy of the parent trial's checkpoint. On one
host, trials would share that path, so the local runner gives each trial
``<trial directory>/checkpoint`` instead: the path is rewritten wherever it appears in the
command's arguments and environment (as in Katib's simple-pbt example,
``--checkpoint=/var/log/katib/checkpoints/``), and the directory starts as a copy of the parent
trial's (``pbt.parent`` in the trial's attrs). A script that hard-codes the path without passing
it on the command line or in the environment is not redirected.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from tuner.algorithms.pbt import PARENT
from tuner.spec import Experiment
from tuner.trials import Trial

__all__ = ["CHECKPOINT_DIR", "private_checkpoint"]

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
"""The checkpoint directory's name inside a trial's directory."""


def private_checkpoint(
    experiment: Experiment,
    trial: Trial,
    argv: list[str],
    env: dict[str, str],
    template_env: Mapping[str, str],
    trial_dir: Callable[[str], Path],
) -> list[str]:
    """Prepare a ``pbt`` trial's own checkpoint directory; the arguments pointing at it.

    Args:
        experiment: the trial's experiment (nothing is done unless its algorithm is ``pbt``).
        trial: the trial about to start.
        argv: the command's arguments.
        env: the trial's full environment; the variables of the template (``template_env``)
            that name the path are rewritten in place.
        template_env: the environment the trial template sets.
        trial_dir: a trial's directory by trial name.
    """
    algorithm = experiment.spec.algorithm
    shared = algorithm.settings.get("suggestion_trial_dir", "").strip().rstrip("/")
    if algorithm.algorithm_name != "pbt" or not shared:
        return argv
    private = trial_dir(trial.name) / CHECKPOINT_DIR
    if private.exists():
        shutil.rmtree(private)
    parent = trial.attrs.get(PARENT)
    source = trial_dir(parent) / CHECKPOINT_DIR if isinstance(parent, str) else None
    if source is not None and source.is_dir():
        shutil.copytree(source, private, symlinks=True)
    else:
        if source is not None:
            logger.warning(
                "trial %s: the checkpoint of its parent %s is missing (%s); it starts afresh",
                trial.name,
                parent,
                source,
            )
        private.mkdir(parents=True)
    for key, value in list(env.items()):
        if key in template_env and shared in value:
            env[key] = value.replace(shared, str(private))
    return [a.replace(shared, str(private)) for a in argv]
