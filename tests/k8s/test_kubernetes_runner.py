"""The Kubernetes runner and the controller on a real control plane.

etcd, kube-apiserver and kube-controller-manager (Job and garbage-collector controllers) are the
real thing; Pods run through the *process kubelet*, a test fixture that runs the primary
container's command as a host process (tests/k8s/process_kubelet.py). Jobs are created by the
runner, Pods by the real Job controller.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Coroutine, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests import waiting
from tests.helpers import DATA, experiment_dict
from tests.k8s.controlplane import ControlPlane

pytest.importorskip("kubernetes", reason="needs the client: pip install -e '.[kubernetes]'")
from kubernetes import client

from tuner.controller import ExperimentController
from tuner.k8s.jobs import is_dns_label, job_name
from tuner.runners.kubernetes import KubernetesHandle, KubernetesRunner
from tuner.spec import Experiment, load_spec
from tuner.storage import Repository, make_engine
from tuner.templates import EXPERIMENT_LABEL, TRIAL_LABEL, render_trial
from tuner.trials import ExperimentPhase, Trial, TrialState

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "deploy" / "crd" / "experiments.tuner.dev.yaml"
T = TypeVar("T")
TIMEOUT = 60.0


def run(coro: Coroutine[Any, Any, T], timeout: float = TIMEOUT) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


wait_for = partial(waiting.wait_for, timeout=TIMEOUT, interval=0.1)


@pytest.fixture
def runner(k8s_cluster: ControlPlane) -> Iterator[KubernetesRunner]:
    r = KubernetesRunner(kubeconfig=k8s_cluster.kubeconfig, watch_window=5.0)
    yield r
    r.close()
    r.api.close()


def quadratic_experiment(namespace: str, name: str = "exp", *extra: str) -> Experiment:
    data = experiment_dict(name, maxTrialCount=4, parallelTrialCount=2)
    data["metadata"]["namespace"] = namespace
    job_spec = data["spec"]["trialTemplate"]["trialSpec"]["spec"]
    job_spec["backoffLimit"] = 0
    job_spec["template"]["spec"]["containers"][0]["command"].extend(extra)
    return load_spec(data)


def trial(experiment: Experiment, number: int = 0, x: float = 0.1, n: int = 3) -> Trial:
    return Trial(name=f"{experiment.name}-{number:04d}", number=number, parameters={"x": x, "n": n})


async def start(runner: KubernetesRunner, experiment: Experiment, t: Trial) -> KubernetesHandle:
    env = {"TUNER_TRIAL": t.name, "TUNER_EXPERIMENT": experiment.name}
    return await runner.start(experiment, t, render_trial(experiment, t), env)


async def collect(handle: KubernetesHandle) -> list[str]:
    return [line async for line in handle.lines()]


def expected_lines(x: float, steps: int) -> list[str]:
    loss = (x - 0.5) ** 2
    out = []
    for step in range(steps):
        value = loss + 0.1 * (steps - 1 - step)
        out.append(f"epoch={step} loss={value!r} accuracy={1 / (1 + value)!r}")
    return out


def test_trial_job_streams_its_log_and_succeeds(
    runner: KubernetesRunner, api: client.ApiClient, namespace: str
) -> None:
    experiment = quadratic_experiment(namespace)
    t = trial(experiment)

    async def scenario() -> tuple[KubernetesHandle, list[str], Any]:
        handle = await start(runner, experiment, t)
        lines = await collect(handle)
        return handle, lines, await handle.wait()

    handle, lines, outcome = run(scenario())
    assert lines == expected_lines(0.1, 3)
    assert (outcome.succeeded, outcome.reason, outcome.exit_code) == (True, "Completed", 0)

    job = client.BatchV1Api(api).read_namespaced_job(handle.ref, namespace)
    assert job.metadata.name == "exp-0000" == handle.ref
    assert job.metadata.labels[EXPERIMENT_LABEL] == "exp"
    assert job.metadata.labels[TRIAL_LABEL] == "exp-0000"
    assert job.spec.template.metadata.labels[TRIAL_LABEL] == "exp-0000"
    assert job.spec.template.spec.restart_policy == "Never"
    env = {e.name: e.value for e in job.spec.template.spec.containers[0].env}
    assert env["TUNER_TRIAL"] == "exp-0000" and env["TUNER_EXPERIMENT"] == "exp"
    assert "--x=0.1" in job.spec.template.spec.containers[0].command


def test_failing_trial_reports_exit_code_and_backoff_limit(
    runner: KubernetesRunner, namespace: str
) -> None:
    experiment = quadratic_experiment(namespace, "exp", "--fail")
    t = trial(experiment, n=1)

    async def scenario() -> tuple[list[str], Any]:
        handle = await start(runner, experiment, t)
        return await collect(handle), await handle.wait()

    lines, outcome = run(scenario())
    assert lines == [*expected_lines(0.1, 1), "boom"]
    assert not outcome.succeeded
    assert outcome.reason == "BackoffLimitExceeded"
    assert outcome.exit_code == 3
    assert "exit code 3" in outcome.message


def test_kill_deletes_the_job_and_its_pods(
    runner: KubernetesRunner, api: client.ApiClient, namespace: str
) -> None:
    experiment = quadratic_experiment(namespace, "exp", "--sleep=60")
    t = trial(experiment, n=3)
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)

    async def scenario() -> tuple[str, Any]:
        handle = await start(runner, experiment, t)
        lines = handle.lines()
        first = await anext(lines)  # the process runs: its first line arrived
        await handle.kill()
        rest = [line async for line in lines]  # ends once the pod is gone
        assert rest == []
        return first, await handle.wait()

    first, outcome = run(scenario())
    assert first == expected_lines(0.1, 3)[0]
    assert not outcome.succeeded and outcome.reason == "Killed"
    selector = f"{TRIAL_LABEL}={t.name}"
    wait_for(
        lambda: not batch.list_namespaced_job(namespace, label_selector=selector).items,
        "the Job to be deleted",
    )
    wait_for(
        lambda: not core.list_namespaced_pod(namespace, label_selector=selector).items,
        "the pods to be garbage-collected",
    )


def test_attach_after_restart_streams_each_line_once(
    k8s_cluster: ControlPlane, runner: KubernetesRunner, namespace: str
) -> None:
    experiment = quadratic_experiment(namespace, "exp", "--sleep=0.5")
    t = trial(experiment, x=0.3, n=4)

    async def before_restart() -> str:
        handle = await start(runner, experiment, t)
        lines = handle.lines()
        first = await anext(lines)
        await lines.aclose()  # the service "crashes": its stream is gone, the Job runs on
        return first

    first = run(before_restart())
    restarted = KubernetesRunner(kubeconfig=k8s_cluster.kubeconfig, watch_window=5.0)
    try:

        async def after_restart() -> tuple[list[str], Any]:
            # Starting the same trial again adopts its Job instead of creating a second one.
            again = await start(restarted, experiment, t)
            handle = await restarted.attach(experiment, t)
            assert handle is not None and handle.ref == again.ref == job_name(experiment, t)
            return await collect(handle), await handle.wait()

        lines, outcome = run(after_restart())
        gone = run(restarted.attach(experiment, trial(experiment, number=7)))
    finally:
        restarted.close()
        restarted.api.close()
    assert first == expected_lines(0.3, 4)[0]
    assert lines == expected_lines(0.3, 4)  # the whole log, each line exactly once
    assert outcome.succeeded
    assert gone is None


def test_job_name_of_the_longest_experiment_name_is_a_dns_label(
    runner: KubernetesRunner, namespace: str
) -> None:
    name = "e" * 19 + "-" + "x" * 20
    assert len(name) == 40  # the longest Katib accepts
    experiment = quadratic_experiment(namespace, name)
    t = trial(experiment, n=1)
    expected = job_name(experiment, t)
    assert is_dns_label(expected)
    assert expected.endswith("-0000")
    assert job_name(experiment, t) == expected  # deterministic
    assert job_name(experiment, trial(experiment, number=1)) != expected

    async def scenario() -> tuple[str, list[str], bool]:
        handle = await start(runner, experiment, t)
        found = await runner.attach(experiment, t)
        assert found is not None and found.ref == handle.ref
        return handle.ref, await collect(handle), (await handle.wait()).succeeded

    ref, lines, ok = run(scenario())
    assert ref == expected and lines == expected_lines(0.1, 1) and ok


def fake_mnist_accuracy(params: dict[str, Any]) -> float:
    bonus = {"sgd": 0.0, "adam": 0.02, "ftrl": -0.01}[params["optimizer"]]
    return 0.9 - 100 * (params["lr"] - 0.02) ** 2 - 0.01 * abs(params["num-layers"] - 3) + bonus


def test_controller_runs_the_katib_example_as_jobs(
    k8s_cluster: ControlPlane, runner: KubernetesRunner, api: client.ApiClient, tmp_path: Path
) -> None:
    data = yaml.safe_load((DATA / "katib-random.yaml").read_text())
    namespace = f"kubeflow-{uuid.uuid4().hex[:6]}"
    data["metadata"]["namespace"] = namespace
    container = data["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    # Only the command is adapted: this interpreter and the script's absolute path.
    container["command"][0:2] = [sys.executable, str(DATA / "fake_mnist.py")]
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        repo = Repository(make_engine(f"sqlite:///{tmp_path / 'tuner.db'}"))
        record = repo.create_experiment(load_spec(data))
        controller = ExperimentController(repo, record, runner)
        final = run(controller.run(), 150)
        assert final.phase is ExperimentPhase.SUCCEEDED, final.message
        assert final.reason == "ExperimentMaxTrialsReached"
        trials = repo.trials(record.id)
        assert len(trials) == 12
        assert {t.state for t in trials} == {TrialState.SUCCEEDED}
        for t in trials:
            assert t.objective == pytest.approx(fake_mnist_accuracy(t.parameters), abs=1e-12)
            assert t.steps == 3
            assert t.runner_ref == t.name
        # Real Jobs, one per trial, each with a pod made by the Job controller.
        jobs = client.BatchV1Api(api).list_namespaced_job(
            namespace, label_selector=f"{EXPERIMENT_LABEL}=random"
        )
        assert sorted(j.metadata.name for j in jobs.items) == sorted(t.name for t in trials)
        assert all(j.status.succeeded == 1 for j in jobs.items)
        pods = core.list_namespaced_pod(namespace, label_selector=f"{EXPERIMENT_LABEL}=random")
        assert len(pods.items) == 12
        assert all(p.metadata.owner_references[0].kind == "Job" for p in pods.items)
    finally:
        core.delete_namespace(namespace)


def test_experiment_crd_validates_custom_resources(api: client.ApiClient, namespace: str) -> None:
    ext, custom = client.ApiextensionsV1Api(api), client.CustomObjectsApi(api)
    crd = yaml.safe_load(CRD.read_text())
    name = crd["metadata"]["name"]
    try:
        ext.create_custom_resource_definition(crd)
    except client.ApiException as e:
        if e.status != 409:
            raise

    def established() -> bool:
        conds = ext.read_custom_resource_definition(name).status.conditions
        return any(c.type == "Established" and c.status == "True" for c in conds or [])

    wait_for(established, "the Experiment CRD to be established")
    body = yaml.safe_load((DATA / "katib-random.yaml").read_text())
    body["apiVersion"] = "tuner.dev/v1beta1"
    body["metadata"]["namespace"] = namespace

    def create(obj: dict[str, Any]) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = custom.create_namespaced_custom_object(
                "tuner.dev", "v1beta1", namespace, "experiments", obj
            )
            return result
        except client.ApiException as e:
            if e.status == 404:  # discovery of a just-established CRD can lag a moment
                return None
            raise

    created = wait_for(lambda: create(body), "the Experiment CR to be served")
    assert created["metadata"]["uid"]
    tt = created["spec"]["trialTemplate"]
    assert tt["trialSpec"]["spec"]["template"]["spec"]["containers"][0]["name"] == (
        "training-container"
    )  # the Job template survives pruning

    # The status subresource exists and takes a summary.
    status = {"phase": "Running", "trials": 3, "trialsSucceeded": 1}
    created["status"] = status
    updated = custom.replace_namespaced_custom_object_status(
        "tuner.dev", "v1beta1", namespace, "experiments", "random", created
    )
    assert updated["status"]["phase"] == "Running"

    bad = yaml.safe_load((DATA / "katib-random.yaml").read_text())
    bad["apiVersion"] = "tuner.dev/v1beta1"
    bad["metadata"] = {"name": "bad", "namespace": namespace}
    bad["spec"]["objective"]["type"] = "maximise"
    bad["spec"]["maxTrialCount"] = 0
    del bad["spec"]["algorithm"]
    with pytest.raises(client.ApiException) as raised:
        custom.create_namespaced_custom_object(
            "tuner.dev", "v1beta1", namespace, "experiments", bad
        )
    assert raised.value.status == 422
    message = raised.value.body
    for field in ("spec.objective.type", "spec.maxTrialCount", "spec.algorithm"):
        assert field in message
