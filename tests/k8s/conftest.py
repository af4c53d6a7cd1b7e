"""Fixtures for tests against a real Kubernetes control plane (etcd, kube-apiserver 1.20,
kube-controller-manager) started on loopback, with the process kubelet (a test fixture) running
Pods as host processes. See tests/k8s/controlplane.py.

Every test under tests/k8s is skipped when the binaries are not built; build them with
``make test-k8s`` (which runs tests/k8s/build-control-plane.sh).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.k8s.controlplane import ControlPlane, find_binaries

HERE = Path(__file__).parent

# The kubeconfig uses `insecure-skip-tls-verify: true`, so urllib3 warns on every request, and
# pyproject turns warnings into errors.
INSECURE_OK = "ignore::urllib3.exceptions.InsecureRequestWarning"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _, missing = find_binaries()
    for item in items:
        if HERE not in item.path.parents:
            continue
        item.add_marker(pytest.mark.filterwarnings(INSECURE_OK))
        if missing:
            item.add_marker(pytest.mark.skip(reason=missing))


@pytest.fixture(scope="session")
def k8s_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A running control plane: ``.kubeconfig``, ``.server``, ``.token``, ``.api_client()``."""
    _, missing = find_binaries()
    if missing:
        pytest.skip(missing)
    cluster = ControlPlane(tmp_path_factory.mktemp("k8s"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def api(k8s_cluster: ControlPlane) -> Iterator[client.ApiClient]:
    """The official client, configured from the control plane's kubeconfig."""
    api_client = k8s_cluster.api_client()
    yield api_client
    api_client.close()


def new_namespace(api: client.ApiClient, prefix: str) -> Iterator[str]:
    """A fresh namespace for one test; deleted after it (the namespace controller finishes it)."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture
def namespace(api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    yield from new_namespace(api, request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")[:20])
