"""One trial on Kubernetes, as the controller follows it: its outcome, its log, stopping it.

The trial's object (a Job, a PyTorchJob, a TrainJob...) and its pods are read from the runner's
shared informers (:mod:`tuner.k8s.informer`): one watch per namespace and kind, and one of pods
per namespace, serve every trial, so a handle holds no watch of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import client as k8s
from kubernetes.client import ApiException

from tuner.errors import RunnerError
from tuner.k8s.client import API_ERRORS, RetryingClient, api_message, backoff_delay
from tuner.k8s.discovery import ApiResource
from tuner.k8s.gjson import Condition
from tuner.k8s.informer import Changes, Informer
from tuner.k8s.jobs import (
    container_ended,
    container_status,
    image_pull_problem,
    instance_over,
    job_outcome,
    object_uid,
)
from tuner.k8s.log_slots import LogSlots
from tuner.k8s.object_calls import ObjectCalls
from tuner.k8s.streams import thread_lines
from tuner.k8s.trial_objects import (
    name_label,
    pod_keys,
    primary_pods,
    suspend_patch,
    trial_pod_keys,
)
from tuner.runners.base import TrialHandle, TrialOutcome
from tuner.runners.kubernetes_sidecar import sidecar_problem
from tuner.templates import TRIAL_LABEL

log = logging.getLogger(__name__)

JOB_RESOURCE = ApiResource("batch", "v1", "Job", "jobs", True)
SETTLE_SECONDS = 3.0
INITIAL_SECONDS = 10.0
"""How long a handle takes its object as created while the cache has not got it yet (1,000
trials started at once would otherwise each read theirs from the API, twice)."""
"""How long a finished trial's outcome waits for its pods' final status to reach the cache."""


class HandleRunner(Protocol):
    """What a handle uses of its runner (:class:`tuner.runners.kubernetes.KubernetesRunner`)."""

    client: RetryingClient
    core: k8s.CoreV1Api
    batch: k8s.BatchV1Api
    objects: ObjectCalls
    image_pull_timeout: float
    log_read_timeout: float
    log_slots: LogSlots

    def object_informer(self, namespace: str, resource: ApiResource) -> Informer: ...

    def pod_informer(self, namespace: str) -> Informer: ...


@dataclass
class _PodLog:
    """What one handle has read of one container instance's log."""

    lines: int = 0
    errors: int = 0


class KubernetesHandle(TrialHandle):
    """A trial's object: its log, its outcome, and how to stop it. ``ref`` is the object's name.

    **Outcome.** :meth:`wait` follows the object in the shared informer until the template's
    ``successCondition`` or ``failureCondition`` holds (:func:`tuner.k8s.gjson.compile_condition`
    covers the forms Katib uses, such as ``status.conditions.#(type=="Complete")#|#(status==
    "True")#``). The reason comes from the object's ``Failed`` condition and the primary pod
    (:func:`tuner.k8s.jobs.job_outcome`): ``OOMKilled``, ``BackoffLimitExceeded``, the primary
    container's exit code, or an image pull error that lasts longer than the runner's
    ``image_pull_timeout``, which fails the trial and removes its object. A finished trial of
    another kind than Job is deleted when the template does not ``retain`` it, as Katib does.

    **Metrics.** :meth:`lines` follows the primary container's log (of the pods with the
    template's ``primaryPodLabels``) through the API, pod after pod when the trial retries. A
    dropped stream is reopened and the lines already yielded are skipped. The runner's
    :class:`~tuner.k8s.log_slots.LogSlots` bound the streams: a trial that gets no follow slot
    reads its log in one request once its container has ended. A handle found by
    ``attach`` after a restart reads the log from its first line again: storage keys
    observations by ``(trial, metric, step)``, so a replayed line stores nothing new.

    **Stopping.** :meth:`kill` deletes the object with Background propagation. With ``retain``,
    the object is kept but its pods are stopped: a Job's by ``spec.parallelism`` 0, a Kubeflow
    training job's by ``spec.runPolicy.suspend``, a TrainJob's or an Argo Workflow's by
    ``spec.suspend``, a Tekton PipelineRun's by ``spec.status: Cancelled``
    (:func:`tuner.k8s.trial_objects.suspend_patch`).
    """

    def __init__(
        self,
        runner: HandleRunner,
        *,
        namespace: str,
        name: str,
        uid: str,
        trial_label: str,
        container: str | None,
        retain: bool,
        success: Condition,
        failure: Condition,
        resource: ApiResource = JOB_RESOURCE,
        primary_labels: Mapping[str, str] | None = None,
        initial: Mapping[str, Any] | None = None,
    ) -> None:
        self.runner = runner
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.trial_label = trial_label
        self.container = container
        self.retain = retain
        self.resource = resource
        self.primary_labels = dict(primary_labels or {})
        self._success = success
        self._failure = failure
        self._killed = asyncio.Event()
        self._seen = False
        self._initial = (dict(initial), time.monotonic()) if initial is not None else None
        """The object as created or found, with when: what the cache lacks for a moment."""

    @property
    def ref(self) -> str:
        return self.name

    @property
    def is_job(self) -> bool:
        return (self.resource.group, self.resource.kind) == ("batch", "Job")

    # -- reading state ---------------------------------------------------------------------

    async def _objects(self) -> Informer:
        informer = self.runner.object_informer(self.namespace, self.resource)
        await informer.synced()
        return informer

    async def _pods(self) -> Informer:
        informer = self.runner.pod_informer(self.namespace)
        await informer.synced()
        return informer

    def _pod_keys(self) -> list[str]:
        return trial_pod_keys(self.uid, self.name, self.trial_label, self.is_job)

    def _mine(self, obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if obj is None or (self.uid and object_uid(obj) != self.uid):
            return None
        return dict(obj)

    async def current(self) -> dict[str, Any] | None:
        """The trial's object from the cache (read from the API until the cache has it once);
        ``None`` once it is gone or replaced by another of its name."""
        informer = await self._objects()
        obj = self._mine(informer.get(self.name))
        if obj is not None:
            self._seen = True
            return obj
        if self._seen:
            return None
        if self._initial is not None and time.monotonic() - self._initial[1] < INITIAL_SECONDS:
            return self._mine(self._initial[0])  # just made: the cache gets it in a moment
        r = self.resource
        fn, args = self.runner.objects.get(r, self.namespace, self.name)
        return self._mine(await self.runner.client.get_json(fn, *args))

    async def pods(self) -> list[dict[str, Any]]:
        """The trial's primary pods from the cache, oldest first."""
        informer = await self._pods()
        seen: dict[str, dict[str, Any]] = {}
        for key in self._pod_keys():
            for pod in informer.indexed(key):
                seen[object_uid(pod)] = pod
        return primary_pods(list(seen.values()), self.primary_labels)

    async def listed_pods(self) -> list[dict[str, Any]]:
        """The trial's primary pods read from the API, not the cache: for a finished trial,
        whose pods the pod informer may not have caught up with (a watch broken meanwhile).

        Read from the apiserver's own watch cache (``resourceVersion=0``), which etcd's watch
        keeps current whatever happens to ours: a quorum read would have etcd read every pod of
        the namespace for each trial that ends (1,000 ending trials: 1,000 x 1,000 pods)."""
        selectors = [f"{TRIAL_LABEL}={self.trial_label}"] if self.trial_label else []
        label = None if self.is_job else name_label(self.resource.group, self.resource.kind)
        if label is not None:
            selectors.append(f"{label}={self.name}")
        keys = set(self._pod_keys())
        seen: dict[str, dict[str, Any]] = {}
        for selector in selectors:
            listed = await self.runner.client.get_json(
                self.runner.core.list_namespaced_pod,
                self.namespace,
                label_selector=selector,
                resource_version="0",
            )
            for pod in (listed or {}).get("items") or []:
                if keys & set(pod_keys(pod)):
                    seen[object_uid(pod)] = pod
        return primary_pods(list(seen.values()), self.primary_labels)

    @contextlib.asynccontextmanager
    async def _interest(self) -> AsyncIterator[Changes]:
        """Changes of the object and its pods, registered for the whole block: call
        :meth:`Changes.reset` before reading the cache, then :meth:`Changes.wait`."""
        objects, pods = await self._objects(), await self._pods()
        async with objects.watching([self.name]) as a, pods.watching(self._pod_keys()) as b:
            yield Changes((a, b), self._killed)

    async def metrics_host(self) -> str | None:
        """The IP of the newest primary pod, where a PrometheusMetric collector scrapes it."""
        for pod in reversed(await self.pods()):
            ip = (pod.get("status") or {}).get("podIP")
            if ip:
                return str(ip)
        return None

    async def collector_problem(self) -> str | None:
        """The problem the relay sidecar of the newest primary pod printed last, or ``None``."""
        runner = self.runner
        return await sidecar_problem(runner.client, runner.core, self.namespace, await self.pods())

    def verdict(self, obj: Mapping[str, Any]) -> bool | None:
        """True (succeeded), False (failed) or None (still running) by the template's conditions."""
        if self._success(obj):
            return True
        if self._failure(obj):
            return False
        return None

    # -- TrialHandle -----------------------------------------------------------------------

    async def wait(self) -> TrialOutcome:
        killed = TrialOutcome(False, "Killed", f"{self.resource.kind} {self.name} was stopped")
        pull_since: float | None = None
        async with self._interest() as changes:
            while True:
                changes.reset()
                if self._killed.is_set():
                    return killed
                try:
                    obj, pods = await self._state()
                except API_ERRORS as e:
                    log.warning("%s %s/%s: %r", self.resource.kind, self.namespace, self.name, e)
                    await asyncio.sleep(backoff_delay(1))
                    continue
                if obj is None:
                    kind = self.resource.kind
                    return TrialOutcome(False, f"{kind}Deleted", f"{kind} {self.name} was deleted")
                verdict = self.verdict(obj)
                if verdict is not None:
                    pods = await self._settled(pods, changes)
                    outcome = job_outcome(obj, pods, self.container, verdict)
                    if not self.retain and not self.is_job:
                        await self._stop()
                    return outcome
                problem = image_pull_problem(pods)
                if problem is None:
                    pull_since = None
                else:
                    pull_since = pull_since or time.monotonic()
                    if time.monotonic() - pull_since >= self.runner.image_pull_timeout:
                        await self._stop()
                        return TrialOutcome(False, problem[0], problem[1])
                await changes.wait()

    async def _state(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        return await self.current(), await self.pods()

    async def _settled(self, pods: list[dict[str, Any]], changes: Changes) -> list[dict[str, Any]]:
        """The pods once every one's primary container has ended (or after a short while)."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while pods and not all(container_ended(p, self.container) for p in pods):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await changes.wait(left)
            changes.reset()
            pods = await self.pods()
        return pods or await self.listed_pods()

    async def lines(self) -> AsyncIterator[str]:
        read: dict[tuple[str, int], _PodLog] = {}
        done: set[str] = set()
        async with self._interest() as changes:
            async for line in self._lines(read, done, changes):
                yield line

    async def _lines(
        self, read: dict[tuple[str, int], _PodLog], done: set[str], changes: Changes
    ) -> AsyncIterator[str]:
        final = False  # the trial has finished: read its pods from the API, not the cache
        while not self._killed.is_set():
            changes.reset()
            try:
                obj, pods = await self._state()
                if final:
                    pods = await self.listed_pods()
            except API_ERRORS as e:
                log.warning("%s/%s: cannot read status: %r", self.namespace, self.name, e)
                await asyncio.sleep(backoff_delay(1))
                continue
            if obj is None:
                return
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
                if self.verdict(obj) is not None and all(object_uid(p) in done for p in pods):
                    if final or self._counted_all(obj, done):
                        return
                    final = True  # check once more against the API: the cache may lag
                    continue
                await changes.wait()
                continue
            slots = self.runner.log_slots
            if container_ended(pod, self.container):  # read in one request, without a follow slot
                async with slots.read_once():
                    async for line in self._follow(pod, read, done, changes, follow=False):
                        yield line
            elif await slots.follow_or_change(changes):
                try:
                    async for line in self._follow(pod, read, done, changes):
                        yield line
                finally:
                    slots.end_follow()

    def _counted_all(self, obj: Mapping[str, Any], done: set[str]) -> bool:
        """Whether a Job's own count of ended pods says none is missing from those read (so
        the cache missed none, and listing them from the API is not needed)."""
        status = obj.get("status") or {}
        ended = int(status.get("succeeded") or 0) + int(status.get("failed") or 0)
        return self.is_job and 0 < ended <= len(done)

    async def _follow(
        self,
        pod: dict[str, Any],
        read: dict[tuple[str, int], _PodLog],
        done: set[str],
        changes: Changes,
        follow: bool = True,
    ) -> AsyncIterator[str]:
        """Stream one container instance's log once (``follow``: as it is written; else what
        there is now); mark the pod done when it has ended."""
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
                follow=follow,
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
        now = await self._cached_end(pod, key[1], changes) if failed is None else None
        if now is None:  # not seen over in the cache: ask the API
            try:
                now = await runner.client.get_json(
                    runner.core.read_namespaced_pod, pod_name, self.namespace
                )
            except API_ERRORS as e:
                now, failed = pod, failed or e
        ended = now is None or instance_over(now, self.container, key[1])
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
                log.warning("log of %s/%s: giving up after 5 errors", self.namespace, pod_name)
                done.add(key[0])
                return
            await asyncio.sleep(backoff_delay(progress.errors))
        elif fresh == 0:
            # The stream ended with nothing new while the pod still looks alive: wait for its
            # status to catch up (or for the next window) before reading again.
            await changes.wait()

    async def _cached_end(
        self, pod: dict[str, Any], restarts: int, changes: Changes
    ) -> dict[str, Any] | None:
        """The pod from the cache once it shows that the container instance whose log ended is
        over (it does within moments of the end: no request needed), or ``None`` when it does
        not within :data:`SETTLE_SECONDS` (the stream broke while the container runs on)."""
        uid, deadline = object_uid(pod), time.monotonic() + SETTLE_SECONDS
        while not self._killed.is_set():
            changes.reset()
            now = next((p for p in await self.pods() if object_uid(p) == uid), None)
            if now is not None and instance_over(now, self.container, restarts):
                return now
            if (left := deadline - time.monotonic()) <= 0:
                break
            await changes.wait(left)
        return None

    async def kill(self) -> None:
        """Stop the trial: delete its object (Background), or with ``retain`` stop only a Job's
        pods."""
        self._killed.set()
        await self._stop()

    async def _stop(self) -> None:
        runner, r = self.runner, self.resource
        try:
            if self.retain and self.is_job:
                await runner.client.call(
                    runner.batch.patch_namespaced_job,
                    self.name,
                    self.namespace,
                    {"spec": {"parallelism": 0}},
                    _preload_content=False,
                )
            elif self.retain:
                patch = suspend_patch(r.group, r.kind)
                if patch is None:
                    log.warning(
                        "%s %s/%s is retained and cannot be suspended: it runs on",
                        r.kind,
                        self.namespace,
                        self.name,
                    )
                    return
                fn, args = runner.objects.patch(r, self.namespace, self.name, patch)
                await runner.client.call(
                    fn,
                    *args,
                    _content_type="application/merge-patch+json",
                    _preload_content=False,
                )
            else:
                fn, args = runner.objects.delete(r, self.namespace, self.name)
                await runner.client.call(
                    fn,
                    *args,
                    propagation_policy="Background",
                    _preload_content=False,
                )
        except ApiException as e:
            if e.status != 404:
                raise RunnerError(
                    f"cannot stop {r.kind} {self.namespace}/{self.name}: "
                    f"{e.status} {api_message(e)}"
                ) from e


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")
