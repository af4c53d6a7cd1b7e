"""The Experiment operator: ``kubectl apply -f experiment.yaml`` runs the experiment.

:mod:`tuner.operator.status` maps resources to experiments and back (pure);
:mod:`tuner.operator.reconcile` runs the :class:`Operator` loop, one per API group
(:mod:`tuner.operator.leading`: ``tuner.dev``, and Katib's ``kubeflow.org`` when its CRD is
installed, whose experiments get ``Trial`` objects from :mod:`tuner.operator.trial_objects`), on
the replica elected by :mod:`tuner.operator.election`; :mod:`tuner.operator.mirror` gives
experiments submitted over REST their resource.
"""

from tuner.operator.election import LeaderElection
from tuner.operator.leading import run_operator, served_groups
from tuner.operator.mirror import ResourceMirror
from tuner.operator.reconcile import Operator
from tuner.operator.status import (
    UID_ANNOTATION,
    experiment_from_resource,
    failed_status,
    resource_owner_reference,
    resource_status,
    spec_changes,
)

__all__ = [
    "UID_ANNOTATION",
    "LeaderElection",
    "Operator",
    "ResourceMirror",
    "experiment_from_resource",
    "failed_status",
    "resource_owner_reference",
    "resource_status",
    "run_operator",
    "served_groups",
    "spec_changes",
]
