"""What a trial's metrics-collector sidecar (``tuner-metrics-collector``) says went wrong."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubernetes import client as k8s
from kubernetes.client import ApiException

from tuner.collectors.relay import PROBLEM_PREFIX
from tuner.collectors.sidecar import COLLECTOR_CONTAINER
from tuner.k8s.client import RetryingClient


def has_sidecar(pod: dict[str, Any]) -> bool:
    containers = (pod.get("spec") or {}).get("containers") or []
    return any(c.get("name") == COLLECTOR_CONTAINER for c in containers)


async def sidecar_problem(
    api: RetryingClient, core: k8s.CoreV1Api, namespace: str, pods: Sequence[dict[str, Any]]
) -> str | None:
    """The problem the relay sidecar of the newest of ``pods`` that has one printed last
    (:data:`tuner.collectors.relay.PROBLEM_PREFIX`), or ``None``."""
    pod = next((p for p in reversed(pods) if has_sidecar(p)), None)
    if pod is None:
        return None
    try:
        text = await api.call(
            core.read_namespaced_pod_log,
            pod["metadata"]["name"],
            namespace,
            container=COLLECTOR_CONTAINER,
            tail_lines=20,
        )
    except ApiException as e:
        if e.status in (400, 404):  # the Pod or its log is gone
            return None
        raise
    lines = str(text or "").splitlines()
    problems = [line[len(PROBLEM_PREFIX) :] for line in lines if line.startswith(PROBLEM_PREFIX)]
    return problems[-1] if problems else None
