"""Run each trial as a Kubernetes ``batch/v1`` Job (``tuner serve --runner kubernetes``).

This module and the operator are the only ones that import the ``kubernetes`` client. Every client
call blocks, so it runs in a thread (a small pool for short calls, a daemon thread per stream for
log follows and watches): the event loop never blocks.

**Jobs.** A trial becomes its rendered ``trialSpec`` (``${trialParameters.x}`` already substituted
by :func:`tuner.templates.render_trial`), created in the experiment's namespace under
:func:`job_name` (the trial name when that is a valid DNS-1123 label, else a truncated name with a
hash, valid at any length). The Job and its pod template carry the labels ``tuner.dev/experiment``
and ``tuner.dev/trial``; the ``TUNER_*`` environment goes into the primary container. An optional
ownerReference (``owner_reference``, for experiments that came from an Experiment custom resource)
lets the garbage collector remove the Jobs with the resource. Creating a Job that already exists
(409, after a restart) adopts it when its labels say it belongs to the same trial: one trial never
gets two Jobs.

**Outcome.** :meth:`KubernetesHandle.wait` watches the Job until the template's
``successCondition`` or ``failureCondition`` holds (a small GJSON evaluator,
:func:`compile_condition`, covers the forms Katib uses, such as
``status.conditions.#(type=="Complete")#|#(status=="True")#``). The reason comes from the pods:
``OOMKilled``, the Job's ``BackoffLimitExceeded`` / ``DeadlineExceeded``, the primary container's
exit code, or an image pull error (``ErrImagePull``, ``ImagePullBackOff``, ...) that lasts longer
than ``image_pull_timeout``, which fails the trial and removes its Job.

**Metrics.** :meth:`KubernetesHandle.lines` follows the primary container's log through the API
(``follow=true``), pod after pod when the Job retries. A dropped stream is reopened and the lines
already yielded are skipped, so no line is seen twice by one handle. A handle from :meth:`attach`
(after a restart) reads the log from its first line again: the metrics parsers number steps from
the start of the output and storage keys observations by ``(trial, metric, step)``, so a replayed
line stores nothing new. The Push collector needs nothing from the runner.

**The File collector is not supported** here: a trial's metrics file lives in the Pod's
filesystem, which the service cannot read. Supporting it would need a sidecar container that
shares a volume (``emptyDir``) with the primary container and streams the file (to its own stdout,
or by pushing to the service), which Katib does with a mutating webhook this project avoids.
:meth:`KubernetesRunner.check` rejects such specs with a :class:`~tuner.errors.SpecError`; use
StdOut (print the metrics) or Push (``tuner.report``) instead.

**Resilience.** Watches re-list after ``410 Gone``, dropped connections and apiserver restarts.
Writes retry on 429 and 5xx (and on connection errors) with bounded exponential backoff; a create
that hits 409 adopts the existing Job, or retries while a previous Job of that name is being
deleted.

**Stopping.** :meth:`KubernetesHandle.kill` deletes the Job with Background propagation. With
``retain: true`` in the trial template the Job is kept, but its running pods are stopped by setting
``spec.parallelism`` to 0 (Jobs had no ``suspend`` before Kubernetes 1.21).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import hashlib
import json
import logging
import os
import random
import re
import socket
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client import ApiException
from kubernetes.config.config_exception import ConfigException

from tuner.errors import FieldError, RunnerError, SpecError
from tuner.runners.base import Runner, TrialHandle, TrialOutcome
from tuner.spec import CollectorKind, Experiment, job_containers
from tuner.templates import EXPERIMENT_LABEL, TRIAL_LABEL, RenderedTrial
from tuner.trials import Trial

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses a request is retried on (with backoff); 409 is handled where it means something."""
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (urllib3.exceptions.HTTPError, OSError)
API_ERRORS: tuple[type[BaseException], ...] = (ApiException, *TRANSIENT_ERRORS)
IMAGE_PULL_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
MAX_NAME = 63


# ---------------------------------------------------------------------------------------------
# Names


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_dns_label(text: str) -> bool:
    return len(text) <= MAX_NAME and bool(_DNS_LABEL.match(text))


def dns_label(text: str, *, key: str | None = None) -> str:
    """``text`` when it is a DNS-1123 label, else a valid label made from it.

    The fallback keeps the head and the tail of ``text`` (lower-cased, other characters replaced
    by ``-``) around a hash of ``key`` (default ``text``), so it is deterministic, unique per key
    and at most 63 characters long.
    """
    if is_dns_label(text):
        return text
    digest = hashlib.sha256((key or text).encode()).hexdigest()[:10]
    clean = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    tail = clean[-8:].strip("-")
    head = clean[: MAX_NAME - len(digest) - len(tail) - 2].strip("-")
    name = "-".join(part for part in (head, digest, tail) if part)
    assert is_dns_label(name), name
    return name


def job_name(experiment: Experiment, trial: Trial) -> str:
    """The deterministic Job name of a trial: a valid DNS-1123 label at any name length."""
    return dns_label(trial.name, key=f"{experiment.namespace}/{experiment.name}/{trial.name}")


def job_labels(experiment: Experiment, trial: Trial) -> dict[str, str]:
    """The labels that identify a trial's Job and pods (label values are DNS labels here)."""
    return {
        EXPERIMENT_LABEL: dns_label(experiment.name),
        TRIAL_LABEL: job_name(experiment, trial),
    }


def experiment_owner_reference(name: str, uid: str) -> dict[str, Any]:
    """An ownerReference to an Experiment custom resource (``tuner.dev/v1beta1``)."""
    return {
        "apiVersion": "tuner.dev/v1beta1",
        "kind": "Experiment",
        "name": name,
        "uid": uid,
        "controller": True,
    }


# ---------------------------------------------------------------------------------------------
# Success and failure conditions: the GJSON subset Katib's Job templates use


Condition = Callable[[Any], bool]

_QUERY = re.compile(
    r"^#\((?P<key>[^=!<>%]+?)\s*(?P<op>==|!=|<=|>=|<|>|%|!%)\s*(?P<value>.+?)\)(?P<all>#?)$"
)


def compile_condition(expression: str) -> Condition:
    """Compile a GJSON condition like ``status.conditions.#(type=="Complete")#|#(status=="True")#``.

    Supported: dotted keys, array indexes, ``#`` (length), queries ``#(key op value)`` (first
    match) and ``#(key op value)#`` (all matches) with ``== != < <= > >= %`` (``%``: glob ``*``),
    and ``|`` pipes. After an all-matches query, the following dotted keys apply to every match,
    as in GJSON. The condition holds when the result exists and is not empty, false or null.

    Raises:
        ValueError: for syntax outside that subset.
    """
    segments = [_split(part, ".") for part in _split(expression, "|")]
    if not expression.strip() or any(not c for seg in segments for c in seg):
        raise ValueError(f"empty path component in condition {expression!r}")
    steps = [[_component(c) for c in seg] for seg in segments]

    def evaluate(document: Any) -> bool:
        value: Any = document
        for seg in steps:
            mapped = False
            for step in seg:
                value, mapped = step(value, mapped)
                if value is _MISSING:
                    return False
        return _truthy(value)

    return evaluate


_MISSING: Any = object()
_Step = Callable[[Any, bool], tuple[Any, bool]]


def _split(text: str, sep: str) -> list[str]:
    parts, depth, quote, current = [], 0, False, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current += text[i : i + 2]
            i += 2
            continue
        if ch == '"':
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if ch == sep and not quote and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
        i += 1
    if quote or depth:
        raise ValueError(f"unbalanced quotes or parentheses in {text!r}")
    parts.append(current)
    return parts


def _component(text: str) -> _Step:
    if text == "#":

        def length(value: Any, mapped: bool) -> tuple[Any, bool]:
            if mapped:
                return [len(v) for v in value if isinstance(v, list)], True
            return (len(value), False) if isinstance(value, list) else (_MISSING, False)

        return length
    if text.startswith("#("):
        m = _QUERY.match(text)
        if m is None:
            raise ValueError(f"unsupported query {text!r}")
        key = [k.replace("\\.", ".") for k in _split(m["key"].strip(), ".")]
        op, every = m["op"], bool(m["all"])
        try:
            literal = json.loads(m["value"])
        except json.JSONDecodeError as e:
            raise ValueError(f"query value in {text!r} must be a JSON literal") from e

        def matches(item: Any) -> bool:
            for k in key:
                if not isinstance(item, dict) or k not in item:
                    return False
                item = item[k]
            return _compare(item, op, literal)

        def query(value: Any, mapped: bool) -> tuple[Any, bool]:
            if not isinstance(value, list):
                return _MISSING, False
            hits = [v for v in value if matches(v)]
            if every:
                return hits, True
            return (hits[0], False) if hits else (_MISSING, False)

        return query
    name = text.replace("\\.", ".")

    def get(value: Any, mapped: bool) -> tuple[Any, bool]:
        if mapped:
            return [_get(v, name) for v in value if _get(v, name) is not _MISSING], True
        return _get(value, name), False

    return get


def _get(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return value.get(key, _MISSING)
    if isinstance(value, list) and key.isdigit():
        index = int(key)
        return value[index] if index < len(value) else _MISSING
    return _MISSING


def _compare(item: Any, op: str, literal: Any) -> bool:
    if op in ("%", "!%"):
        pattern = "^" + ".*".join(re.escape(p) for p in str(literal).split("*")) + "$"
        hit = isinstance(item, str) and re.match(pattern, item) is not None
        return hit if op == "%" else not hit
    if op == "==":
        return bool(item == literal)
    if op == "!=":
        return bool(item != literal)
    try:
        ops: dict[str, Callable[[Any, Any], bool]] = {
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
        }
        return ops[op](item, literal)
    except TypeError:
        return False


def _truthy(value: Any) -> bool:
    return value is not _MISSING and value not in (None, False, "", [], {})


# ---------------------------------------------------------------------------------------------
# Reading Job and pod status


def _conditions(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    conds = (job.get("status") or {}).get("conditions") or []
    return [c for c in conds if isinstance(c, dict)]


def _true_condition(job: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    return next(
        (c for c in _conditions(job) if c.get("type") == kind and c.get("status") == "True"), None
    )


def _uid(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid", ""))


def _container_status(pod: Mapping[str, Any], container: str | None) -> dict[str, Any] | None:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for s in statuses:
        if container is None or s.get("name") == container:
            return dict(s)
    return None


def image_pull_problem(pods: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """``(reason, message)`` of an image pull error in any container of ``pods``, or ``None``."""
    for pod in pods:
        status = pod.get("status") or {}
        for s in [
            *(status.get("initContainerStatuses") or []),
            *(status.get("containerStatuses") or []),
        ]:
            waiting = (s.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in IMAGE_PULL_REASONS:
                message = waiting.get("message") or f"cannot pull image {s.get('image', '')!r}"
                return str(waiting["reason"]), f"container {s.get('name')}: {message}"
    return None


def job_outcome(
    job: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    container: str | None,
    succeeded: bool,
) -> TrialOutcome:
    """The outcome of a finished Job, with the reason the pods and the Job's conditions give."""
    terminated: list[dict[str, Any]] = []
    for pod in sorted(pods, key=_created):
        s = _container_status(pod, container) or {}
        for state in (s.get("lastState") or {}, s.get("state") or {}):
            if "terminated" in state:
                terminated.append(state["terminated"])
    last = terminated[-1] if terminated else None
    code = int(last["exitCode"]) if last and "exitCode" in last else None
    if succeeded:
        return TrialOutcome(True, "Completed", "Job completed", 0 if code is None else code)
    failed = _true_condition(job, "Failed")
    parts = [f"exit code {code}"] if code is not None else []
    if failed and failed.get("message"):
        parts.append(str(failed["message"]))
    if any(t.get("reason") == "OOMKilled" for t in terminated):
        reason = "OOMKilled"
        parts.insert(0, "the container ran out of memory (OOMKilled)")
    elif failed and failed.get("reason"):
        reason = str(failed["reason"])  # BackoffLimitExceeded, DeadlineExceeded, ...
    elif code is not None:
        reason = "Error"
    else:
        reason = "Failed"
    return TrialOutcome(False, reason, "; ".join(parts) or "Job failed", code)


def _created(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("creationTimestamp", "")), str(meta.get("name", ""))


# ---------------------------------------------------------------------------------------------
# Blocking streams read by daemon threads


def backoff_delay(attempt: int, base: float = 0.2, cap: float = 5.0) -> float:
    """Exponential backoff with jitter: about ``base * 2**attempt``, at most ``cap`` seconds."""
    delay: float = min(cap, base * 2**attempt)
    return delay * (0.5 + random.random() / 2)


def _retry_after(e: ApiException) -> float | None:
    headers = e.headers or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return min(30.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _socket(resp: Any) -> Any:
    """The socket under a streaming urllib3 response, or ``None``.

    Usually the connection's; but http.client drops that reference for responses that end with
    the connection (HTTP/1.0, ``Connection: close``, as some proxies answer), so the socket is
    then found under the response's file object.
    """
    sock = getattr(getattr(resp, "connection", None), "sock", None)
    if sock is None:
        fp = getattr(getattr(resp, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock


def _interrupt(resp: Any) -> None:
    """Wake a thread blocked reading a streaming response (without blocking the caller)."""
    sock = _socket(resp)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _abort(resp: Any) -> None:
    """Close a streaming response, waking a thread blocked reading it.

    Closing blocks while another thread reads the response, so only the reading thread closes;
    others call :func:`_interrupt`.
    """
    _interrupt(resp)
    with contextlib.suppress(Exception):
        resp.close()


async def _thread_lines(opener: Callable[[], Any], name: str) -> AsyncGenerator[bytes, None]:
    """Open a streaming response in a daemon thread and yield its lines (bytes, with ``\\n``).

    The last fragment of a stream that ends without a newline is yielded as is. Errors of the
    request or the read are raised here. Closing the generator aborts the request.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    closed = threading.Event()
    responses: list[Any] = []

    def put(kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def pump() -> None:
        try:
            resp = opener()
            responses.append(resp)
            try:
                if not closed.is_set():
                    for line in resp:
                        put("line", line)
                        if closed.is_set():
                            break
            finally:
                _abort(resp)
            put("end", None)
        except BaseException as e:
            put("error", e)

    threading.Thread(target=pump, name=f"tuner-k8s {name}", daemon=True).start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "line":
                yield value
            elif kind == "end":
                return
            else:
                raise value
    finally:
        closed.set()
        for resp in responses:
            _interrupt(resp)  # the pump thread closes it


# ---------------------------------------------------------------------------------------------
# The runner


def load_api_client(
    kubeconfig: str | Path | None = None, context: str | None = None, pool_size: int = 64
) -> client.ApiClient:
    """In-cluster configuration inside a Pod, else ``kubeconfig`` / ``$KUBECONFIG``."""
    cfg = client.Configuration()
    try:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(
                config_file=str(kubeconfig) if kubeconfig is not None else None,
                context=context,
                client_configuration=cfg,
                persist_config=False,
            )  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as e:
        raise RunnerError(f"cannot configure the Kubernetes client: {e}") from e
    cfg.connection_pool_maxsize = pool_size
    return client.ApiClient(cfg)


def job_manifest(
    experiment: Experiment,
    trial: Trial,
    rendered: RenderedTrial,
    env: Mapping[str, str],
    owner: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Job to create for a trial: name, labels, ownerReference and environment filled in."""
    job = copy.deepcopy(rendered.job)
    job.setdefault("apiVersion", "batch/v1")
    job.setdefault("kind", "Job")
    labels = job_labels(experiment, trial)
    meta = job.setdefault("metadata", {})
    meta["name"] = job_name(experiment, trial)
    meta["namespace"] = experiment.namespace
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    if owner:
        meta["ownerReferences"] = [dict(owner)]
    template = job.setdefault("spec", {}).setdefault("template", {})
    pod_meta = template.setdefault("metadata", {})
    pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **labels}
    pod_spec = template.setdefault("spec", {})
    pod_spec.setdefault("restartPolicy", "Never")
    containers = job_containers(job)
    primary = next(
        (c for c in containers if c.get("name") == rendered.container_name),
        containers[0] if containers else None,
    )
    if primary is None:
        raise RunnerError(f"trial {trial.name}: the Job template has no container")
    extra = {"PYTHONUNBUFFERED": "1", **env}  # metrics lines arrive while the trial runs
    given = [e for e in primary.get("env") or [] if isinstance(e, dict)]
    names = {e.get("name") for e in given}
    primary["env"] = [e for e in given if e.get("name") not in env] + [
        {"name": k, "value": str(v)} for k, v in extra.items() if k in env or k not in names
    ]
    return job


OwnerReference = Callable[[Experiment], Mapping[str, Any] | None]


class KubernetesRunner(Runner):
    """Runs trials as ``batch/v1`` Jobs.

    Args:
        api_client: a configured ``kubernetes.client.ApiClient``; by default one is built by
            :func:`load_api_client` from ``kubeconfig`` and ``context``.
        owner_reference: gives the ownerReference (the Experiment custom resource) for an
            experiment's Jobs, or ``None`` for none.
        image_pull_timeout: seconds an image pull error may last before the trial fails.
        watch_window: seconds a watch stays open before the state is re-read (it also bounds how
            late an image pull problem is noticed).
        retries: attempts of a request that fails with 429, 5xx or a connection error.
        log_read_timeout: seconds without log output after which a log stream is reopened.
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
    ) -> None:
        self.api = api_client if api_client is not None else load_api_client(kubeconfig, context)
        self.batch = client.BatchV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.owner_reference = owner_reference
        self.image_pull_timeout = image_pull_timeout
        self.watch_window = watch_window
        self.retries = retries
        self.log_read_timeout = log_read_timeout
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="tuner-k8s")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- checks ----------------------------------------------------------------------------

    @staticmethod
    def problems(experiment: Experiment) -> list[FieldError]:
        """What in ``experiment`` this runner cannot run (empty when it can)."""
        errors: list[FieldError] = []
        spec = experiment.spec
        if spec.metrics_collector_spec.kind is CollectorKind.FILE:
            errors.append(
                FieldError(
                    "spec.metricsCollectorSpec.collector.kind",
                    "the File collector is not supported with the Kubernetes runner: the metrics "
                    "file is inside the trial's Pod, out of the service's reach. Print the metrics "
                    "(StdOut) or report them with tuner.report (Push)",
                )
            )
        tt = spec.trial_template
        if tt is not None:
            for key, expression in (
                ("successCondition", tt.success_condition),
                ("failureCondition", tt.failure_condition),
            ):
                try:
                    compile_condition(expression)
                except ValueError as e:
                    errors.append(FieldError(f"spec.trialTemplate.{key}", str(e)))
        return errors

    def check(self, experiment: Experiment) -> None:
        """Raise :class:`SpecError` when this runner cannot run ``experiment``."""
        errors = self.problems(experiment)
        if errors:
            raise SpecError(errors)

    # -- requests --------------------------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking client call in the pool; retry 429, 5xx and connection errors."""
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            try:
                return await loop.run_in_executor(
                    self._pool, functools.partial(fn, *args, **kwargs)
                )
            except ApiException as e:
                if e.status not in RETRY_STATUSES or attempt + 1 >= self.retries:
                    raise
                delay = _retry_after(e) or backoff_delay(attempt)
                what = f"{e.status} {e.reason}"
            except TRANSIENT_ERRORS as e:
                if attempt + 1 >= self.retries:
                    raise
                delay, what = backoff_delay(attempt), repr(e)
            log.warning("%s: %s; retrying in %.1f s", getattr(fn, "__name__", fn), what, delay)
            attempt += 1
            await asyncio.sleep(delay)

    async def get_json(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A client call's reply as plain JSON (camelCase keys), or ``None`` on 404."""

        def request() -> Any:
            resp = fn(*args, _preload_content=False, _request_timeout=(10, 60), **kwargs)
            try:
                return json.loads(resp.data)
            finally:
                resp.release_conn()

        request.__name__ = getattr(fn, "__name__", "request")
        try:
            return await self.call(request)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    # -- Runner protocol -------------------------------------------------------------------

    def manifest(
        self, experiment: Experiment, trial: Trial, rendered: RenderedTrial, env: Mapping[str, str]
    ) -> dict[str, Any]:
        """The Job to create for a trial (see :func:`job_manifest`), with this runner's owner."""
        owner = self.owner_reference(experiment) if self.owner_reference else None
        return job_manifest(experiment, trial, rendered, env, owner)

    async def start(
        self, experiment: Experiment, trial: Trial, rendered: RenderedTrial, env: dict[str, str]
    ) -> KubernetesHandle:
        problems = self.problems(experiment)
        if problems:
            raise RunnerError("; ".join(str(p) for p in problems))
        job = self.manifest(experiment, trial, rendered, env)
        name, ns = job["metadata"]["name"], experiment.namespace
        for attempt in range(self.retries):
            try:
                created = await self.get_json(self.batch.create_namespaced_job, ns, job)
            except ApiException as e:
                if e.status != 409:
                    raise RunnerError(
                        f"cannot create Job {ns}/{name}: {e.status} {_api_message(e)}"
                    ) from e
                existing = await self.get_json(self.batch.read_namespaced_job, name, ns)
                if existing is None:
                    continue  # deleted in between: create again
                labels = (existing.get("metadata") or {}).get("labels") or {}
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
        labels = job_labels(experiment, trial)
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        try:
            listed = await self.get_json(
                self.batch.list_namespaced_job, experiment.namespace, label_selector=selector
            )
        except API_ERRORS as e:
            raise RunnerError(f"cannot look up the Job of trial {trial.name}: {e}") from e
        jobs = [
            j
            for j in (listed or {}).get("items") or []
            if not (j.get("metadata") or {}).get("deletionTimestamp")
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
        selector = f"{EXPERIMENT_LABEL}={dns_label(experiment.name)}"
        try:
            listed = await self.get_json(
                self.batch.list_namespaced_job, ns, label_selector=selector
            )
            for job in (listed or {}).get("items") or []:
                meta = job.get("metadata") or {}
                if meta.get("deletionTimestamp"):
                    continue
                try:
                    await self.call(
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
            uid=_uid(job),
            trial_label=(job["metadata"].get("labels") or {}).get(TRIAL_LABEL, ""),
            container=container,
            retain=tt.retain,
            success=compile_condition(tt.success_condition),
            failure=compile_condition(tt.failure_condition),
        )


def _api_message(e: ApiException) -> str:
    try:
        return str(json.loads(e.body or "")["message"])
    except (TypeError, ValueError, KeyError):
        return str(e.reason)


@dataclass
class _PodLog:
    """What one handle has read of one container instance's log."""

    lines: int = 0
    errors: int = 0


class KubernetesHandle(TrialHandle):
    """A trial's Job: its log, its outcome, and how to stop it. ``ref`` is the Job name."""

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
        job = await self.runner.get_json(
            self.runner.batch.read_namespaced_job, self.name, self.namespace
        )
        if job is None or (self.uid and _uid(job) != self.uid):
            return None
        return dict(job)

    async def pods(self) -> tuple[list[dict[str, Any]], str]:
        """The Job's pods, oldest first, and the list's resourceVersion (for a watch)."""
        listed = await self.runner.get_json(
            self.runner.core.list_namespaced_pod,
            self.namespace,
            label_selector=f"{TRIAL_LABEL}={self.trial_label}",
        )
        items = [
            p
            for p in (listed or {}).get("items") or []
            if any(o.get("uid") == self.uid for o in p["metadata"].get("ownerReferences") or [])
        ]
        items.sort(key=_created)
        return items, str(((listed or {}).get("metadata") or {}).get("resourceVersion", ""))

    def verdict(self, job: Mapping[str, Any]) -> bool | None:
        """True (succeeded), False (failed) or None (still running) by the template's conditions."""
        if self._success(job):
            return True
        if self._failure(job):
            return False
        return None

    async def _changed(self, what: str, rv: str, **selector: str) -> None:
        """Return at the first change after resourceVersion ``rv``, or at the window's end."""
        window = self.runner.watch_window
        fn: Any = (
            self.runner.batch.list_namespaced_job
            if what == "job"
            else self.runner.core.list_namespaced_pod
        )

        def open_watch() -> Any:
            return fn(
                self.namespace,
                watch=True,
                resource_version=rv or None,
                timeout_seconds=max(1, int(window)),
                allow_watch_bookmarks=True,
                _preload_content=False,
                _request_timeout=(10, window + 10),
                **selector,
            )

        stream = _thread_lines(open_watch, f"watch {what} {self.name}")
        try:
            async for raw in stream:
                with contextlib.suppress(ValueError):
                    if json.loads(raw).get("type") == "BOOKMARK":
                        continue
                return  # ADDED, MODIFIED, DELETED or ERROR (410 Gone): re-read the state
        finally:
            await stream.aclose()

    async def _until_changed(self, what: str, rv: str, errors: int, **selector: str) -> int:
        """Wait for a change (or the kill); returns the new count of consecutive errors."""
        watch = asyncio.ensure_future(self._changed(what, rv, **selector))
        killed = asyncio.ensure_future(self._killed.wait())
        try:
            await asyncio.wait({watch, killed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watch, killed):
                task.cancel()
            await asyncio.gather(watch, killed, return_exceptions=True)
        if watch.cancelled() or watch.exception() is None:
            return 0
        error = watch.exception()
        log.info("Job %s/%s: watch failed (%r); re-listing", self.namespace, self.name, error)
        await asyncio.sleep(backoff_delay(errors))
        return errors + 1

    # -- TrialHandle -----------------------------------------------------------------------

    async def wait(self) -> TrialOutcome:
        pull_since: float | None = None
        errors = 0
        while True:
            if self._killed.is_set():
                return TrialOutcome(False, "Killed", f"Job {self.name} was stopped")
            try:
                job = await self.job()
                if job is None:
                    return TrialOutcome(False, "JobDeleted", f"Job {self.name} was deleted")
                verdict = self.verdict(job)
                pods, _ = await self.pods()
            except API_ERRORS as e:
                log.warning("Job %s/%s: cannot read status: %r", self.namespace, self.name, e)
                await asyncio.sleep(backoff_delay(errors))
                errors += 1
                continue
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
            rv = str(job["metadata"].get("resourceVersion", ""))
            errors = await self._until_changed(
                "job", rv, errors, field_selector=f"metadata.name={self.name}"
            )

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
                if _uid(p) in done:
                    continue
                s = _container_status(p, self.container) or {}
                state = s.get("state") or {}
                if "running" in state or "terminated" in state:
                    pod = p
                    break
                if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    done.add(_uid(p))  # ended without its container ever starting
            if pod is None:
                if self.verdict(job) is not None and all(_uid(p) in done for p in pods):
                    return
                await self._until_changed(
                    "pods", rv, 0, label_selector=f"{TRIAL_LABEL}={self.trial_label}"
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
        status = _container_status(pod, self.container) or {}
        key = (_uid(pod), int(status.get("restartCount", 0)))
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

        stream = _thread_lines(open_log, f"log {pod_name}")
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
            now = await runner.get_json(runner.core.read_namespaced_pod, pod_name, self.namespace)
        except API_ERRORS as e:
            now, failed = pod, failed or e
        now_status = _container_status(now or {}, self.container) or {}
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
            await self._until_changed("pods", rv, 0, field_selector=f"metadata.name={pod_name}")

    async def kill(self) -> None:
        """Stop the trial: delete its Job (Background), or with ``retain`` stop only its pods."""
        self._killed.set()
        await self._stop()

    async def _stop(self) -> None:
        runner = self.runner
        try:
            if self.retain:
                await runner.call(
                    runner.batch.patch_namespaced_job,
                    self.name,
                    self.namespace,
                    {"spec": {"parallelism": 0}},
                    _preload_content=False,
                )
                return
            await runner.call(
                runner.batch.delete_namespaced_job,
                self.name,
                self.namespace,
                propagation_policy="Background",
                _preload_content=False,
            )
        except ApiException as e:
            if e.status != 404:
                raise RunnerError(
                    f"cannot stop Job {self.namespace}/{self.name}: {e.status} {_api_message(e)}"
                ) from e


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")
