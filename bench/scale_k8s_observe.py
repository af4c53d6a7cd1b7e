"""What ``bench/scale_k8s.py`` observes on the API beside tuner: when each Job completed, and
how fast a bare client creates the same Jobs (the apiserver's floor for "Job created").

* :class:`JobCompletions` watches Jobs in a namespace from the bench's own process and records
  when each Job's ``Complete`` (or ``Failed``) condition was first seen, to the sub-second
  (the condition's own ``lastTransitionTime`` has whole seconds). That is "Job completion" in
  the issue's "Job completion -> trial state stored".
* :func:`bare_creates` creates N Jobs with the kubernetes client from 16 threads and nothing
  else (no database, no suggestions, no rate limit): per Job, seconds from the start until its
  create returned. Run on the same control plane right after tuner's run, it says what part of
  tuner's "suggestion -> Job created" time is the apiserver's.
"""

from __future__ import annotations

import copy
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import urllib3
from kubernetes import client, watch


class JobCompletions:
    """Seconds since the epoch at which each Job (by name) was first seen finished."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.batch = client.BatchV1Api(api)
        self.namespace = namespace
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> JobCompletions:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        version = ""
        while not self._stop.is_set():
            w = watch.Watch()
            try:
                for event in w.stream(
                    self.batch.list_namespaced_job,
                    self.namespace,
                    resource_version=version,
                    timeout_seconds=5,
                    _request_timeout=10,
                ):
                    job = event["object"]
                    version = job.metadata.resource_version
                    conditions = (job.status.conditions if job.status else None) or []
                    ended = ("Complete", "Failed")
                    if any(c.type in ended and c.status == "True" for c in conditions):
                        self.seen.setdefault(job.metadata.name, time.time())
                    if self._stop.is_set():
                        break
            except Exception:  # a dropped or expired watch: list again
                version = ""
                time.sleep(0.2)


def bare_creates(api: client.ApiClient, namespace: str, jobs: list[dict[str, Any]]) -> list[float]:
    """Create ``jobs`` from 16 threads; each one's seconds from the start until created (over
    16 pooled connections, as tuner's client has: the default pool of 10 would make new TLS
    connections for the others)."""
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # the test CA
    cfg = copy.copy(api.configuration)
    cfg.connection_pool_maxsize = 16
    batch = client.BatchV1Api(client.ApiClient(cfg))
    started = time.monotonic()

    def create(job: dict[str, Any]) -> float:
        response = batch.create_namespaced_job(namespace, job, _preload_content=False)
        response.read()  # and back to the pool: an unread response holds its connection
        response.release_conn()
        return time.monotonic() - started

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(create, jobs))
