"""Trials of any kind on a real control plane: PyTorchJob, TFJob and TrainJob, ConfigMap templates.

etcd, kube-apiserver and kube-controller-manager are the real thing. Two TEST DOUBLES stand in
for what cannot run here: the process kubelet (tests/k8s/process_kubelet.py) runs Pods as host
processes, and the stand-in training controller (tests/k8s/training_controller.py) plays the
Kubeflow training operator and trainer: it makes the Pods of PyTorchJobs, TFJobs and TrainJobs,
labelled as theirs are, and sets the jobs' status conditions from the Pods. The CRDs of those
kinds are minimal and schemaless (tests/k8s/crds/training.yaml).
"""

from __future__ import annotations

import asyncio
import copy
import re
import subprocess
import sys
import uuid
import warnings
from collections.abc import Coroutine, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests import waiting
from tests.helpers import AUTH, DATA, V1, experiment_dict, make_settings
from tests.k8s.controlplane import ControlPlane, _request

pytest.importorskip("kubernetes", reason="needs the client: pip install -e '.[kubernetes]'")
from kubernetes import client
from kubernetes.client import ApiException

from tuner.api.app import create_app
from tuner.controller import ExperimentController
from tuner.errors import SpecError
from tuner.runners.kubernetes import KubernetesHandle, KubernetesRunner
from tuner.spec import Experiment, load_spec
from tuner.storage import Repository, make_engine
from tuner.templates import render_trial
from tuner.trials import ExperimentPhase, Trial, TrialState

pytestmark = pytest.mark.k8s

HERE = Path(__file__).parent
CRDS = HERE / "crds" / "training.yaml"
T = TypeVar("T")
TIMEOUT = 90.0
QUADRATIC = [sys.executable, str(DATA / "quadratic.py"), "--x=${trialParameters.x}", "--steps=2"]

wait_for = partial(waiting.wait_for, timeout=TIMEOUT, interval=0.1)


def run(coro: Coroutine[Any, Any, T], timeout: float = TIMEOUT) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture(scope="module")
def training(api: client.ApiClient, k8s_cluster: ControlPlane) -> Iterator[None]:
    """The training kinds' CRDs installed, and the stand-in training controller running."""
    ext = client.ApiextensionsV1Api(api)
    custom = client.CustomObjectsApi(api)
    for crd in yaml.safe_load_all(CRDS.read_text()):
        try:
            ext.create_custom_resource_definition(crd)
        except ApiException as e:
            if e.status != 409:
                raise
    for crd in yaml.safe_load_all(CRDS.read_text()):
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        version = crd["spec"]["versions"][0]["name"]

        def served(group: str = group, version: str = version, plural: str = plural) -> bool:
            try:
                custom.list_cluster_custom_object(group, version, plural)
                return True
            except ApiException:
                return False

        wait_for(served, f"{plural}.{group} to be served")
    log = open(k8s_cluster.workdir / "training-controller.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "training_controller.py"),
            f"--kubeconfig={k8s_cluster.kubeconfig}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def runner(k8s_cluster: ControlPlane, training: None) -> Iterator[KubernetesRunner]:
    r = KubernetesRunner(kubeconfig=k8s_cluster.kubeconfig, watch_window=5.0)
    yield r
    r.close()
    r.api.close()


# -- specs shaped like Katib's examples -----------------------------------------------------------


def pod_template(name: str, command: list[str]) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": name, "image": "stand-in", "command": command}]}}


def katib_experiment(
    namespace: str, name: str, trial_spec: dict[str, Any], **tt: Any
) -> Experiment:
    """An experiment with Katib's example shape around ``trial_spec`` (StdOut metrics)."""
    data = experiment_dict(name, maxTrialCount=2, parallelTrialCount=2, maxFailedTrialCount=0)
    data["metadata"]["namespace"] = namespace
    data["spec"]["parameters"] = data["spec"]["parameters"][:1]
    data["spec"]["trialTemplate"] = {
        "trialParameters": [{"name": "x", "reference": "x"}],
        "trialSpec": trial_spec,
        **tt,
    }
    return load_spec(data)


def pytorchjob(command: list[str] = QUADRATIC, workers: int = 1) -> dict[str, Any]:
    """Shaped like Katib's kubeflow-training-operator/pytorchjob-mnist."""
    replicas = {"Master": {"replicas": 1, "restartPolicy": "OnFailure"}}
    if workers:
        replicas["Worker"] = {"replicas": workers, "restartPolicy": "OnFailure"}
    for replica in replicas.values():
        replica["template"] = pod_template("pytorch", command)
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "spec": {"pytorchReplicaSpecs": replicas},
    }


def tfjob() -> dict[str, Any]:
    """Shaped like Katib's kubeflow-training-operator/tfjob-mnist-with-summaries: one Worker."""
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "spec": {
            "tfReplicaSpecs": {
                "Worker": {
                    "replicas": 1,
                    "restartPolicy": "OnFailure",
                    "template": pod_template("tensorflow", QUADRATIC),
                }
            }
        },
    }


def trainjob() -> dict[str, Any]:
    """Shaped like Katib's kubeflow-trainer/trainjob-pytorch."""
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "spec": {
            "runtimeRef": {"name": "torch-distributed"},
            "trainer": {"numNodes": 1, "image": "stand-in", "command": QUADRATIC},
        },
    }


def run_experiment(runner: KubernetesRunner, experiment: Experiment, tmp_path: Path) -> list[Trial]:
    repo = Repository(make_engine(f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}"))
    experiment = run(runner.prepare(experiment))
    runner.check(experiment)
    record = repo.create_experiment(experiment)
    final = run(ExperimentController(repo, record, runner).run(), 150)
    trials = repo.trials(record.id)
    assert final.phase is ExperimentPhase.SUCCEEDED, (final.message, trials)
    return trials


def assert_metrics_from_the_primary_pod(trials: list[Trial]) -> None:
    assert len(trials) == 2
    for t in trials:
        assert t.state is TrialState.SUCCEEDED, (t.reason, t.message)
        x = float(t.parameters["x"])
        assert t.objective == pytest.approx((x - 0.5) ** 2)  # the last of 2 steps
        assert t.steps == 2


@pytest.mark.parametrize(
    ("kind", "spec", "container"),
    [
        ("pytorchjob", pytorchjob, "pytorch"),
        ("tfjob", tfjob, "tensorflow"),
        ("trainjob", trainjob, "node"),
    ],
)
def test_katib_example_kinds_run_to_succeeded(
    runner: KubernetesRunner,
    namespace: str,
    tmp_path: Path,
    kind: str,
    spec: Any,
    container: str | None,
) -> None:
    extra = {"primaryContainerName": container} if container else {}
    experiment = katib_experiment(namespace, kind, spec(), **extra)
    trials = run_experiment(runner, experiment, tmp_path)
    assert_metrics_from_the_primary_pod(trials)


def test_failure_condition_fails_the_trial_and_retain_false_deletes(
    runner: KubernetesRunner, api: client.ApiClient, namespace: str
) -> None:
    failing = pytorchjob([*QUADRATIC, "--fail"], workers=0)
    experiment = katib_experiment(namespace, "failing", failing, primaryContainerName="pytorch")
    t = Trial(name="failing-0000", number=0, parameters={"x": 0.1})

    async def go() -> tuple[Any, list[str]]:
        handle = await runner.start(experiment, t, render_trial(experiment, t), {})
        lines = [line async for line in handle.lines()]
        return await handle.wait(), lines

    outcome, lines = run(go())
    assert not outcome.succeeded
    assert outcome.reason == "PyTorchJobFailed"  # the job's Failed condition, by the condition
    assert outcome.exit_code not in (None, 0)
    assert any("loss=" in line for line in lines)
    custom = client.CustomObjectsApi(api)

    def gone() -> bool:
        try:
            custom.get_namespaced_custom_object(
                "kubeflow.org", "v1", namespace, "pytorchjobs", t.name
            )
            return False
        except ApiException as e:
            return e.status == 404

    wait_for(gone, "the finished PyTorchJob to be deleted (retain: false)")


def test_retained_trial_objects_stay(
    runner: KubernetesRunner, api: client.ApiClient, namespace: str
) -> None:
    spec = pytorchjob(workers=0)
    experiment = katib_experiment(
        namespace, "kept", spec, primaryContainerName="pytorch", retain=True
    )
    t = Trial(name="kept-0000", number=0, parameters={"x": 0.1})

    async def go() -> Any:
        handle = await runner.start(experiment, t, render_trial(experiment, t), {})
        return await handle.wait()

    assert run(go()).succeeded
    job = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "kubeflow.org", "v1", namespace, "pytorchjobs", t.name
    )
    assert job["metadata"]["labels"]["tuner.dev/installation"] == "default"


def test_killing_a_retained_pytorchjob_suspends_it(
    runner: KubernetesRunner, api: client.ApiClient, namespace: str
) -> None:
    spec = pytorchjob([*QUADRATIC, "--sleep=30"], workers=1)
    experiment = katib_experiment(
        namespace, "stopped", spec, primaryContainerName="pytorch", retain=True
    )
    t = Trial(name="stopped-0000", number=0, parameters={"x": 0.1})
    core = client.CoreV1Api(api)
    selector = f"training.kubeflow.org/job-name={t.name}"

    def running() -> bool:
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        return len(pods) == 2 and all(p.status.phase == "Running" for p in pods)

    async def go() -> Any:
        handle = await runner.start(experiment, t, render_trial(experiment, t), {})
        await asyncio.to_thread(wait_for, running, "the PyTorchJob's pods to run")
        await handle.kill()
        return await handle.wait()

    outcome = run(go())
    assert not outcome.succeeded and outcome.reason == "Killed"
    wait_for(
        lambda: not core.list_namespaced_pod(namespace, label_selector=selector).items,
        "the suspended PyTorchJob's pods to go",
    )
    job = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "kubeflow.org", "v1", namespace, "pytorchjobs", t.name
    )
    assert job["spec"]["runPolicy"] == {"suspend": True}


@pytest.mark.parametrize(
    ("api_version", "kind", "crd"),
    [
        ("kubeflow.org/v1", "MPIJob", "mpijobs.kubeflow.org"),
        ("argoproj.io/v1alpha1", "Workflow", "workflows.argoproj.io"),
    ],
)
def test_a_kind_without_its_crd_is_refused_at_submit(
    runner: KubernetesRunner, namespace: str, api_version: str, kind: str, crd: str
) -> None:
    data = experiment_dict("nocrd")
    data["metadata"]["namespace"] = namespace
    tt = data["spec"]["trialTemplate"]
    tt["trialSpec"] = {"apiVersion": api_version, "kind": kind, "spec": {}}
    tt["successCondition"] = 'status.phase=="Succeeded"'
    tt["failureCondition"] = 'status.phase=="Failed"'
    tt["trialParameters"] = []
    experiment = load_spec(data)
    with pytest.raises(SpecError) as raised:
        run(runner.prepare(experiment))
    (error,) = raised.value.errors
    assert error.path == "spec.trialTemplate.trialSpec"
    assert kind in error.message and crd in error.message and "not installed" in error.message


def test_rest_submit_of_a_kind_without_its_crd_gets_422(
    runner: KubernetesRunner, namespace: str, tmp_path: Path
) -> None:
    with warnings.catch_warnings():  # Starlette warns at import when it finds httpx, not httpx2
        warnings.simplefilter("ignore", DeprecationWarning)
        from fastapi.testclient import TestClient

    data = experiment_dict("nocrd")
    data["metadata"]["namespace"] = namespace
    data["spec"]["trialTemplate"]["trialSpec"]["apiVersion"] = "kubeflow.org/v1"
    data["spec"]["trialTemplate"]["trialSpec"]["kind"] = "XGBoostJob"
    settings = make_settings(tmp_path, runner=runner)
    with TestClient(create_app(settings), headers=AUTH) as c:
        response = c.post(f"{V1}/experiments", json=data)
    assert response.status_code == 422, response.text
    assert "XGBoostJob" in response.text and "xgboostjobs.kubeflow.org" in response.text


def test_trial_template_from_a_config_map(
    runner: KubernetesRunner, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    template = pytorchjob(workers=0)
    client.CoreV1Api(api).create_namespaced_config_map(
        namespace,
        {
            "metadata": {"name": "trial-templates"},
            "data": {"pytorch.yaml": yaml.safe_dump(template)},
        },
    )
    data = experiment_dict("fromcm", maxTrialCount=2, parallelTrialCount=2)
    data["metadata"]["namespace"] = namespace
    data["spec"]["parameters"] = data["spec"]["parameters"][:1]
    data["spec"]["trialTemplate"] = {
        "primaryContainerName": "pytorch",
        "trialParameters": [{"name": "x", "reference": "x"}],
        "configMap": {
            "configMapName": "trial-templates",
            "configMapNamespace": namespace,
            "templatePath": "pytorch.yaml",
        },
        "successCondition": 'status.conditions.#(type=="Succeeded")#|#(status=="True")#',
        "failureCondition": 'status.conditions.#(type=="Failed")#|#(status=="True")#',
        "primaryPodLabels": {"training.kubeflow.org/job-role": "master"},
    }
    experiment = load_spec(data)
    trials = run_experiment(runner, experiment, tmp_path)
    assert_metrics_from_the_primary_pod(trials)
    missing = copy.deepcopy(data)
    missing["spec"]["trialTemplate"]["configMap"]["templatePath"] = "nope.yaml"
    with pytest.raises(SpecError, match=r"has no key 'nope\.yaml'"):
        run(runner.prepare(load_spec(missing)))


def registered_watchers(cluster: ControlPlane, kind: str) -> int:
    """Watches of ``kind`` the apiserver holds open now (its ``apiserver_registered_watchers``)."""
    resp = _request(f"{cluster.server}/metrics", cluster.token)
    assert resp is not None
    with resp:
        text = resp.read().decode()
    pattern = rf'^apiserver_registered_watchers\{{[^}}]*kind="{kind}"[^}}]*\}} (\S+)$'
    return sum(int(float(m)) for m in re.findall(pattern, text, re.M))


def test_concurrent_trials_share_one_watch_per_namespace_and_kind(
    runner: KubernetesRunner, k8s_cluster: ControlPlane, namespace: str
) -> None:
    count = 24
    experiment = katib_experiment(
        namespace,
        "many",
        pytorchjob([*QUADRATIC, "--sleep=1"], workers=0),
        primaryContainerName="pytorch",
    )
    before = {k: registered_watchers(k8s_cluster, k) for k in ("PyTorchJob", "Pod")}
    trials = [Trial(name=f"many-{i:04d}", number=i, parameters={"x": 0.1}) for i in range(count)]
    peak: dict[str, int] = {"PyTorchJob": 0, "Pod": 0}

    async def go() -> list[Any]:
        handles: list[KubernetesHandle] = [
            await runner.start(experiment, t, render_trial(experiment, t), {}) for t in trials
        ]

        async def follow(h: KubernetesHandle) -> Any:
            lines = [line async for line in h.lines()]
            return await h.wait(), lines

        async def sample() -> None:
            while True:
                for k in peak:
                    now = await asyncio.to_thread(registered_watchers, k8s_cluster, k)
                    peak[k] = max(peak[k], now - before[k])
                await asyncio.sleep(0.3)

        sampler = asyncio.create_task(sample())
        try:
            return await asyncio.gather(*(follow(h) for h in handles))
        finally:
            sampler.cancel()

    results = run(go(), 150)
    assert all(outcome.succeeded for outcome, _ in results)
    assert all(any("loss=" in line for line in lines) for _, lines in results)
    # One watch of the kind and one of pods for the namespace, whatever the number of trials
    # (a renewed watch may briefly overlap the one it replaces).
    assert 1 <= peak["PyTorchJob"] <= 2, peak
    assert 1 <= peak["Pod"] <= 2, peak
    assert len(runner.informers.all()) == 2
