"""Each trial as a Kubernetes object of its template's kind (``tuner serve --runner kubernetes``).

A ``batch/v1`` Job, a Kubeflow PyTorchJob / TFJob / MPIJob / XGBoostJob, a TrainJob, an Argo
Workflow...: the runner creates the rendered template unstructured (its resource found by API
discovery, :mod:`tuner.k8s.discovery`), and :class:`~tuner.runners.kubernetes_handle.
KubernetesHandle` follows it through shared informers (:mod:`tuner.k8s.informer`), one watch per
namespace and kind and one of pods per namespace. The plumbing (the retrying client, watches, log
streams, conditions, manifests) is in :mod:`tuner.k8s`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client import ApiException

from tuner.collectors.sidecar import DEFAULT_COLLECTOR_IMAGE, RELAY_COMMAND
from tuner.errors import FieldError, RunnerError, SpecError
from tuner.k8s.client import (
    API_ERRORS,
    TRANSIENT_ERRORS,
    RetryingClient,
    api_message,
    backoff_delay,
    load_api_client,
)
from tuner.k8s.discovery import ApiResource, Discovery, KindNotServed
from tuner.k8s.gjson import compile_condition
from tuner.k8s.informer import Informer, Informers, Resource
from tuner.k8s.jobs import (
    DEFAULT_INSTALLATION,
    dns_label,
    installation_selector,
    is_ours,
    job_labels,
    object_uid,
)
from tuner.k8s.log_slots import DEFAULT_FOLLOWS, DEFAULT_READS, LogSlots
from tuner.k8s.object_calls import ObjectCalls
from tuner.k8s.trial_objects import pod_keys, trial_manifest
from tuner.runners.base import Runner
from tuner.runners.kubernetes_handle import JOB_RESOURCE, KubernetesHandle
from tuner.runners.kubernetes_templates import TEMPLATE_PATH, kind_problems, read_config_map
from tuner.spec import Experiment, job_containers, trial_kinds
from tuner.templates import EXPERIMENT_LABEL, TRIAL_LABEL, RenderedTrial
from tuner.trials import Trial

__all__ = ["KubernetesHandle", "KubernetesRunner", "OwnerReference"]

log = logging.getLogger(__name__)

T = TypeVar("T")

OwnerReference = Callable[[Experiment], Mapping[str, Any] | None]
"""Gives the ownerReference of an experiment's Jobs, or ``None`` for none."""


class KubernetesRunner(Runner):
    """Runs trials as Kubernetes objects of their template's kind.

    **Objects.** A trial becomes its rendered ``trialSpec`` (``${trialParameters.x}`` already
    substituted by :func:`tuner.templates.render_trial`), made into the object to create by
    :func:`tuner.k8s.trial_objects.trial_manifest` (a Job by :func:`tuner.k8s.jobs.job_manifest`):
    named by :func:`~tuner.k8s.jobs.job_name`, labelled with the experiment and the trial, the
    ``TUNER_*`` environment in the primary container (of the primary replica). An optional
    ownerReference (``owner_reference``, for experiments that came from an Experiment custom
    resource) lets the garbage collector remove the objects with the resource. Creating an object
    that already exists (409, after a restart) adopts it when its labels say it belongs to the
    same trial: one trial never gets two objects. A template from a ConfigMap
    (``trialTemplate.configMap``) is read at submit time (:meth:`prepare`), and a kind the
    cluster does not serve (its CRD is not installed) is refused then.

    **Collectors.** StdOut reads the primary container's log (:meth:`KubernetesHandle.lines`);
    PrometheusMetric scrapes the primary Pod's IP. File and TensorFlowEvent files live inside the
    Pod, so, as Katib does, a sidecar (``tuner-metrics-collector``: ``collector_command`` in
    ``collector_image``) shares an ``emptyDir`` and the process namespace with the primary
    container, reads them and pushes what it reads (:mod:`tuner.collectors.relay`): for the
    controller such a trial is a Push trial. Custom runs the user's sidecar. Sidecars need a Pod
    template: a Job's, or the primary replica's of a Kubeflow training job.

    **State.** Every handle reads its object and pods from shared informers
    (:meth:`object_informer`, :meth:`pod_informer`): one watch per namespace and kind, one of
    pods per namespace, whatever the number of trials.

    **Resilience.** Requests go through :class:`tuner.k8s.client.RetryingClient` (429, 5xx and
    connection errors retried with backoff); informers through
    :func:`tuner.k8s.watching.watch_objects` (a new list after ``410 Gone``, dropped connections
    and apiserver restarts).

    Args:
        api_client: a configured ``kubernetes.client.ApiClient``; by default one is built by
            :func:`tuner.k8s.client.load_api_client` from ``kubeconfig`` and ``context``.
        owner_reference: gives the ownerReference (the Experiment custom resource) for an
            experiment's trial objects, or ``None`` for none.
        image_pull_timeout: seconds an image pull error may last before the trial fails.
        watch_window: seconds an informer's watch stays open before it is renewed (it also
            bounds how late an image pull problem is noticed).
        retries: attempts of a request that fails with 429, 5xx or a connection error.
        log_read_timeout: seconds without log output after which a log stream is reopened.
        log_streams: how many trials' logs are followed at once (:mod:`tuner.k8s.log_slots`);
            the others' are read in one request when their container ends.
        installation: this installation's name: its objects carry it as a label (their names
            start with it unless it is ``default``), and other installations' objects are never
            adopted, attached to or deleted (:func:`tuner.k8s.jobs.is_ours`).
        collector_image: the image of the File / TensorFlowEvent collector's sidecar (tuner's
            own image, with the ``tfevent`` extra for TensorFlowEvent).
        collector_command: how the sidecar starts the relay in that image.
    """

    detached = True  # trial objects outlive the service: a restarted controller re-attaches

    def __init__(
        self,
        api_client: client.ApiClient | None = None,
        *,
        kubeconfig: str | Path | None = None,
        context: str | None = None,
        owner_reference: OwnerReference | None = None,
        image_pull_timeout: float = 180.0,
        watch_window: float = 10.0,
        retries: int = 6,
        log_read_timeout: float = 300.0,
        log_streams: int = DEFAULT_FOLLOWS,
        installation: str = DEFAULT_INSTALLATION,
        collector_image: str = DEFAULT_COLLECTOR_IMAGE,
        collector_command: Sequence[str] = RELAY_COMMAND,
    ) -> None:
        # A pooled connection for each log request, each request thread and each watch: a
        # full pool drops connections and the next request pays a new TLS handshake.
        pool = log_streams + DEFAULT_READS + 64
        api = api_client if api_client is not None else load_api_client(kubeconfig, context, pool)
        self.client = RetryingClient(api, retries=retries)
        self.api = api
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.objects = ObjectCalls(api)
        self.discovery = Discovery(self.client)
        self.informers = Informers(self.client, window=watch_window)
        self.owner_reference = owner_reference
        self.image_pull_timeout = image_pull_timeout
        self.watch_window = watch_window
        self.log_read_timeout = log_read_timeout
        self.log_slots = LogSlots(log_streams)
        self.installation = installation
        self.collector_image = collector_image
        self.collector_command = tuple(collector_command)

    def close(self) -> None:
        self.informers.cancel()
        self.client.close()

    # -- informers -------------------------------------------------------------------------

    def object_informer(self, namespace: str, resource: ApiResource) -> Informer:
        """The shared informer of ``resource`` objects in ``namespace`` (indexed by name)."""
        r = resource
        fn, args = self.objects.list(r, namespace)
        return self.informers.get(
            ("objects", namespace, r.group, r.version, r.plural),
            Resource(fn, args, f"{r.name} in {namespace}"),
        )

    def pod_informer(self, namespace: str) -> Informer:
        """The shared informer of the pods in ``namespace`` (indexed by
        :func:`tuner.k8s.trial_objects.pod_keys`)."""
        return self.informers.get(
            ("pods", namespace),
            Resource(self.core.list_namespaced_pod, (namespace,), f"pods in {namespace}"),
            pod_keys,
        )

    # -- checks ----------------------------------------------------------------------------

    @staticmethod
    def problems(experiment: Experiment) -> list[FieldError]:
        """What in ``experiment`` this runner cannot run (empty when it can), from the spec."""
        errors: list[FieldError] = []
        spec = experiment.spec
        if spec.algorithm.algorithm_name == "pbt":
            errors.append(
                FieldError(
                    "spec.algorithm.algorithmName",
                    "pbt is not supported with the Kubernetes runner yet: its trials hand "
                    "checkpoints down through a shared volume (Katib's suggestion_trial_dir), "
                    "which tuner does not mount in Jobs; run pbt experiments locally",
                )
            )
        errors += kind_problems(experiment)
        tt = spec.trial_template
        if tt is not None and tt.trial_spec is not None:
            for key, expression in (
                ("successCondition", tt.success_condition),
                ("failureCondition", tt.failure_condition),
            ):
                try:
                    compile_condition(expression or "")
                except ValueError as e:
                    errors.append(FieldError(f"spec.trialTemplate.{key}", str(e)))
        return errors

    def check(self, experiment: Experiment) -> None:
        """Raise :class:`SpecError` when this runner cannot run ``experiment``."""
        errors = self.problems(experiment)
        if errors:
            raise SpecError(errors)

    async def prepare(self, experiment: Experiment) -> Experiment:
        """Read a ConfigMap template into the spec, and refuse a kind the cluster does not
        serve (its CRD is not installed), naming the kind and the CRD.

        Raises:
            SpecError: the ConfigMap or its template cannot be read, or the kind is not served.
        """
        tt = experiment.spec.trial_template
        if tt is not None and tt.config_map is not None and tt.trial_spec is None:
            experiment = await read_config_map(self.client, self.core, experiment)
            tt = experiment.spec.trial_template
        job = tt.trial_spec if tt is not None else None
        if job is None:
            return experiment
        try:
            await self.discovery.resource(str(job.get("apiVersion")), str(job.get("kind")))
        except KindNotServed as e:
            raise SpecError([FieldError(TEMPLATE_PATH, str(e))]) from e
        except API_ERRORS as e:
            raise RunnerError(f"cannot ask the apiserver which kinds it serves: {e}") from e
        return experiment

    async def resource(self, obj: Mapping[str, Any]) -> ApiResource:
        """The served resource of a trial object's kind (``RunnerError`` when not served)."""
        if trial_kinds.is_job(obj):
            return JOB_RESOURCE
        try:
            return await self.discovery.resource(str(obj.get("apiVersion")), str(obj.get("kind")))
        except KindNotServed as e:
            raise RunnerError(str(e)) from e
        except API_ERRORS as e:
            raise RunnerError(f"cannot discover {obj.get('kind')}: {e}") from e

    # -- Runner protocol -------------------------------------------------------------------

    def manifest(
        self, experiment: Experiment, trial: Trial, rendered: RenderedTrial, env: Mapping[str, str]
    ) -> dict[str, Any]:
        """The object to create for a trial (see :func:`trial_manifest`), with this runner's
        owner."""
        owner = self.owner_reference(experiment) if self.owner_reference else None
        return trial_manifest(
            experiment,
            trial,
            rendered,
            env,
            owner,
            self.installation,
            self.collector_image,
            self.collector_command,
        )

    async def start(
        self, experiment: Experiment, trial: Trial, rendered: RenderedTrial, env: dict[str, str]
    ) -> KubernetesHandle:
        problems = self.problems(experiment)
        if problems:
            raise RunnerError("; ".join(str(p) for p in problems))
        obj = self.manifest(experiment, trial, rendered, env)
        r = await self.resource(obj)
        name, ns = obj["metadata"]["name"], experiment.namespace
        what = f"{r.kind} {ns}/{name}"
        for attempt in range(self.client.retries):
            try:
                fn, args = self.objects.create(r, ns, obj)
                created = await self.client.get_json(fn, *args)
            except ApiException as e:
                if e.status != 409:
                    raise RunnerError(f"cannot create {what}: {e.status} {api_message(e)}") from e
                fn, args = self.objects.get(r, ns, name)
                existing = await self.client.get_json(fn, *args)
                if existing is None:
                    continue  # deleted in between: create again
                labels = (existing.get("metadata") or {}).get("labels") or {}
                if not is_ours(existing, self.installation):
                    raise RunnerError(f"{what} exists and belongs to another installation") from e
                if labels.get(TRIAL_LABEL) != obj["metadata"]["labels"][TRIAL_LABEL]:
                    raise RunnerError(f"{what} exists and belongs to no trial {trial.name}") from e
                if (existing.get("metadata") or {}).get("deletionTimestamp"):
                    await asyncio.sleep(backoff_delay(attempt, 0.5))  # the old one is going away
                    continue
                log.info("trial %s: adopting its existing %s", trial.name, what)
                return self._handle(experiment, existing, r)
            except TRANSIENT_ERRORS as e:
                raise RunnerError(f"cannot create {what}: {e!r}") from e
            if created is None:
                raise RunnerError(f"cannot create {what}: namespace {ns} not found")
            return self._handle(experiment, created, r)
        raise RunnerError(f"cannot create {what}: it is still being deleted")

    async def _template_resource(self, experiment: Experiment) -> ApiResource | None:
        tt = experiment.spec.trial_template
        job = tt.trial_spec if tt is not None else None
        if job is None:
            return None
        try:
            return await self.resource(job)
        except RunnerError:
            return None  # not served: there is nothing of this kind to find

    async def _listed(self, experiment: Experiment, r: ApiResource, selector: str) -> list[Any]:
        fn, args = self.objects.list(r, experiment.namespace)
        listed = await self.client.get_json(fn, *args, label_selector=selector)
        return list((listed or {}).get("items") or [])

    async def attach(self, experiment: Experiment, trial: Trial) -> KubernetesHandle | None:
        """Find a trial's object by its labels after a restart; ``None`` when it is gone."""
        r = await self._template_resource(experiment)
        if r is None:
            return None
        labels = job_labels(experiment, trial, self.installation)
        selector = self._selector(EXPERIMENT_LABEL, labels[EXPERIMENT_LABEL])
        selector += f",{TRIAL_LABEL}={labels[TRIAL_LABEL]}"
        try:
            listed = await self._listed(experiment, r, selector)
        except API_ERRORS as e:
            raise RunnerError(f"cannot look up the {r.kind} of trial {trial.name}: {e}") from e
        found = [
            j
            for j in listed
            if not (j.get("metadata") or {}).get("deletionTimestamp")
            and is_ours(j, self.installation)
        ]
        if not found:
            return None
        found.sort(key=lambda j: j["metadata"]["name"] != labels[TRIAL_LABEL])
        return self._handle(experiment, found[0], r)

    async def cleanup(self, experiment: Experiment) -> None:
        """Delete every trial object of a deleted experiment (found by label), pods included.

        Objects with an ownerReference to an Experiment resource are garbage-collected with it
        anyway; this covers experiments submitted through the API, and a garbage collector
        that has not caught up yet.
        """
        r = await self._template_resource(experiment)
        if r is None:
            return
        ns = experiment.namespace
        selector = self._selector(EXPERIMENT_LABEL, dns_label(experiment.name))
        try:
            for obj in await self._listed(experiment, r, selector):
                meta = obj.get("metadata") or {}
                if meta.get("deletionTimestamp") or not is_ours(obj, self.installation):
                    continue
                fn, args = self.objects.delete(r, ns, meta["name"])
                try:
                    await self.client.call(
                        fn,
                        *args,
                        propagation_policy="Background",
                        _preload_content=False,
                    )
                except ApiException as e:
                    if e.status != 404:
                        raise
        except API_ERRORS as e:
            raise RunnerError(
                f"cannot delete the {r.kind}s of experiment {ns}/{experiment.name}: {e}"
            ) from e

    def _selector(self, key: str, value: str) -> str:
        """``key=value``, narrowed to this installation's objects where a selector can."""
        ours = installation_selector(self.installation)
        return f"{key}={value}" + (f",{ours}" if ours else "")

    def _handle(
        self, experiment: Experiment, obj: Mapping[str, Any], resource: ApiResource = JOB_RESOURCE
    ) -> KubernetesHandle:
        tt = experiment.spec.trial_template
        assert tt is not None
        container = tt.primary_container_name
        if container is None:
            if trial_kinds.is_job(obj):
                containers = job_containers(obj)
                container = containers[0].get("name") if containers else None
            else:
                try:
                    container = trial_kinds.primary_container(obj, None, tt.primary_pod_labels).get(
                        "name"
                    )
                except trial_kinds.PrimaryNotFound:
                    container = None
        return KubernetesHandle(
            self,
            namespace=experiment.namespace,
            name=obj["metadata"]["name"],
            uid=object_uid(obj),
            trial_label=(obj["metadata"].get("labels") or {}).get(TRIAL_LABEL, ""),
            container=container,
            retain=tt.retain,
            success=compile_condition(tt.success_condition or ""),
            failure=compile_condition(tt.failure_condition or ""),
            resource=resource,
            primary_labels=None if trial_kinds.is_job(obj) else tt.primary_pod_labels,
            initial=obj,
        )
