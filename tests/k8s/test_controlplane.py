"""Smoke tests of the k8s test infrastructure, with the official client.

The control plane is real (etcd, kube-apiserver, kube-controller-manager with the Job, garbage
collector and namespace controllers). Pods run through the *process kubelet*, a test fixture that
runs containers as host processes (tests/k8s/process_kubelet.py); images are ignored.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests import waiting

pytest.importorskip("kubernetes", reason="needs the client: pip install -e '.[kubernetes]'")
from kubernetes import client

pytestmark = pytest.mark.k8s

TIMEOUT = 60.0


wait_for = partial(waiting.wait_for, timeout=TIMEOUT, interval=0.2)


def job(name: str, argv: list[str], backoff_limit: int = 0) -> client.V1Job:
    container = client.V1Container(name="main", image="python:3.11", command=argv)
    pod = client.V1PodSpec(containers=[container], restart_policy="Never")
    spec = client.V1JobSpec(
        template=client.V1PodTemplateSpec(spec=pod), backoff_limit=backoff_limit
    )
    return client.V1Job(metadata=client.V1ObjectMeta(name=name), spec=spec)


def job_condition(batch: client.BatchV1Api, ns: str, name: str) -> Any:
    status = batch.read_namespaced_job_status(name, ns).status
    done = [c for c in status.conditions or [] if c.type in ("Complete", "Failed")]
    return done[0] if done and done[0].status == "True" else None


def job_pods(core: client.CoreV1Api, ns: str, name: str) -> list[client.V1Pod]:
    return core.list_namespaced_pod(ns, label_selector=f"job-name={name}").items


def test_job_completes_and_its_log_is_readable(api: client.ApiClient, namespace: str) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    batch.create_namespaced_job(
        namespace, job("ok", [sys.executable, "-c", "print('accuracy=0.9')"])
    )

    cond = wait_for(lambda: job_condition(batch, namespace, "ok"), "job ok to finish")
    assert cond.type == "Complete"
    (pod,) = job_pods(core, namespace, "ok")
    assert pod.status.phase == "Succeeded"
    assert pod.status.container_statuses[0].state.terminated.exit_code == 0
    log = core.read_namespaced_pod_log(pod.metadata.name, namespace, container="main")
    assert log == "accuracy=0.9\n"


def test_failing_job_exceeds_backoff_limit(api: client.ApiClient, namespace: str) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    argv = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    batch.create_namespaced_job(namespace, job("bad", argv, backoff_limit=0))

    cond = wait_for(lambda: job_condition(batch, namespace, "bad"), "job bad to finish")
    assert (cond.type, cond.reason) == ("Failed", "BackoffLimitExceeded")
    (pod,) = job_pods(core, namespace, "bad")
    assert pod.status.phase == "Failed"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (3, "Error")


def test_background_deletion_collects_pods_and_kills_processes(
    api: client.ApiClient, namespace: str
) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    argv = [sys.executable, "-c", "import time; time.sleep(300)"]
    batch.create_namespaced_job(namespace, job("sleeper", argv))

    def running_pod() -> client.V1Pod | None:
        pods = [p for p in job_pods(core, namespace, "sleeper") if p.status.phase == "Running"]
        return pods[0] if pods else None

    pod = wait_for(running_pod, "the sleeper pod to run")
    pid = int(pod.status.container_statuses[0].container_id.removeprefix("process://"))
    assert Path(f"/proc/{pid}").exists()

    batch.delete_namespaced_job("sleeper", namespace, propagation_policy="Background")
    wait_for(lambda: not job_pods(core, namespace, "sleeper"), "the job's pods to be collected")
    wait_for(lambda: not _alive(pid), f"process {pid} to end")


def test_follow_streams_log_lines_while_the_process_runs(
    api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(api)
    gate = tmp_path / "gate"
    script = (
        "import os, time\n"
        "print('first', flush=True)\n"
        f"while not os.path.exists({str(gate)!r}): time.sleep(0.05)\n"
        "print('second', flush=True)\n"
    )
    container = client.V1Container(name="main", image="x", command=[sys.executable, "-c", script])
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="streamer"),
        spec=client.V1PodSpec(containers=[container], restart_policy="Never"),
    )
    core.create_namespaced_pod(namespace, pod)
    wait_for(
        lambda: core.read_namespaced_pod("streamer", namespace).status.phase == "Running",
        "the streamer pod to run",
    )

    resp = core.read_namespaced_pod_log(
        "streamer", namespace, container="main", follow=True, _preload_content=False
    )
    try:
        lines = iter(resp)
        assert next(lines) == b"first\n"
        # The process is blocked on the gate, so that line came while it still runs.
        assert core.read_namespaced_pod("streamer", namespace).status.phase == "Running"
        gate.touch()
        assert list(lines) == [b"second\n"]  # the stream ends when the process exits
    finally:
        resp.release_conn()
    wait_for(
        lambda: core.read_namespaced_pod("streamer", namespace).status.phase == "Succeeded",
        "the streamer pod to succeed",
    )


def test_custom_resource_round_trip(api: client.ApiClient, namespace: str) -> None:
    # Custom resources crashed the apiserver until build-control-plane.sh replaced the vendored
    # reflect2 (Go >= 1.18); this guards that fix and shows CRD defaults and pruning work.
    ext, custom = client.ApiextensionsV1Api(api), client.CustomObjectsApi(api)
    group, plural = "smoke.tuner.test", "widgets"
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"size": {"type": "integer", "default": 3}},
            }
        },
    }
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }
    ext.create_custom_resource_definition(crd)
    try:

        def established() -> bool:
            conds = ext.read_custom_resource_definition(f"{plural}.{group}").status.conditions
            return any(c.type == "Established" and c.status == "True" for c in conds or [])

        wait_for(established, "the CRD to be established")
        body = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"}}
        body["spec"] = {"unknown": 1}
        created = wait_for(
            lambda: _create_custom(custom, group, namespace, plural, body), "the CR to be served"
        )
        assert created["spec"] == {"size": 3}  # defaulted, unknown field pruned
        assert created["metadata"]["uid"]
    finally:
        ext.delete_custom_resource_definition(f"{plural}.{group}")


def _create_custom(
    custom: client.CustomObjectsApi, group: str, ns: str, plural: str, body: dict[str, Any]
) -> dict[str, Any] | None:
    try:
        return custom.create_namespaced_custom_object(group, "v1", ns, plural, body)  # type: ignore[no-any-return]
    except client.ApiException as e:
        if e.status == 404:  # discovery of a just-established CRD can lag a moment
            return None
        raise


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
