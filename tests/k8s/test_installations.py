"""Two installations in one namespace of a real control plane (``tuner serve --installation``):
each runs an experiment of the same name, and reconciles only the Experiment resource labelled
for it; neither adopts, recreates nor deletes the other's Jobs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("kubernetes", reason="needs the client: pip install -e '.[kubernetes]'")
from kubernetes import client

from tests.k8s.controlplane import ControlPlane
from tests.k8s.test_e2e import (  # noqa: F401  (api: the fixture that installs the CRD)
    JobRecorder,
    Server,
    api,
    cr_status,
    create_cr,
    exists,
    finished,
    quadratic,
    wait_for,
)
from tuner.k8s.jobs import INSTALLATION_LABEL
from tuner.templates import EXPERIMENT_LABEL

pytestmark = [pytest.mark.k8s, pytest.mark.timeout(400)]

NAME = "shared-name"
TRIALS = 3


@pytest.fixture
def servers(
    k8s_cluster: ControlPlane, namespace: str, tmp_path: Path
) -> Iterator[dict[str, Server]]:
    started = {}
    try:
        for name in ("blue", "green"):
            args = ["--namespace-scope", namespace, "--installation", name]
            started[name] = Server(k8s_cluster, tmp_path / name, args).start()
        yield started
    finally:
        for s in started.values():
            s.stop()


def jobs_of(k8s: client.ApiClient, namespace: str, installation: str) -> dict[str, str]:
    """Job name -> uid, of the Jobs labelled with ``installation``."""
    listed = client.BatchV1Api(k8s).list_namespaced_job(
        namespace, label_selector=f"{INSTALLATION_LABEL}={installation}"
    )
    return {j.metadata.name: j.metadata.uid for j in listed.items}


def test_two_installations_share_a_namespace_without_touching_each_others_jobs(
    servers: dict[str, Server],
    api: client.ApiClient,  # noqa: F811
    namespace: str,
) -> None:
    recorder = JobRecorder(api, namespace)
    try:
        # The same experiment name in both: the same trial names, never the same Job.
        spec = quadratic(namespace, NAME, steps=2, sleep=0, maxTrialCount=TRIALS)
        for s in servers.values():
            with s.client(namespace) as c:
                c.submit(spec)
        # A resource labelled for blue: green leaves it alone.
        resource = quadratic(namespace, "for-blue", steps=2, sleep=0, maxTrialCount=2)
        resource["metadata"]["labels"] = {INSTALLATION_LABEL: "blue"}
        create_cr(api, resource)

        for name, s in servers.items():
            with s.client(namespace) as c:
                final = finished(c, NAME, 180)
                assert final["status"]["phase"] == "Succeeded", (name, final["status"])
                assert len(c.trial_rows(NAME)) == TRIALS
        with servers["blue"].client(namespace) as c:
            wait_for(lambda: exists(c, "for-blue"), "blue's experiment of the resource")
            assert finished(c, "for-blue", 180)["status"]["phase"] == "Succeeded"
        wait_for(
            lambda: cr_status(api, namespace, "for-blue").get("phase") == "Succeeded",
            "the resource's status",
        )
        with servers["green"].client(namespace) as c:
            assert not exists(c, "for-blue")

        blue, green = jobs_of(api, namespace, "blue"), jobs_of(api, namespace, "green")
        assert len(blue) == TRIALS + 2 and len(green) == TRIALS, (blue, green)
        assert all(n.startswith("blue-") for n in blue) and all(
            n.startswith("green-") for n in green
        )
        every = client.BatchV1Api(api).list_namespaced_job(
            namespace, label_selector=EXPERIMENT_LABEL
        )
        assert {j.metadata.name for j in every.items} == set(blue) | set(green)

        # Its Kubernetes API calls are in blue's /metrics: a Job created per trial, at least.
        scraped = httpx.get(f"{servers['blue'].url}/metrics", timeout=60).text
        created = re.search(
            r'^tuner_kubernetes_requests_total\{operation="create_namespaced_job"\} (\S+)$',
            scraped,
            re.MULTILINE,
        )
        assert created and float(created.group(1)) >= TRIALS + 2, scraped[-3000:]

        # Deleting blue's experiment deletes blue's Jobs of that name, and none of green's.
        with servers["blue"].client(namespace) as c:
            c.delete(NAME)
        wait_for(
            lambda: not any(n.startswith(f"blue-{NAME}") for n in jobs_of(api, namespace, "blue")),
            "blue's Jobs of the deleted experiment to go",
        )
        assert jobs_of(api, namespace, "green") == green
    finally:
        recorder.stop()
    # No Job was ever recreated (one uid per name) and every Job seen belongs to one of them.
    assert all(len(uids) == 1 for uids in recorder.uids.values()), recorder.uids
    assert set(recorder.uids) == set(blue) | set(green)
