"""The Experiment operator's loop: watch Experiment resources, reconcile each with the service.

The pure mapping between resources and experiments is in :mod:`tuner.operator.status`; the client
and the watch come from :mod:`tuner.k8s`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client import ApiException

from tuner.errors import Conflict, NotFound, SpecError, TunerError
from tuner.events import Event as ServiceEvent
from tuner.k8s.client import API_ERRORS, backoff_delay
from tuner.k8s.jobs import installation_selector, is_ours
from tuner.k8s.watching import Changed, Listed, watch_objects
from tuner.operator.mirror import ADOPT_AFTER, ResourceMirror, resource_age, stored_over_rest
from tuner.operator.status import (
    GROUP,
    INVALID_SPEC,
    KATIB_GROUP,
    PLURAL,
    VERSION,
    Key,
    edit_rejected_condition,
    edits_ignored_condition,
    experiment_from_resource,
    failed_status,
    katib_status,
    object_generation,
    object_key,
    object_uid,
    resource_group,
    resource_status,
    resource_uid,
    spec_changes,
    spec_error_text,
    trial_lists,
)
from tuner.operator.trial_objects import TrialObjects
from tuner.runners.kubernetes import KubernetesRunner
from tuner.service import Service
from tuner.storage import ExperimentRecord, Repository
from tuner.views import experiment_summary

log = logging.getLogger(__name__)


class Operator:
    """Watches Experiment resources and keeps them and the service's database in step.

    It runs inside ``tuner serve --runner kubernetes`` (a
    :attr:`tuner.service.Settings.companions` coroutine, :func:`run_operator`) and talks to the
    :class:`~tuner.service.Service` directly.

    **Watching.** Through :func:`tuner.k8s.watching.watch_objects`: one list of
    ``experiments.tuner.dev`` (in every namespace, or in one), then a watch from the list's
    resourceVersion, resumed window after window. ``410 Gone``, a dropped or garbled stream and
    apiserver errors lead to a new list; the list is the truth, so events missed meanwhile are made
    up for: resources that vanished count as deleted.

    **Reconciling** happens per resource, one pass at a time (a pass requested meanwhile runs once
    after it), on every watch event, on every event of the experiment in the service, and every
    ``resync_interval`` seconds:

    * *new resource*: its spec goes through :func:`tuner.spec.load_spec` and
      :meth:`Service.submit <tuner.service.Service.submit>` under the resource's namespace and
      name. The stored metadata carries the annotation
      :data:`~tuner.operator.status.UID_ANNOTATION`, from which
      :func:`~tuner.operator.status.resource_owner_reference` gives the trial Jobs an
      ownerReference to the resource, so the garbage collector removes them with it (also after a
      restart: it is stored). An invalid spec (most are rejected by the CRD schema already) ends
      as status phase Failed, reason ``InvalidSpec``, with the field paths in the message;
    * *changed spec* (a new ``metadata.generation``): changed budget fields (``maxTrialCount``,
      ``parallelTrialCount``, ``maxFailedTrialCount``) go to :meth:`Service.edit_budget
      <tuner.service.Service.edit_budget>`; other changes are ignored and a ``SpecChangeIgnored``
      condition says which;
    * *status*: :func:`tuner.views.experiment_summary` shaped to the CRD's status schema
      (:func:`~tuner.operator.status.resource_status`): phase, reason, message, conditions, trial
      counts and the current optimal trial, never a list of trials, so its size stays flat. It is
      written to the ``/status`` subresource only when it differs from the resource's, with the
      resourceVersion read (a 409 re-reads and compares again);
    * *deleted resource*: :meth:`Service.delete <tuner.service.Service.delete>` stops the experiment
      and removes it with its Jobs (which the garbage collector removes as well).

    An experiment submitted through the REST API before it got resources (or with the CRD missing)
    is left alone. A resource whose name is taken by such an experiment is marked Failed
    (``NameTaken``). A resource whose
    experiment was deleted through the API is marked Failed (``ExperimentDeleted``) and not run
    again.

    An experiment submitted over REST gets its resource from
    :class:`~tuner.operator.mirror.ResourceMirror` (annotated
    :data:`~tuner.operator.mirror.STORED_ANNOTATION`); the operator does not submit such a
    resource while the REST request stores it, keeps its status like any other's, and deletes it
    when its experiment was deleted over REST.

    Several replicas elect one leader (:func:`run_operator`), which alone runs the operator.

    Args:
        service: the started service (its runner should be ``runner``).
        runner: the Kubernetes runner; its client and its retrying calls are shared.
        namespace: watch only this namespace (default: all).
        resync_interval: seconds between status checks of every resource.
        watch_window: seconds a watch request stays open before it is resumed.
        min_interval: seconds between two passes over the same resource (coalesces bursts).
        listen: subscribe to the service's events in :meth:`run` (else the caller forwards
            them to :meth:`on_service_event`: listeners cannot be removed, operators can end).
        group: the API group of the Experiment resources: ``tuner.dev``, or Katib's
            ``kubeflow.org``, whose resources get Katib's status shape
            (:func:`~tuner.operator.status.katib_status`) and a ``Trial`` object per trial
            (:class:`~tuner.operator.trial_objects.TrialObjects`). An experiment belongs to the
            group of the resource it came from; a resource of the other group with its name is
            marked Failed (``NameTaken``).
    """

    def __init__(
        self,
        service: Service,
        runner: KubernetesRunner,
        *,
        namespace: str | None = None,
        resync_interval: float = 30.0,
        watch_window: float = 60.0,
        min_interval: float = 0.5,
        listen: bool = True,
        group: str = GROUP,
    ) -> None:
        self.group = group
        self.katib = group == KATIB_GROUP
        self.trial_objects = TrialObjects(runner) if self.katib else None
        self.service = service
        self.runner = runner
        self.custom = client.CustomObjectsApi(runner.api)
        self.mirror = ResourceMirror(runner, namespace=namespace)
        self.namespace = namespace
        self.resync_interval = resync_interval
        self.watch_window = watch_window
        self.min_interval = min_interval
        self.listen = listen
        self._objects: dict[Key, dict[str, Any]] = {}
        self._listed = False
        self._dirty: set[Key] = set()
        self._workers: dict[Key, asyncio.Task[None]] = {}
        self._handled: dict[Key, tuple[str, int | None]] = {}  # (uid, generation) compared
        self._notes: dict[Key, list[dict[str, Any]]] = {}  # extra conditions (ignored edits)
        self._timers: dict[Key, asyncio.TimerHandle] = {}  # later passes (REST resources)

    async def run(self) -> None:
        """Watch and reconcile until cancelled."""
        if self.listen:
            self.service.add_listener(self.on_service_event)
        resync = asyncio.create_task(self._resync_forever(), name="operator resync")
        try:
            await self._watch_forever()
        finally:
            resync.cancel()
            for timer in self._timers.values():
                timer.cancel()
            workers = [resync, *self._workers.values()]
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    # -- watching --------------------------------------------------------------------------

    def _list_call(self, **kwargs: Any) -> Any:
        if self.namespace is None:
            return self.custom.list_cluster_custom_object(self.group, VERSION, PLURAL, **kwargs)
        return self.custom.list_namespaced_custom_object(
            self.group, VERSION, self.namespace, PLURAL, **kwargs
        )

    async def _watch_forever(self) -> None:
        # Another installation's resources in the same namespaces are not ours to reconcile.
        installation = self.runner.installation
        ours = installation_selector(installation)
        items = watch_objects(
            self.runner.client,
            self._list_call,
            window=self.watch_window,
            what=f"Experiment resources ({self.group})",
            missing=(
                f"the Experiment CRD ({PLURAL}.{self.group}) is not installed: "
                "kubectl apply -k deploy/base (or deploy/overlays/katib-compat)"
            ),
            label_selector=ours or "",  # "": every resource (the default installation filters)
        )
        try:
            async for item in items:
                if isinstance(item, Listed):
                    await self._relisted([o for o in item.objects if is_ours(o, installation)])
                elif isinstance(item, Changed) and is_ours(item.object, installation):
                    self._changed(item.type, item.object)
        finally:
            await items.aclose()

    async def _relisted(self, listed: list[dict[str, Any]]) -> None:
        """Take a new list as the truth: forget the resources gone, reconcile every one."""
        objects = {object_key(o): o for o in listed}
        gone = set(self._objects) - set(objects)
        self._objects = objects
        first = not self._listed
        self._listed = True
        for key in [*objects, *gone]:
            self._kick(key)
        if first:  # resources deleted while no operator ran
            for record in await asyncio.to_thread(self._resource_records):
                key = (record.namespace, record.name)
                if key not in objects:
                    self._kick(key)

    def _resource_records(self) -> list[ExperimentRecord]:
        records: list[ExperimentRecord] = []
        offset = 0
        repo = self.service.repo
        while batch := repo.list_experiments(namespace=self.namespace, limit=500, offset=offset):
            offset += len(batch)
            records.extend(r for r in batch if resource_uid(r) and self._mine(r))
        return records

    def _changed(self, kind: str, obj: dict[str, Any]) -> None:
        """Apply one watch event to the known resources and reconcile the one it is about."""
        key = object_key(obj)
        if kind == "DELETED":
            if object_uid(self._objects.get(key)) == object_uid(obj):
                del self._objects[key]
        else:
            self._objects[key] = obj
        self._kick(key)

    def _mine(self, record: ExperimentRecord) -> bool:
        """Whether an experiment came from a resource of this operator's group."""
        return resource_group(record) == self.group

    # -- scheduling ------------------------------------------------------------------------

    def on_service_event(self, event: ServiceEvent) -> None:
        key = (event.namespace, event.experiment)
        if key in self._objects:
            self._kick(key)

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.resync_interval)
            for key in list(self._objects):
                self._kick(key)

    def _kick(self, key: Key) -> None:
        """Reconcile ``key`` soon: now, or once more after the pass that runs."""
        self._dirty.add(key)
        task = self._workers.get(key)
        if task is None or task.done():
            self._workers[key] = asyncio.create_task(self._work(key), name=f"operator {key}")

    async def _work(self, key: Key) -> None:
        errors = 0
        while key in self._dirty:
            self._dirty.discard(key)
            try:
                await self._reconcile(key)
                errors = 0
                await asyncio.sleep(self.min_interval)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # retried: now with backoff, and on every resync
                level = (
                    logging.WARNING if isinstance(e, (*API_ERRORS, TunerError)) else logging.ERROR
                )
                log.log(
                    level,
                    "Experiment %s/%s: %r; retrying",
                    *key,
                    e,
                    exc_info=level > logging.WARNING,
                )
                self._dirty.add(key)
                await asyncio.sleep(backoff_delay(errors, 0.5, 30.0))
                errors += 1
        if self._workers.get(key) is asyncio.current_task():
            del self._workers[key]

    # -- one resource ----------------------------------------------------------------------

    async def _record(self, key: Key) -> ExperimentRecord | None:
        try:
            return await self.service.db.get_experiment(*key)
        except NotFound:
            return None

    async def _reconcile(self, key: Key) -> None:
        obj = self._objects.get(key)
        record = await self._record(key)
        if record is not None and resource_uid(record) and not self._mine(record):
            if obj is not None:  # the other group's resource of that name has the experiment
                message = (
                    f"an Experiment {key[0]}/{key[1]} of {resource_group(record)} exists; "
                    "delete it or rename this resource"
                )
                status = failed_status("NameTaken", message, object_generation(obj))
                await self._write_status(key, obj, status)
            return
        if obj is None:
            self._handled.pop(key, None)
            self._notes.pop(key, None)
            if self.trial_objects is not None:
                self.trial_objects.forget(key)
            if record is not None and resource_uid(record) and self._listed:
                log.info("Experiment %s/%s deleted: deleting the experiment", *key)
                await self.service.delete(record)
            return
        uid, generation = object_uid(obj), object_generation(obj)
        if record is not None and resource_uid(record) != uid:
            if not resource_uid(record):
                message = (
                    f"an experiment {key[0]}/{key[1]} submitted through the REST API exists; "
                    "delete it there or rename this resource"
                )
                await self._write_status(key, obj, failed_status("NameTaken", message, generation))
                return
            log.info("Experiment %s/%s was replaced: deleting the old experiment", *key)
            await self.service.delete(record)
            record = None
        if record is None:
            record = await self._submit(key, obj)
            if record is None:
                return
            if not self._mine(record):  # the other group's resource got the name first
                self._kick(key)  # the next pass marks this one NameTaken
                return
        if self._handled.get(key) != (uid, generation):
            await self._apply_edits(key, obj, record)
            self._handled[key] = (uid, generation)
            record = await self._record(key) or record
        if self.trial_objects is not None:  # first: a client that sees the experiment end
            await self.trial_objects.sync(self.service.db, key, obj, record)  # sees its trials'
        status = await self.service.db.run(
            self._status, record, generation, self._notes.get(key), self.katib
        )
        await self._write_status(key, obj, status)

    async def _submit(self, key: Key, obj: dict[str, Any]) -> ExperimentRecord | None:
        status = obj.get("status") or {}
        generation = object_generation(obj)
        if stored_over_rest(obj):
            if status.get("phase"):  # its experiment was deleted over REST: so is it
                log.info("Experiment %s/%s: deleted over REST; deleting the resource", *key)
                await self.mirror.after_delete_resource(obj)
                return None
            wait = ADOPT_AFTER - resource_age(obj)
            if wait > 0:  # the REST request that made it (maybe on another replica) stores it
                later = asyncio.get_running_loop().call_later(min(wait, 1.0), self._kick, key)
                self._timers[key] = later  # one per resource; the one before has fired
                return None
            log.warning("Experiment %s/%s: its REST submission did not finish; adopting", *key)
        if status.get("phase"):
            reason = status.get("reason")
            retry = reason == "NameTaken" or (
                reason == INVALID_SPEC and status.get("observedGeneration") != generation
            )
            if not retry:
                if status.get("reason") not in (INVALID_SPEC, "ExperimentDeleted", "NameTaken"):
                    message = (
                        "the experiment was deleted from the tuner database (through the API); "
                        "delete this resource, or delete and re-create it to run it again"
                    )
                    await self._write_status(
                        key, obj, failed_status("ExperimentDeleted", message, generation)
                    )
                return None
        try:
            experiment = experiment_from_resource(obj)
            record = await self.service.submit(experiment)
        except SpecError as e:
            lines = spec_error_text(e)
            log.info("Experiment %s/%s is invalid: %s", *key, lines)
            await self._write_status(
                key, obj, failed_status(INVALID_SPEC, f"invalid spec: {lines}", generation)
            )
            return None
        except Conflict:  # another replica submitted it first
            return await self._record(key)
        log.info("Experiment %s/%s submitted", *key)
        self._handled[key] = (object_uid(obj), generation)
        self._notes.pop(key, None)
        return record

    async def _apply_edits(
        self, key: Key, obj: Mapping[str, Any], record: ExperimentRecord
    ) -> None:
        notes: list[dict[str, Any]] = []
        try:
            budget, ignored = spec_changes(experiment_from_resource(obj), record.experiment)
            if budget:
                log.info("Experiment %s/%s: budget edited: %s", *key, budget)
                await self.service.edit_budget(record, budget)
        except SpecError as e:
            notes.append(edit_rejected_condition(e))
            ignored = []
        if ignored:
            notes.append(edits_ignored_condition(ignored))
        self._notes[key] = notes

    @staticmethod
    def _status(
        repo: Repository,
        record: ExperimentRecord,
        generation: int | None,
        notes: list[dict[str, Any]] | None,
        katib: bool = False,
    ) -> dict[str, Any]:
        """The resource's status, read on the database thread (``service.db.run``); in Katib's
        shape, with its trial name lists, for a ``kubeflow.org`` resource (``katib``)."""
        summary = experiment_summary(repo, record)
        ranges: dict[str, tuple[float, float, float]] = {}
        optimal = summary.get("currentOptimalTrial")
        if isinstance(optimal, dict):  # one objective (a list: the Pareto front)
            by_metric: dict[str, list[float]] = {}
            for o in repo.observations(record.id, optimal["bestTrialName"]):
                by_metric.setdefault(o.metric, []).append(o.value)  # ordered by step
            ranges = {m: (min(v), max(v), v[-1]) for m, v in by_metric.items() if v}
        status = resource_status(
            summary,
            generation=generation,
            objective=record.experiment.spec.objective.objective_metric_name,
            metric_ranges=ranges,
            conditions=notes,
        )
        if not katib:
            return status
        return katib_status(status, trial_lists((t.name, t.state) for t in repo.trials(record.id)))

    async def _write_status(self, key: Key, obj: dict[str, Any], status: dict[str, Any]) -> None:
        """Replace the resource's status when it differs; re-read and compare again on 409."""
        uid = object_uid(obj)
        for attempt in range(8):
            if (obj.get("status") or {}) == status:
                return
            body = {**obj, "status": status}
            try:
                updated = await self.runner.client.get_json(
                    self.custom.replace_namespaced_custom_object_status,
                    self.group,
                    VERSION,
                    key[0],
                    PLURAL,
                    key[1],
                    body,
                )
            except ApiException as e:
                if e.status != 409:
                    raise
                await asyncio.sleep(backoff_delay(attempt, 0.05))
                updated = await self.runner.client.get_json(
                    self.custom.get_namespaced_custom_object,
                    self.group,
                    VERSION,
                    key[0],
                    PLURAL,
                    key[1],
                )
                if updated is None or object_uid(updated) != uid:
                    return
                obj = updated
                self._remember(key, obj)
                continue
            if updated is not None:
                self._remember(key, updated)
            return
        raise Conflict(f"Experiment {key[0]}/{key[1]}: the status kept conflicting")

    def _remember(self, key: Key, obj: dict[str, Any]) -> None:
        """Keep ``obj`` as the resource's latest state (unless it was deleted meanwhile)."""
        known = self._objects.get(key)
        if known is not None and object_uid(known) == object_uid(obj):
            self._objects[key] = obj  # a stale cache only costs a 409 and a re-read
