"""Katib's ``Trial`` objects (``trials.kubeflow.org``) for the experiments of ``kubeflow.org``
Experiment resources, so that Katib's clients (``KatibClient.list_trials``,
``get_success_trial_details``, ``kubectl get trials``) see every trial.

The database stays the record: a Trial object is a small copy of one trial, written by the
operator's leader and never read back. It is named like the trial, labelled
:data:`KATIB_EXPERIMENT_LABEL` with the experiment's name, owned by the Experiment resource (so
the garbage collector removes it with it), and holds what Katib keeps in it: the spec's
``parameterAssignments``, ``objective``, ``primaryContainerName``, the success and failure
conditions and the metrics collector (never the ``runSpec``: the trial's Job has it), and a status
with Katib's conditions, ``startTime``, ``completionTime`` and ``observation.metrics`` (``min``,
``max``, ``latest`` of each metric). The status is written (``/status``, a merge patch) only when
the trial changed since it was last written, and the observations of a trial are read only then.
The experiment's Suggestion object (:mod:`tuner.operator.suggestion_object`) is kept here too.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client import ApiException

from tuner.k8s.jobs import INSTALLATION_LABEL, installation_label
from tuner.operator.status import (
    KATIB_GROUP,
    VERSION,
    Key,
    katib_conditions,
    object_uid,
    resource_owner_reference,
)
from tuner.operator.suggestion_object import SUGGESTIONS, suggestion_spec, suggestion_status
from tuner.runners.kubernetes import KubernetesRunner
from tuner.spec import Experiment
from tuner.storage import ExperimentRecord, Repository
from tuner.storage.aio import AsyncRepository
from tuner.trials import Trial
from tuner.views import trial_conditions

log = logging.getLogger(__name__)

TRIALS = "trials"
KATIB_EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"
"""The label Katib puts on an experiment's Trials (and Katib's clients select them with)."""
UNAVAILABLE = "unavailable"
"""Katib's value of a metric without observations."""

Fingerprint = tuple[Any, ...]


@dataclass
class TrialObject:
    """The spec and status of one Trial object, and what it was made of."""

    name: str
    spec: dict[str, Any]
    status: dict[str, Any]
    fingerprint: Fingerprint


def _text(value: float) -> str:
    return "NaN" if math.isnan(value) else repr(float(value))


def fingerprint(trial: Trial) -> Fingerprint:
    """What a Trial object's status is made of: when it differs, the status is written."""
    return (
        trial.state,
        trial.started_at,
        trial.finished_at,
        trial.steps,
        sorted(trial.metrics.items()),
    )


def trial_spec(experiment: Experiment, trial: Trial) -> dict[str, Any]:
    """A Trial object's spec: what Katib keeps of the experiment for one trial (no runSpec)."""
    spec = experiment.dump()["spec"]
    template = spec.get("trialTemplate") or {}
    result: dict[str, Any] = {
        "objective": spec.get("objective"),
        "parameterAssignments": [{"name": k, "value": str(v)} for k, v in trial.parameters.items()],
        "primaryContainerName": template.get("primaryContainerName"),
        "successCondition": template.get("successCondition"),
        "failureCondition": template.get("failureCondition"),
        "primaryPodLabels": template.get("primaryPodLabels"),
        "retainRun": template.get("retain"),
        "metricsCollector": spec.get("metricsCollectorSpec"),
    }
    return {k: v for k, v in result.items() if v is not None}


def trial_status(repo: Repository, record: ExperimentRecord, trial: Trial) -> dict[str, Any]:
    """A Trial object's status: Katib's conditions, times and ``observation.metrics``."""
    series: dict[str, list[float]] = {}
    for o in repo.observations(record.id, trial.name):  # by metric, then step
        series.setdefault(o.metric, []).append(o.value)
    for name, value in trial.metrics.items():  # a final value without a stored series
        series.setdefault(name, [value])
    metrics = [
        {"name": m, "min": _text(min(v)), "max": _text(max(v)), "latest": _text(v[-1])}
        for m, v in sorted(series.items())
        if v
    ]
    status: dict[str, Any] = {"conditions": katib_conditions(trial_conditions(trial))}
    if trial.started_at is not None:
        status["startTime"] = trial.started_at.isoformat()
    if trial.finished_at is not None and trial.state.finished:
        status["completionTime"] = trial.finished_at.isoformat()
    if metrics:
        status["observation"] = {"metrics": metrics}
    return {k: v for k, v in status.items() if v is not None}


def changed_trials(
    repo: Repository, record: ExperimentRecord, written: Mapping[str, Fingerprint]
) -> list[TrialObject]:
    """The Trial objects whose trial changed since ``written`` (name -> fingerprint); run on the
    database thread. Observations are read only for those."""
    changed = []
    for trial in repo.trials(record.id):
        mark = fingerprint(trial)
        if written.get(trial.name) == mark:
            continue
        changed.append(
            TrialObject(
                trial.name,
                trial_spec(record.experiment, trial),
                trial_status(repo, record, trial),
                mark,
            )
        )
    return changed


class TrialObjects:
    """Keeps the Trial objects of ``kubeflow.org`` experiments in step with their trials.

    Args:
        runner: the Kubernetes runner (its retrying client, its installation for the label).
    """

    def __init__(self, runner: KubernetesRunner) -> None:
        self.runner = runner
        self.custom = client.CustomObjectsApi(runner.api)
        self._written: dict[Key, tuple[str, dict[str, Fingerprint]]] = {}  # uid, per trial
        self._suggestions: dict[Key, tuple[dict[str, Any], dict[str, Any]]] = {}  # last written

    def forget(self, key: Key) -> None:
        """Drop what is known of an experiment's Trial objects (its resource is gone)."""
        self._written.pop(key, None)
        self._suggestions.pop(key, None)

    async def sync(
        self, db: AsyncRepository, key: Key, obj: Mapping[str, Any], record: ExperimentRecord
    ) -> None:
        """Create or update the Trial objects of the experiment of resource ``obj``."""
        uid = object_uid(obj)
        known = self._written.get(key)
        if known is None or known[0] != uid:
            known = (uid, await self._existing(key, uid))
            self._suggestions.pop(key, None)
            self._written[key] = known
        written = known[1]
        changed = await db.run(changed_trials, record, dict(written))
        for t in changed:
            if t.name not in written:
                await self._create(key, record, TRIALS, "Trial", t.name, t.spec)
            await self.runner.client.json(
                self.custom.patch_namespaced_custom_object_status,
                KATIB_GROUP,
                VERSION,
                key[0],
                TRIALS,
                t.name,
                {"status": t.status},
            )
            written[t.name] = t.fingerprint
        await self._sync_suggestion(key, record, len(written))

    async def _sync_suggestion(self, key: Key, record: ExperimentRecord, trials: int) -> None:
        """Create or update the experiment's Suggestion object when its summary changed."""
        spec, status = suggestion_spec(record, trials), suggestion_status(record, trials)
        if self._suggestions.get(key) == (spec, status):
            return
        await self._create(key, record, SUGGESTIONS, "Suggestion", key[1], spec)
        for call, body in (
            (self.custom.patch_namespaced_custom_object, {"spec": spec}),
            (self.custom.patch_namespaced_custom_object_status, {"status": status}),
        ):
            await self.runner.client.json(
                call, KATIB_GROUP, VERSION, key[0], SUGGESTIONS, key[1], body
            )
        self._suggestions[key] = (spec, status)

    async def _existing(self, key: Key, uid: str) -> dict[str, Fingerprint]:
        """The Trial objects of the experiment that exist already (their status is rewritten
        once: a new leader does not know what the last one wrote)."""
        listed = await self.runner.client.json(
            self.custom.list_namespaced_custom_object,
            KATIB_GROUP,
            VERSION,
            key[0],
            TRIALS,
            label_selector=f"{KATIB_EXPERIMENT_LABEL}={key[1]}",
        )
        names = {}
        for item in listed.get("items") or []:
            owners = (item.get("metadata") or {}).get("ownerReferences") or []
            if any(o.get("uid") == uid for o in owners):
                names[str(item["metadata"]["name"])] = ()
        return names

    async def _create(
        self,
        key: Key,
        record: ExperimentRecord,
        plural: str,
        kind: str,
        name: str,
        spec: dict[str, Any],
    ) -> None:
        """Create a Trial or Suggestion object of the experiment, unless it exists."""
        owner = resource_owner_reference(record.experiment)
        body = {
            "apiVersion": f"{KATIB_GROUP}/{VERSION}",
            "kind": kind,
            "metadata": {
                "name": name,
                "namespace": key[0],
                "labels": {
                    KATIB_EXPERIMENT_LABEL: key[1],
                    INSTALLATION_LABEL: installation_label(self.runner.installation),
                },
                "ownerReferences": [owner] if owner else [],
            },
            "spec": spec,
        }
        try:
            await self.runner.client.json(
                self.custom.create_namespaced_custom_object,
                KATIB_GROUP,
                VERSION,
                key[0],
                plural,
                body,
            )
        except ApiException as e:
            if e.status != 409:  # made by an earlier leader: it is patched next
                raise
