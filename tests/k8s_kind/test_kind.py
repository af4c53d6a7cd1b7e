"""End to end on a real cluster (kind, or any) with the service installed from deploy/.

Skipped unless ``TUNER_KIND_KUBECONFIG`` points at the cluster's kubeconfig. ``TUNER_KIND_URL``
is where the test reaches the service (default ``http://127.0.0.1:8000``, e.g. through
``kubectl -n tuner-system port-forward svc/tuner 8000``), ``TUNER_KIND_TOKEN`` its API token,
``TUNER_KIND_IMAGE`` the service image the push trial runs (default ``tuner:dev``). See the
README, section Kubernetes. Real kubelets pull ``python:3.11-slim`` for the log trials.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

KUBECONFIG = os.environ.get("TUNER_KIND_KUBECONFIG")
pytestmark = pytest.mark.skipif(
    not KUBECONFIG, reason="no cluster: set TUNER_KIND_KUBECONFIG (see README, Kubernetes)"
)
kubernetes = pytest.importorskip("kubernetes", reason="needs pip install -e '.[kubernetes]'")
from kubernetes import client, config  # noqa: E402

from tests import waiting  # noqa: E402
from tuner.client import Client  # noqa: E402

GROUP, VERSION, PLURAL = "tuner.dev", "v1beta1", "experiments"
TIMEOUT = 600.0  # image pulls


wait_for = partial(waiting.wait_for, timeout=TIMEOUT, interval=1.0)


@pytest.fixture(scope="module")
def api() -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=KUBECONFIG)
    yield api_client
    api_client.close()


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"tuner-kind-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture
def tuner(namespace: str) -> Iterator[Client]:
    url = os.environ.get("TUNER_KIND_URL", "http://127.0.0.1:8000")
    with Client(url, os.environ.get("TUNER_KIND_TOKEN", ""), namespace=namespace) as c:
        yield c


SCRIPT = (
    "import sys; x = float(sys.argv[1])\n"
    "for step in range(3):\n"
    "    print(f'loss={(x - 0.5) ** 2 + 0.1 * (2 - step)!r}', flush=True)\n"
)
PUSH = (
    "import sys, tuner; x = float(sys.argv[1])\n"
    "for step in range(3):\n"
    "    tuner.report(step=step, loss=(x - 0.5) ** 2 + 0.1 * (2 - step))\n"
)


def experiment(namespace: str, name: str, *, push: bool = False) -> dict[str, Any]:
    image = os.environ.get("TUNER_KIND_IMAGE", "tuner:dev") if push else "python:3.11-slim"
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {"algorithmName": "random"},
            "parallelTrialCount": 2,
            "maxTrialCount": 3,
            "maxFailedTrialCount": 0,
            "metricsCollectorSpec": {"collector": {"kind": "Push" if push else "StdOut"}},
            "parameters": [
                {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
            ],
            "trialTemplate": {
                "primaryContainerName": "main",
                "trialParameters": [{"name": "x", "reference": "x"}],
                "trialSpec": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {
                        "backoffLimit": 0,
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [
                                    {
                                        "name": "main",
                                        "image": image,
                                        "command": [
                                            "python",
                                            "-c",
                                            PUSH if push else SCRIPT,
                                            "${trialParameters.x}",
                                        ],
                                    }
                                ],
                            }
                        },
                    },
                },
            },
        },
    }


def check_trials(tuner: Client, name: str) -> None:
    rows = tuner.leaderboard_rows(name, limit=100)
    assert len(rows) == 3
    for row in rows:
        assert row["status"] == "Succeeded"
        assert row["objective"] == pytest.approx((row["parameters"]["x"] - 0.5) ** 2)


def test_applied_resource_runs_to_succeeded(
    api: client.ApiClient, tuner: Client, namespace: str
) -> None:
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, experiment(namespace, "applied")
    )

    def status() -> dict[str, Any] | None:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "applied")
        s: dict[str, Any] = obj.get("status") or {}
        return s if s.get("phase") in ("Succeeded", "Failed") else None

    final = wait_for(status, "the resource to finish")
    assert final["phase"] == "Succeeded", final
    assert final["currentOptimalTrial"]["bestTrialName"]
    check_trials(tuner, "applied")


def test_rest_submission_with_push_from_inside_the_cluster(tuner: Client, namespace: str) -> None:
    tuner.submit(experiment(namespace, "pushed", push=True))
    final = tuner.wait("pushed", progress=False, timeout=TIMEOUT)
    assert final["status"]["phase"] == "Succeeded", final["status"]
    check_trials(tuner, "pushed")
