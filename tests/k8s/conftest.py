"""Fixtures for tests against a real Kubernetes control plane (etcd, kube-apiserver 1.20,
kube-controller-manager) started on loopback, with the process kubelet (a test fixture) running
Pods as host processes. See tests/k8s/controlplane.py.

Every test under tests/k8s is skipped when the binaries are not built; build them with
``make test-k8s`` (which runs tests/k8s/build-control-plane.sh).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
