"""Experiments submitted over REST get their Experiment resource, so ``kubectl get`` lists them.

:meth:`ResourceMirror.before_store` runs in :meth:`Service.submit <tuner.service.Service.submit>`
before the experiment is stored: it creates the resource (spec = the Katib spec, labelled with
the installation, annotated :data:`STORED_ANNOTATION`) and returns the experiment with the
resource's uid in :data:`~tuner.operator.status.UID_ANNOTATION`. So the stored experiment is
exactly one the operator would have made of the resource: its Jobs are owned by the resource,
the leader keeps its status, deleting the resource deletes the experiment. The annotation tells
the operator not to submit the resource itself while the REST request stores it (a resource
left without experiment by a crash in between is adopted after :data:`ADOPT_AFTER` seconds).
:meth:`ResourceMirror.after_delete` deletes the resource when the experiment is deleted over
REST. Experiments that came from a resource (they carry a uid already) are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client import ApiException

from tuner.errors import Conflict
from tuner.k8s.client import API_ERRORS, api_message
from tuner.k8s.jobs import INSTALLATION_LABEL, installation_label, is_ours
from tuner.operator.status import API_VERSION, GROUP, PLURAL, UID_ANNOTATION, VERSION
from tuner.runners.kubernetes import KubernetesRunner
from tuner.spec import Experiment, load_spec
from tuner.storage import ExperimentRecord

log = logging.getLogger(__name__)

STORED_ANNOTATION = "tuner.dev/stored-by"
"""On a resource made for a REST submission (value ``api``): the service stores it itself."""
ADOPT_AFTER = 30.0
"""Seconds after which a marked resource without experiment is submitted by the operator."""


def stored_over_rest(obj: Mapping[str, Any]) -> bool:
    """Whether a resource was made for a REST submission (see :class:`ResourceMirror`)."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return bool(annotations.get(STORED_ANNOTATION) == "api")


def resource_age(obj: Mapping[str, Any]) -> float:
    """Seconds since the resource's ``metadata.creationTimestamp`` (0 when unknown)."""
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    try:
        created = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, (datetime.now(UTC) - created).total_seconds())


def with_annotations(experiment: Experiment, annotations: dict[str, str]) -> Experiment:
    """The experiment with more ``metadata.annotations``."""
    data = experiment.dump()
    data.setdefault("metadata", {}).setdefault("annotations", {}).update(annotations)
    return load_spec(data)


class ResourceMirror:
    """Creates and deletes the resources of REST experiments (see the module's docstring).

    Args:
        runner: the Kubernetes runner (its client, and its installation for the label).
        namespace: only experiments of this namespace get resources (the operator's scope;
            ``None``: every namespace).
    """

    def __init__(self, runner: KubernetesRunner, *, namespace: str | None = None) -> None:
        self.runner = runner
        self.custom = client.CustomObjectsApi(runner.api)
        self.namespace = namespace

    def _mirrored(self, experiment: Experiment) -> bool:
        return self.namespace is None or experiment.namespace == self.namespace

    def resource(self, experiment: Experiment) -> dict[str, Any]:
        """The resource of a REST experiment."""
        meta = experiment.dump().get("metadata") or {}
        labels = dict(meta.get("labels") or {})
        labels[INSTALLATION_LABEL] = installation_label(self.runner.installation)
        annotations = dict(meta.get("annotations") or {})
        annotations[STORED_ANNOTATION] = "api"
        return {
            "apiVersion": API_VERSION,
            "kind": "Experiment",
            "metadata": {
                "name": experiment.name,
                "namespace": experiment.namespace,
                "labels": labels,
                "annotations": annotations,
            },
            "spec": experiment.dump()["spec"],
        }

    async def before_store(self, experiment: Experiment) -> Experiment:
        """Create the resource of a REST experiment; the experiment to store (with its uid).

        Raises:
            Conflict: a resource of that name exists.
        """
        if experiment.metadata.annotations.get(UID_ANNOTATION) or not self._mirrored(experiment):
            return experiment
        body = self.resource(experiment)
        try:
            created = await self.runner.client.json(
                self.custom.create_namespaced_custom_object,
                GROUP,
                VERSION,
                experiment.namespace,
                PLURAL,
                body,
            )
        except API_ERRORS as e:
            if not isinstance(e, ApiException) or e.status != 409:
                # No CRD (404), no RBAC (403), schema (422), apiserver away: the experiment still
                # runs, without a resource (as before resources were made for REST experiments).
                self._warn(experiment, e)
                return experiment
            if not await self._ours(experiment):  # another installation's: keep it theirs
                log.warning(
                    "experiment %s/%s gets no resource: another installation's has the name",
                    experiment.namespace,
                    experiment.name,
                )
                return experiment
            raise Conflict(
                f"an Experiment resource {experiment.namespace}/{experiment.name} exists "
                "already (kubectl get experiments.tuner.dev)"
            ) from e
        uid = str(created["metadata"]["uid"])
        return with_annotations(experiment, {UID_ANNOTATION: uid, STORED_ANNOTATION: "api"})

    def _warn(self, experiment: Experiment, error: BaseException) -> None:
        what = api_message(error) if isinstance(error, ApiException) else repr(error)
        log.warning(
            "experiment %s/%s gets no Experiment resource: %s",
            experiment.namespace,
            experiment.name,
            what,
        )

    async def _ours(self, experiment: Experiment) -> bool:
        """Whether the resource named like ``experiment`` belongs to this installation."""
        obj = await self.runner.client.get_json(
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            experiment.namespace,
            PLURAL,
            experiment.name,
        )
        return obj is None or is_ours(obj, self.runner.installation)

    async def store_failed(self, experiment: Experiment) -> None:
        """Undo :meth:`before_store` (the experiment was not stored); never raises, so that the
        reason it was not stored is what the caller sees (a resource left behind is adopted)."""
        try:
            await self._delete(experiment)
        except API_ERRORS as e:
            log.warning("the resource of %s/%s: %r", experiment.namespace, experiment.name, e)

    async def after_delete(self, record: ExperimentRecord) -> None:
        """Delete the resource of a REST experiment deleted over REST."""
        await self._delete(record.experiment)

    async def after_delete_resource(self, obj: Mapping[str, Any]) -> None:
        """Delete a REST experiment's resource whose experiment is gone."""
        meta = obj.get("metadata") or {}
        await self._delete_resource(meta.get("namespace"), meta.get("name"), meta.get("uid"))

    async def _delete(self, experiment: Experiment) -> None:
        annotations = experiment.metadata.annotations
        uid = annotations.get(UID_ANNOTATION)
        if uid and annotations.get(STORED_ANNOTATION) == "api":
            await self._delete_resource(experiment.namespace, experiment.name, uid)

    async def _delete_resource(self, namespace: Any, name: Any, uid: Any) -> None:
        try:
            await self.runner.client.json(
                self.custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                body={"preconditions": {"uid": uid}},
            )
        except ApiException as e:
            if e.status not in (404, 409):  # gone, or replaced by another resource
                raise
