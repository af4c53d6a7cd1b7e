"""Each trial as a Kubernetes ``batch/v1`` Job (``tuner serve --runner kubernetes``).

This module holds what a Job means to a trial: which Job a trial is, when it ended and how, what
to stream. The plumbing (the retrying client, watches, log streams, conditions, the Job manifest)
is in :mod:`tuner.k8s`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client import ApiException

from tuner.collectors.relay import PROBLEM_PREFIX
from tuner.collectors.sidecar import COLLECTOR_CONTAINER, DEFAULT_COLLECTOR_IMAGE, RELAY_COMMAND
from tuner.errors import FieldError, RunnerError, SpecError
from tuner.k8s.client import (
    API_ERRORS,
    TRANSIENT_ERRORS,
    RetryingClient,
    api_message,
    backoff_delay,
    load_api_client,
)
from tuner.k8s.gjson import Condition, compile_condition
from tuner.k8s.jobs import (
    DEFAULT_INSTALLATION,
    container_status,
    creation_order,
    dns_label,
    image_pull_problem,
    installation_selector,
    is_ours,
    job_labels,
    job_manifest,
    job_outcome,
    object_uid,
)
from tuner.k8s.streams import thread_lines
from tuner.k8s.watching import Changed, Listed, WatchItem, watch_objects
from tuner.runners.base import Runner, TrialHandle, TrialOutcome
from tuner.runners.support import unsupported
from tuner.spec import CollectorKind, Experiment, job_containers
from tuner.templates import EXPERIMENT_LABEL, TRIAL_LABEL, RenderedTrial
from tuner.trials import Trial

log = logging.getLogger(__name__)

T = TypeVar("T")

OwnerReference = Callable[[Experiment], Mapping[str, Any] | None]
"""Gives the ownerReference of an experiment's Jobs, or ``None`` for none."""


class KubernetesRunner(Runner):
    """Runs trials as ``batch/v1`` Jobs.

    **Jobs.** A trial becomes its rendered ``trialSpec`` (``${trialParameters.x}`` already
    substituted by :func:`tuner.templates.render_trial`), made into a Job by
    :func:`tuner.k8s.jobs.job_manifest`: named by :func:`~tuner.k8s.jobs.job_name`, labelled with
    the experiment and the trial, the ``TUNER_*`` environment in the primary container. An
    optional ownerReference (``owner_reference``, for experiments that came from an Experiment
    custom resource) lets the garbage collector remove the Jobs with the resource. Creating a Job
    that already exists (409, after a restart) adopts it when its labels say it belongs to the
    same trial: one trial never gets two Jobs.

    **Collectors.** StdOut reads the primary container's log (:meth:`KubernetesHandle.lines`);
    PrometheusMetric scrapes the Pod's IP. File and TensorFlowEvent files live inside the Pod, so,
    as Katib does, a sidecar (``tuner-metrics-collector``: ``collector_command`` in
    ``collector_image``) shares an ``emptyDir`` and the process namespace with the primary
    container, reads them and pushes what it reads (:mod:`tuner.collectors.relay`): for the
    controller such a trial is a Push trial, and :meth:`KubernetesHandle.collector_problem` reads
    why its metrics were unavailable from the sidecar's log. Custom runs the user's sidecar.

    **Resilience.** Requests go through :class:`tuner.k8s.client.RetryingClient` (429, 5xx and
    connection errors retried with backoff); watches through
    :func:`tuner.k8s.watching.watch_objects` (a new list after ``410 Gone``, dropped connections
    and apiserver restarts). A create that hits 409 adopts the existing Job, or retries while a
    previous Job of that name is being deleted.

    Args:
        api_client: a configured ``kubernetes.client.ApiClient``; by default one is built by
            :func:`tuner.k8s.client.load_api_client` from ``kubeconfig`` and ``context``.
        owner_reference: gives the ownerReference (the Experiment custom resource) for an
            experiment's Jobs, or ``None`` for none.
        image_pull_timeout: seconds an image pull error may last before the trial fails.
        watch_window: seconds a watch stays open before the state is re-read (it also bounds how
            late an image pull problem is noticed).
        retries: attempts of a request that fails with 429, 5xx or a connection error.
        log_read_timeout: seconds without log output after which a log stream is reopened.
        installation: this installation's name: its Jobs carry it as a label (their names
            start with it unless it is ``default``), and other installations' Jobs are never
            adopted, attached to or deleted (:func:`tuner.k8s.jobs.is_ours`).
        collector_image: the image of the File / TensorFlowEvent collector's sidecar (tuner's
            own image, with the ``tfevent`` extra for TensorFlowEvent).
        collector_command: how the sidecar starts the relay in that image.
    """

    detached = True  # Jobs outlive the service: a restarted controller re-attaches

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
        installation: str = DEFAULT_INSTALLATION,
        collector_image: str = DEFAULT_COLLECTOR_IMAGE,
        collector_command: Sequence[str] = RELAY_COMMAND,
    ) -> None:
        api = api_client if api_client is not None else load_api_client(kubeconfig, context)
        self.client = RetryingClient(api, retries=retries)
        self.api = api
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.owner_reference = owner_reference
        self.image_pull_timeout = image_pull_timeout
        self.watch_window = watch_window
        self.log_read_timeout = log_read_timeout
        self.installation = installation
        self.collector_image = collector_image
        self.collector_command = tuple(collector_command)

    def close(self) -> None:
        self.client.close()

    # -- checks ----------------------------------------------------------------------------

    @staticmethod
    def problems(experiment: Experiment) -> list[FieldError]:
        """What in ``experiment`` this runner cannot run (empty when it can)."""
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
        collectors = tuple(CollectorKind)
        errors += unsupported(experiment, runner="Kubernetes", collectors=collectors)
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

    # -- Runner protocol -------------------------------------------------------------------

    def manifest(
        self, experiment: Experiment, trial: Trial, rendered: RenderedTrial, env: Mapping[str, str]
    ) -> dict[str, Any]:
        """The Job to create for a trial (see :func:`job_manifest`), with this runner's owner."""
        owner = self.owner_reference(experiment) if self.owner_reference else None
        return job_manifest(
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
        job = self.manifest(experiment, trial, rendered, env)
        name, ns = job["metadata"]["name"], experiment.namespace
        for attempt in range(self.client.retries):
            try:
                created = await self.client.get_json(self.batch.create_namespaced_job, ns, job)
            except ApiException as e:
                if e.status != 409:
                    raise RunnerError(
                        f"cannot create Job {ns}/{name}: {e.status} {api_message(e)}"
                    ) from e
                existing = await self.client.get_json(self.batch.read_namespaced_job, name, ns)
                if existing is None:
                    continue  # deleted in between: create again
                labels = (existing.get("metadata") or {}).get("labels") or {}
                if not is_ours(existing, self.installation):
                    raise RunnerError(
                        f"Job {ns}/{name} exists and belongs to another installation"
                    ) from e
                if labels.get(TRIAL_LABEL) != job["metadata"]["labels"][TRIAL_LABEL]:
                    raise RunnerError(
                        f"Job {ns}/{name} exists and belongs to no trial {trial.name}"
                    ) from e
                if (existing.get("metadata") or {}).get("deletionTimestamp"):
                    await asyncio.sleep(backoff_delay(attempt, 0.5))  # the old Job is going away
                    continue
                log.info("trial %s: adopting its existing Job %s/%s", trial.name, ns, name)
                return self._handle(experiment, existing)
            except TRANSIENT_ERRORS as e:
                raise RunnerError(f"cannot create Job {ns}/{name}: {e!r}") from e
            if created is None:
                raise RunnerError(f"cannot create Job {ns}/{name}: namespace {ns} not found")
            return self._handle(experiment, created)
        raise RunnerError(f"cannot create Job {ns}/{name}: it is still being deleted")

    async def attach(self, experiment: Experiment, trial: Trial) -> KubernetesHandle | None:
        """Find a trial's Job by its labels after a restart; ``None`` when it is gone."""
        labels = job_labels(experiment, trial, self.installation)
        selector = self._selector(EXPERIMENT_LABEL, labels[EXPERIMENT_LABEL])
        selector += f",{TRIAL_LABEL}={labels[TRIAL_LABEL]}"
        try:
            listed = await self.client.get_json(
                self.batch.list_namespaced_job, experiment.namespace, label_selector=selector
            )
        except API_ERRORS as e:
            raise RunnerError(f"cannot look up the Job of trial {trial.name}: {e}") from e
        jobs = [
            j
            for j in (listed or {}).get("items") or []
            if not (j.get("metadata") or {}).get("deletionTimestamp")
            and is_ours(j, self.installation)
        ]
        if not jobs:
            return None
        jobs.sort(key=lambda j: j["metadata"]["name"] != labels[TRIAL_LABEL])
        return self._handle(experiment, jobs[0])

    async def cleanup(self, experiment: Experiment) -> None:
        """Delete every Job of a deleted experiment (found by label), pods included.

        Jobs with an ownerReference to an Experiment resource are garbage-collected with it
        anyway; this covers experiments submitted through the API, and a garbage collector
        that has not caught up yet.
        """
        ns = experiment.namespace
        selector = self._selector(EXPERIMENT_LABEL, dns_label(experiment.name))
        try:
            listed = await self.client.get_json(
                self.batch.list_namespaced_job, ns, label_selector=selector
            )
            for job in (listed or {}).get("items") or []:
                meta = job.get("metadata") or {}
                if meta.get("deletionTimestamp") or not is_ours(job, self.installation):
                    continue
                try:
                    await self.client.call(
                        self.batch.delete_namespaced_job,
                        meta["name"],
                        ns,
                        propagation_policy="Background",
                        _preload_content=False,
                    )
                except ApiException as e:
                    if e.status != 404:
                        raise
        except API_ERRORS as e:
            raise RunnerError(
                f"cannot delete the Jobs of experiment {ns}/{experiment.name}: {e}"
            ) from e

    def _selector(self, key: str, value: str) -> str:
        """``key=value``, narrowed to this installation's objects where a selector can."""
        ours = installation_selector(self.installation)
        return f"{key}={value}" + (f",{ours}" if ours else "")

    def _handle(self, experiment: Experiment, job: Mapping[str, Any]) -> KubernetesHandle:
        tt = experiment.spec.trial_template
        assert tt is not None
        container = tt.primary_container_name
        if container is None:
            containers = job_containers(job)
            container = containers[0].get("name") if containers else None
        return KubernetesHandle(
            self,
            namespace=experiment.namespace,
            name=job["metadata"]["name"],
            uid=object_uid(job),
            trial_label=(job["metadata"].get("labels") or {}).get(TRIAL_LABEL, ""),
            container=container,
            retain=tt.retain,
            success=compile_condition(tt.success_condition or ""),
            failure=compile_condition(tt.failure_condition or ""),
        )


@dataclass
class _PodLog:
    """What one handle has read of one container instance's log."""

    lines: int = 0
    errors: int = 0


class KubernetesHandle(TrialHandle):
    """A trial's Job: its log, its outcome, and how to stop it. ``ref`` is the Job name.

    **Outcome.** :meth:`wait` watches the Job until the template's ``successCondition`` or
    ``failureCondition`` holds (:func:`tuner.k8s.gjson.compile_condition` covers the forms Katib
    uses, such as ``status.conditions.#(type=="Complete")#|#(status=="True")#``). The reason comes
    from the pods (:func:`tuner.k8s.jobs.job_outcome`): ``OOMKilled``, the Job's
    ``BackoffLimitExceeded`` / ``DeadlineExceeded``, the primary container's exit code, or an image
    pull error (``ErrImagePull``, ``ImagePullBackOff``, ...) that lasts longer than the runner's
    ``image_pull_timeout``, which fails the trial and removes its Job.

    **Metrics.** :meth:`lines` follows the primary container's log through the API
    (``follow=true``), pod after pod when the Job retries. A dropped stream is reopened and the
    lines already yielded are skipped, so no line is seen twice by one handle. A handle from
    :meth:`KubernetesRunner.attach` (after a restart) reads the log from its first line again: the
    metrics parsers number steps from the start of the output and storage keys observations by
    ``(trial, metric, step)``, so a replayed line stores nothing new. The Push collector needs
    nothing from the runner.

    **Stopping.** :meth:`kill` deletes the Job with Background propagation. With ``retain: true``
    in the trial template the Job is kept, but its running pods are stopped by setting
    ``spec.parallelism`` to 0 (Jobs had no ``suspend`` before Kubernetes 1.21).
    """

    def __init__(
        self,
        runner: KubernetesRunner,
        *,
        namespace: str,
        name: str,
        uid: str,
        trial_label: str,
        container: str | None,
        retain: bool,
        success: Condition,
        failure: Condition,
    ) -> None:
        self.runner = runner
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.trial_label = trial_label
        self.container = container
        self.retain = retain
        self._success = success
        self._failure = failure
        self._killed = asyncio.Event()

    @property
    def ref(self) -> str:
        return self.name

    # -- reading state ---------------------------------------------------------------------

    async def job(self) -> dict[str, Any] | None:
        """The Job, or ``None`` once it is gone (or replaced by another of the same name)."""
        job = await self.runner.client.get_json(
            self.runner.batch.read_namespaced_job, self.name, self.namespace
        )
        if job is None or (self.uid and object_uid(job) != self.uid):
            return None
        return dict(job)

    async def pods(self) -> tuple[list[dict[str, Any]], str]:
        """The Job's pods, oldest first, and the list's resourceVersion (for a watch)."""
        listed = await self.runner.client.get_json(
            self.runner.core.list_namespaced_pod,
            self.namespace,
            label_selector=f"{TRIAL_LABEL}={self.trial_label}",
        )
        items = [
            p
            for p in (listed or {}).get("items") or []
            if any(o.get("uid") == self.uid for o in p["metadata"].get("ownerReferences") or [])
        ]
        items.sort(key=creation_order)
        return items, str(((listed or {}).get("metadata") or {}).get("resourceVersion", ""))

    async def metrics_host(self) -> str | None:
        """The IP of the Job's newest Pod, where a PrometheusMetric collector scrapes it."""
        pods, _ = await self.pods()
        for pod in reversed(pods):
            ip = (pod.get("status") or {}).get("podIP")
            if ip:
                return str(ip)
        return None

    async def collector_problem(self) -> str | None:
        """The problem the relay sidecar (``tuner-metrics-collector``) of the Job's newest Pod
        printed last (:data:`tuner.collectors.relay.PROBLEM_PREFIX`), or ``None``."""
        pods, _ = await self.pods()
        pod = next(
            (
                p
                for p in reversed(pods)
                if any(
                    c.get("name") == COLLECTOR_CONTAINER
                    for c in (p.get("spec") or {}).get("containers") or []
                )
            ),
            None,
        )
        if pod is None:
            return None
        runner = self.runner
        try:
            text = await runner.client.call(
                runner.core.read_namespaced_pod_log,
                pod["metadata"]["name"],
                self.namespace,
                container=COLLECTOR_CONTAINER,
                tail_lines=20,
            )
        except ApiException as e:
            if e.status in (400, 404):  # the Pod or its log is gone
                return None
            raise
        problems = [
            line[len(PROBLEM_PREFIX) :]
            for line in str(text or "").splitlines()
            if line.startswith(PROBLEM_PREFIX)
        ]
        return problems[-1] if problems else None

    def verdict(self, job: Mapping[str, Any]) -> bool | None:
        """True (succeeded), False (failed) or None (still running) by the template's conditions."""
        if self._success(job):
            return True
        if self._failure(job):
            return False
        return None

    async def _next(self, items: AsyncIterator[WatchItem]) -> WatchItem | None:
        """The next item of a watch, or ``None`` once the trial is killed."""
        step = asyncio.ensure_future(anext(items))
        killed = asyncio.ensure_future(self._killed.wait())
        try:
            await asyncio.wait({step, killed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (step, killed):
                task.cancel()
            await asyncio.gather(step, killed, return_exceptions=True)
        if step.cancelled():
            return None
        return step.result()

    def _watch(self, what: str, rv: str | None, **selector: str) -> AsyncGenerator[WatchItem, None]:
        fn = (
            self.runner.batch.list_namespaced_job
            if what == "job"
            else self.runner.core.list_namespaced_pod
        )
        return watch_objects(
            self.runner.client,
            fn,
            self.namespace,
            window=self.runner.watch_window,
            what=f"{what} of Job {self.namespace}/{self.name}",
            resource_version=rv,
            min_delay=0.2,
            max_delay=5.0,
            **selector,
        )

    async def _until_changed(self, what: str, rv: str, **selector: str) -> None:
        """Return at the first change after resourceVersion ``rv``, at the window's end, or
        when the trial is killed."""
        items = self._watch(what, rv, **selector)
        try:
            await self._next(items)
        finally:
            await items.aclose()

    def _current(self, item: WatchItem, job: dict[str, Any] | None) -> dict[str, Any] | None:
        """The Job after a watch item (``None``: deleted, or replaced by another of its name)."""
        if isinstance(item, Listed):
            job = next((j for j in item.objects if j["metadata"]["name"] == self.name), None)
        elif isinstance(item, Changed):
            job = None if item.type == "DELETED" else item.object
        if job is None or (self.uid and object_uid(job) != self.uid):
            return None
        return job

    async def _read_pods(self) -> list[dict[str, Any]] | None:
        """The Job's pods, read again until it works; ``None`` when the trial is killed."""
        errors = 0
        while not self._killed.is_set():
            try:
                pods, _ = await self.pods()
                return pods
            except API_ERRORS as e:
                log.warning("Job %s/%s: cannot read its pods: %r", self.namespace, self.name, e)
                await asyncio.sleep(backoff_delay(errors))
                errors += 1
        return None

    # -- TrialHandle -----------------------------------------------------------------------

    async def wait(self) -> TrialOutcome:
        killed = TrialOutcome(False, "Killed", f"Job {self.name} was stopped")
        pull_since: float | None = None
        job: dict[str, Any] | None = None
        items = self._watch("job", None, field_selector=f"metadata.name={self.name}")
        try:
            while True:
                item = await self._next(items)
                if item is None or self._killed.is_set():
                    return killed
                job = self._current(item, job)
                if job is None:
                    return TrialOutcome(False, "JobDeleted", f"Job {self.name} was deleted")
                verdict = self.verdict(job)
                pods = await self._read_pods()
                if pods is None:
                    return killed
                if verdict is not None:
                    return job_outcome(job, pods, self.container, verdict)
                problem = image_pull_problem(pods)
                if problem is None:
                    pull_since = None
                else:
                    pull_since = pull_since or time.monotonic()
                    if time.monotonic() - pull_since >= self.runner.image_pull_timeout:
                        await self._stop()
                        return TrialOutcome(False, problem[0], problem[1])
        finally:
            await items.aclose()

    async def lines(self) -> AsyncIterator[str]:
        read: dict[tuple[str, int], _PodLog] = {}
        done: set[str] = set()
        errors = 0
        while not self._killed.is_set():
            try:
                job = await self.job()
                if job is None:
                    return
                pods, rv = await self.pods()
            except API_ERRORS as e:
                log.warning("Job %s/%s: cannot read status: %r", self.namespace, self.name, e)
                await asyncio.sleep(backoff_delay(errors))
                errors += 1
                continue
            errors = 0
            pod = None
            for p in pods:
                if object_uid(p) in done:
                    continue
                s = container_status(p, self.container) or {}
                state = s.get("state") or {}
                if "running" in state or "terminated" in state:
                    pod = p
                    break
                if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    done.add(object_uid(p))  # ended without its container ever starting
            if pod is None:
                if self.verdict(job) is not None and all(object_uid(p) in done for p in pods):
                    return
                await self._until_changed(
                    "pods", rv, label_selector=f"{TRIAL_LABEL}={self.trial_label}"
                )
                continue
            async for line in self._follow(pod, read, done):
                yield line

    async def _follow(
        self,
        pod: dict[str, Any],
        read: dict[tuple[str, int], _PodLog],
        done: set[str],
    ) -> AsyncIterator[str]:
        """Stream one container instance's log once; mark the pod done when it has ended."""
        pod_name = pod["metadata"]["name"]
        status = container_status(pod, self.container) or {}
        key = (object_uid(pod), int(status.get("restartCount", 0)))
        progress = read.setdefault(key, _PodLog())
        skip, partial, fresh = progress.lines, b"", 0
        runner = self.runner

        def open_log() -> Any:
            return runner.core.read_namespaced_pod_log(
                pod_name,
                self.namespace,
                container=self.container,
                follow=True,
                _preload_content=False,
                _request_timeout=(10, runner.log_read_timeout),
            )

        stream = thread_lines(open_log, f"log {pod_name}")
        failed: BaseException | None = None
        try:
            async for raw in stream:
                if not raw.endswith(b"\n"):
                    partial = raw  # the last fragment: complete only if the container ended
                    continue
                if skip > 0:
                    skip -= 1
                    continue
                progress.lines += 1
                fresh += 1
                yield _decode(raw)
        except API_ERRORS as e:
            failed = e
        finally:
            await stream.aclose()
        try:
            now = await runner.client.get_json(
                runner.core.read_namespaced_pod, pod_name, self.namespace
            )
        except API_ERRORS as e:
            now, failed = pod, failed or e
        now_status = container_status(now or {}, self.container) or {}
        ended = (
            now is None
            or (now.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            or int(now_status.get("restartCount", 0)) != key[1]
            or "terminated" in (now_status.get("state") or {})
        )
        if ended and failed is None:
            if partial and skip <= 0:
                progress.lines += 1
                yield _decode(partial)
            done.add(key[0])
            return
        if failed is not None:
            progress.errors += 1
            log.info("log of %s/%s: %r; reconnecting", self.namespace, pod_name, failed)
            if ended and progress.errors >= 5:
                log.warning(
                    "log of %s/%s: giving up after %d errors",
                    self.namespace,
                    pod_name,
                    progress.errors,
                )
                done.add(key[0])
                return
            await asyncio.sleep(backoff_delay(progress.errors))
        elif fresh == 0:
            # The stream ended with nothing new while the pod still looks alive: wait for its
            # status to catch up (or for the next window) before reading again.
            rv = str(((now or {}).get("metadata") or {}).get("resourceVersion", ""))
            await self._until_changed("pods", rv, field_selector=f"metadata.name={pod_name}")

    async def kill(self) -> None:
        """Stop the trial: delete its Job (Background), or with ``retain`` stop only its pods."""
        self._killed.set()
        await self._stop()

    async def _stop(self) -> None:
        runner = self.runner
        try:
            if self.retain:
                await runner.client.call(
                    runner.batch.patch_namespaced_job,
                    self.name,
                    self.namespace,
                    {"spec": {"parallelism": 0}},
                    _preload_content=False,
                )
                return
            await runner.client.call(
                runner.batch.delete_namespaced_job,
                self.name,
                self.namespace,
                propagation_policy="Background",
                _preload_content=False,
            )
        except ApiException as e:
            if e.status != 404:
                raise RunnerError(
                    f"cannot stop Job {self.namespace}/{self.name}: {e.status} {api_message(e)}"
                ) from e


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")
