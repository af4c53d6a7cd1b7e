"""End to end on a real control plane: ``tuner serve --runner kubernetes`` as a subprocess.

etcd, kube-apiserver and kube-controller-manager (Job and garbage-collector controllers) are the
real thing; Pods run through the *process kubelet*, a test fixture that runs the primary
container's command as a host process (tests/k8s/process_kubelet.py). Jobs are created by the
service, Pods by the real Job controller, and Experiment resources are created with the official
client as ``kubectl apply`` would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests import waiting
from tests.helpers import DATA
from tests.k8s.conftest import new_namespace
from tests.k8s.controlplane import ControlPlane, free_port, tail
from tests.k8s.fault_proxy import FaultProxy
from tests.pareto_support import non_dominated, two_objective_dict

pytest.importorskip("kubernetes", reason="needs the client: pip install -e '.[kubernetes]'")
from kubernetes import client

from tuner.client import Client
from tuner.errors import NotFound
from tuner.templates import EXPERIMENT_LABEL, job_trial_template

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "deploy" / "crd" / "experiments.tuner.dev.yaml"
GROUP, VERSION, PLURAL = "tuner.dev", "v1beta1", "experiments"
TIMEOUT = 90.0


wait_for = partial(waiting.wait_for, timeout=TIMEOUT, interval=0.1)


# ---------------------------------------------------------------------------------------------
# A `tuner serve --runner kubernetes` subprocess


@dataclass
class Server:
    cluster: ControlPlane
    workdir: Path
    args: list[str] = field(default_factory=list)
    kubeconfig: Path | None = None
    db_url: str = ""
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_url = self.db_url or f"sqlite:///{self.workdir / 'tuner.db'}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / f"serve-{self.starts}.log"

    def start(self) -> Server:
        self.starts += 1
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")}
        env["PYTHONPATH"] = str(ROOT)
        env["PYTHONFAULTHANDLER"] = "1"
        env["PYTHONWARNINGS"] = "ignore:Unverified HTTPS request"  # insecure-skip-tls-verify
        argv = [
            sys.executable,
            "-m",
            "tuner.cli",
            "serve",
            "--runner",
            "kubernetes",
            "--kubeconfig",
            str(self.kubeconfig or self.cluster.kubeconfig),
            "--db",
            self.db_url,
            "--port",
            str(self.port),
            "--workdir",
            str(self.workdir / "work"),
            # The process kubelet runs pods as host processes: loopback reaches the server.
            "--trial-api-url",
            self.url,
            "--resync-interval",
            "2",
            "--log-level",
            "info",
            *self.args,
        ]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                argv, cwd=self.workdir, env=env, stdout=out, stderr=subprocess.STDOUT
            )

        def healthy() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"tuner serve exited:\n{tail(self.log)}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, "tuner serve to answer /healthz", timeout=30)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)  # faulthandler: every thread's stack
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            pytest.fail(f"tuner serve did not stop on {sig!r}:\n{tail(self.log, 150)}")

    def client(self, namespace: str) -> Client:
        return Client(self.url, namespace=namespace)  # the default token, from its file


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def api(k8s_cluster: ControlPlane) -> Iterator[client.ApiClient]:
    api_client = k8s_cluster.api_client()
    ext = client.ApiextensionsV1Api(api_client)
    crd = yaml.safe_load(CRD.read_text())
    try:
        ext.create_custom_resource_definition(crd)
    except client.ApiException as e:
        if e.status != 409:
            raise

    def served() -> bool:
        conds = ext.read_custom_resource_definition(crd["metadata"]["name"]).status.conditions
        if not any(c.type == "Established" and c.status == "True" for c in conds or []):
            return False
        try:
            client.CustomObjectsApi(api_client).list_cluster_custom_object(GROUP, VERSION, PLURAL)
        except client.ApiException:
            return False
        return True

    wait_for(served, "the Experiment CRD to be served", timeout=30)
    yield api_client
    api_client.close()


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    yield from new_namespace(api, "e2e")


@pytest.fixture(scope="module")
def cr_namespace(api: client.ApiClient) -> Iterator[str]:
    """The namespace the module's server watches for Experiment resources.

    Each server of these tests watches only its own namespace: two services with different
    databases reconciling the same resource would fight over its Jobs (as two installations on
    one cluster would; see the README).
    """
    yield from new_namespace(api, "e2e-cr")


@pytest.fixture(scope="module")
def server(
    k8s_cluster: ControlPlane, cr_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    s = Server(k8s_cluster, tmp_path_factory.mktemp("serve"), ["--namespace-scope", cr_namespace])
    s.start()
    yield s
    s.stop()


# ---------------------------------------------------------------------------------------------
# Specs


def fake_mnist_accuracy(params: dict[str, Any]) -> float:
    bonus = {"sgd": 0.0, "adam": 0.02, "ftrl": -0.01}[params["optimizer"]]
    return 0.9 - 100 * (params["lr"] - 0.02) ** 2 - 0.01 * abs(params["num-layers"] - 3) + bonus


def container(data: dict[str, Any]) -> dict[str, Any]:
    spec = data["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    c: dict[str, Any] = spec["containers"][0]
    return c


def katib_random(namespace: str, name: str = "random", trials: int = 6) -> dict[str, Any]:
    """Katib's random example: only the command adapted (this interpreter, the script's path)."""
    data: dict[str, Any] = yaml.safe_load((DATA / "katib-random.yaml").read_text())
    data["metadata"] = {"name": name, "namespace": namespace}
    data["spec"]["maxTrialCount"] = trials
    container(data)["command"][0:2] = [sys.executable, str(DATA / "fake_mnist.py")]
    return data


def quadratic(
    namespace: str, name: str, *, steps: int, sleep: float, **spec: Any
) -> dict[str, Any]:
    """Trials of tests/data/quadratic.py: loss = (x - 0.5)**2 at the last of ``steps`` steps."""
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {"algorithmName": "random"},
            "parallelTrialCount": 2,
            "maxTrialCount": 6,
            "maxFailedTrialCount": 0,
            "parameters": [
                {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-1", "max": "2"}}
            ],
            "trialTemplate": job_trial_template(
                [
                    sys.executable,
                    str(DATA / "quadratic.py"),
                    "--x=${trialParameters.x}",
                    f"--steps={steps}",
                    f"--sleep={sleep}",
                ],
                ["x"],
                image="python:3.11-slim",
                backoff_limit=0,
            ),
            **spec,
        },
    }


def push_spec(namespace: str, name: str) -> dict[str, Any]:
    data = quadratic(namespace, name, steps=3, sleep=0, maxTrialCount=4)
    data["spec"]["metricsCollectorSpec"] = {"collector": {"kind": "Push"}}
    data["spec"]["algorithm"] = {"algorithmName": "grid"}
    data["spec"]["parameters"][0]["feasibleSpace"] = {"min": "-0.5", "max": "1.0", "step": "0.5"}
    c = container(data)
    c["command"] = [sys.executable, str(DATA / "push_trial.py"), "--x=${trialParameters.x}"]
    c["env"] = [{"name": "PYTHONPATH", "value": str(ROOT)}]  # `import tuner` in the trial
    return data


# ---------------------------------------------------------------------------------------------
# Cluster helpers


def jobs(api: client.ApiClient, namespace: str, experiment: str) -> list[Any]:
    listed = client.BatchV1Api(api).list_namespaced_job(
        namespace, label_selector=f"{EXPERIMENT_LABEL}={experiment}"
    )
    return list(listed.items)


def pods(api: client.ApiClient, namespace: str, experiment: str) -> list[Any]:
    listed = client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"{EXPERIMENT_LABEL}={experiment}"
    )
    return list(listed.items)


def get_cr(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        obj: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
        return obj
    except client.ApiException as e:
        if e.status == 404:
            return None
        raise


def create_cr(api: client.ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    body = {**body, "apiVersion": f"{GROUP}/{VERSION}"}
    created: dict[str, Any] = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, body["metadata"]["namespace"], PLURAL, body
    )
    return created


def cr_status(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    status: dict[str, Any] = (get_cr(api, namespace, name) or {}).get("status") or {}
    return status


def exists(c: Client, name: str) -> bool:
    try:
        c.get(name)
    except NotFound:
        return False
    return True


def finished(c: Client, name: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    return c.wait(name, progress=False, timeout=timeout, poll=0.2)


# ---------------------------------------------------------------------------------------------
# REST submissions


def test_rest_submission_runs_the_katib_example_as_jobs(
    server: Server, api: client.ApiClient, namespace: str
) -> None:
    with server.client(namespace) as c:
        c.submit(katib_random(namespace))
        final = finished(c, "random")
        assert final["status"]["phase"] == "Succeeded", final["status"]
        assert final["status"]["reason"] == "ExperimentMaxTrialsReached"
        rows = c.leaderboard_rows("random", limit=100)
    assert len(rows) == 6 and {r["status"] for r in rows} == {"Succeeded"}
    for row in rows:  # metrics came from the pod logs (StdOut collector)
        assert row["objective"] == pytest.approx(fake_mnist_accuracy(row["parameters"]), abs=1e-12)
        assert row["steps"] == 3
    # Real Jobs made by the service (no ownerReference: no Experiment resource), Pods by the
    # Job controller.
    made = jobs(api, namespace, "random")
    assert sorted(j.metadata.name for j in made) == sorted(r["trial"] for r in rows)
    assert all(j.status.succeeded == 1 and not j.metadata.owner_references for j in made)
    assert all(p.metadata.owner_references[0].kind == "Job" for p in pods(api, namespace, "random"))


def test_push_collector_metrics_arrive_from_job_pods(
    server: Server, api: client.ApiClient, namespace: str
) -> None:
    with server.client(namespace) as c:
        c.submit(push_spec(namespace, "pushed"))
        final = finished(c, "pushed")
        assert final["status"]["phase"] == "Succeeded", final["status"]
        rows = c.leaderboard_rows("pushed", limit=100)
    assert len(rows) == 4
    for row in rows:
        assert row["status"] == "Succeeded"
        assert row["objective"] == pytest.approx((row["parameters"]["x"] - 0.5) ** 2)
        assert row["steps"] == 3
    assert rows[0]["parameters"]["x"] == pytest.approx(0.5)


def test_rest_stop_kills_running_jobs_and_delete_removes_the_rest(
    server: Server, api: client.ApiClient, namespace: str
) -> None:
    with server.client(namespace) as c:
        c.submit(quadratic(namespace, "stopme", steps=60, sleep=0.5))
        wait_for(
            lambda: len([j for j in jobs(api, namespace, "stopme") if j.status.active]) == 2,
            "two running trial Jobs",
        )
        stopped = c.stop("stopme")
        assert stopped["status"]["phase"] == "Stopped"
        wait_for(lambda: not jobs(api, namespace, "stopme"), "the killed trials' Jobs to go")
        wait_for(lambda: not pods(api, namespace, "stopme"), "their pods to go")
        c.delete("stopme")


# ---------------------------------------------------------------------------------------------
# Experiment resources (kubectl apply)


STATUS_KEYS = {
    "observedGeneration",
    "phase",
    "reason",
    "message",
    "startTime",
    "completionTime",
    "conditions",
    "trials",
    "trialsCreated",
    "trialsRunning",
    "trialsSucceeded",
    "trialsFailed",
    "trialsKilled",
    "trialsEarlyStopped",
    "trialMetricsUnavailable",
    "currentOptimalTrial",
}


def test_applied_resource_runs_to_succeeded_and_mirrors_status(
    server: Server, api: client.ApiClient, cr_namespace: str
) -> None:
    namespace = cr_namespace
    data = katib_random(namespace, trials=4)
    data["spec"]["resumePolicy"] = "LongRunning"  # Katib continues a finished one only so
    created = create_cr(api, data)
    sizes: list[int] = []

    def done() -> dict[str, Any] | None:
        status = cr_status(api, namespace, "random")
        sizes.append(len(json.dumps(status)))
        return status if status.get("phase") == "Succeeded" else None

    status = wait_for(done, "the resource's status to say Succeeded")
    assert set(status) <= STATUS_KEYS
    assert status["reason"] == "ExperimentMaxTrialsReached"
    assert status["trials"] == status["trialsSucceeded"] == 4
    assert {c["type"] for c in status["conditions"]} >= {"Created", "Succeeded"}
    with server.client(namespace) as c:
        best = c.leaderboard_rows("random", limit=1)[0]
    optimal = status["currentOptimalTrial"]
    assert optimal["bestTrialName"] == best["trial"]
    assert optimal["objectiveValue"] == pytest.approx(best["objective"])
    assert optimal["objectiveValue"] == pytest.approx(fake_mnist_accuracy(best["parameters"]))
    assert {p["name"] for p in optimal["parameterAssignments"]} == {"lr", "num-layers", "optimizer"}
    metrics = {m["name"]: m for m in optimal["observation"]["metrics"]}
    assert float(metrics["Validation-accuracy"]["max"]) == pytest.approx(best["objective"])
    assert max(sizes) < 4000  # a summary, never a per-trial list
    # The Jobs belong to the resource (garbage-collected with it).
    made = jobs(api, namespace, "random")
    assert len(made) == 4
    for j in made:
        (owner,) = j.metadata.owner_references
        assert (owner.kind, owner.name, owner.uid) == (
            "Experiment",
            "random",
            created["metadata"]["uid"],
        )

    # A budget edit on the resource takes effect: the finished experiment resumes.
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "random", {"spec": {"maxTrialCount": 6}}
    )
    wait_for(
        lambda: (
            (s := cr_status(api, namespace, "random")).get("phase") == "Succeeded"
            and s.get("trialsSucceeded") == 6
        ),
        "the resource to finish the raised budget",
    )
    # Other edits are ignored, and the status says so.
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "random",
        {"spec": {"objective": {"goal": 0.5}}},
    )
    ignored = wait_for(
        lambda: next(
            (
                c
                for c in cr_status(api, namespace, "random").get("conditions", [])
                if c["type"] == "SpecChangeIgnored"
            ),
            None,
        ),
        "a SpecChangeIgnored condition",
    )
    assert "spec.objective" in ignored["message"]


def test_invalid_resources_end_failed_with_field_paths(
    server: Server, api: client.ApiClient, cr_namespace: str
) -> None:
    namespace = cr_namespace
    # Valid for the CRD schema, invalid for tuner.spec (and for the runner).
    bad = quadratic(namespace, "bad", steps=1, sleep=0)
    bad["spec"]["parameters"][0]["feasibleSpace"] = {"min": "3", "max": "1"}
    create_cr(api, bad)
    # Valid for tuner.spec, refused by the runner (a condition it cannot evaluate).
    unruly = quadratic(namespace, "unruly", steps=1, sleep=0)
    unruly["spec"]["trialTemplate"]["successCondition"] = "status.#(type~1)"
    create_cr(api, unruly)
    for name, path in (
        ("bad", "spec.parameters[0].feasibleSpace"),
        ("unruly", "spec.trialTemplate.successCondition"),
    ):
        status = wait_for(
            lambda name=name: (s := cr_status(api, namespace, name)).get("phase") and s,  # type: ignore[misc]
            f"a status on {name}",
        )
        assert (status["phase"], status["reason"]) == ("Failed", "InvalidSpec"), status
        assert path in status["message"]
    assert not jobs(api, namespace, "bad") and not jobs(api, namespace, "unruly")


def test_deleting_the_resource_stops_the_experiment_and_collects_its_jobs(
    server: Server, api: client.ApiClient, cr_namespace: str
) -> None:
    namespace = cr_namespace
    create_cr(api, quadratic(namespace, "doomed", steps=60, sleep=0.5))
    wait_for(
        lambda: len([j for j in jobs(api, namespace, "doomed") if j.status.active]) == 2,
        "two running trial Jobs",
    )
    wait_for(lambda: cr_status(api, namespace, "doomed").get("trialsRunning") == 2, "status")
    client.CustomObjectsApi(api).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "doomed"
    )
    wait_for(lambda: not jobs(api, namespace, "doomed"), "the Jobs to be garbage-collected")
    wait_for(lambda: not pods(api, namespace, "doomed"), "the pods to be garbage-collected")
    with server.client(namespace) as c:
        wait_for(lambda: not exists(c, "doomed"), "the experiment to leave the database")


# ---------------------------------------------------------------------------------------------
# Restarts


class JobRecorder:
    """Lists the namespace's trial Jobs every 0.1 s: which uids each Job name ever had."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.uids: dict[str, set[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            listed = client.BatchV1Api(self.api).list_namespaced_job(
                self.namespace, label_selector=EXPERIMENT_LABEL
            )
            for j in listed.items:
                self.uids.setdefault(j.metadata.name, set()).add(j.metadata.uid)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def test_restarted_service_reattaches_and_loses_or_duplicates_no_trial(
    k8s_cluster: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    args = ["--namespace-scope", namespace, "--lease-ttl", "3"]
    server = Server(k8s_cluster, tmp_path, args)
    recorder = JobRecorder(api, namespace)
    try:
        server.start()
        applied = create_cr(
            api, quadratic(namespace, "applied", steps=4, sleep=0.4, maxTrialCount=4)
        )
        with server.client(namespace) as c:
            c.submit(quadratic(namespace, "restart", steps=4, sleep=0.4))

            def progress(started: int) -> bool:
                rows = c.trial_rows("restart")
                running = [r for r in rows if r["status"] == "Running"]
                return len(rows) >= started and len(running) >= 1

            wait_for(lambda: progress(2), "two trials started")
        # A graceful stop leaves the Jobs running (the runner is detached).
        server.stop(signal.SIGTERM)
        active = [j.metadata.name for j in jobs(api, namespace, "restart") if j.status.active]
        server.start()
        with server.client(namespace) as c:
            wait_for(lambda: progress(4), "two more trials started")
        # A crash: the lease expires and the next server takes over.
        server.stop(signal.SIGKILL)
        server.start()
        with server.client(namespace) as c:
            final = finished(c, "restart", 120)
            rows = c.trial_rows("restart")
            board = c.leaderboard_rows("restart", limit=100)
            wait_for(lambda: exists(c, "applied"), "the resource's experiment")
            applied_final = finished(c, "applied", 120)
            applied_rows = c.trial_rows("applied")
        status = wait_for(
            lambda: (s := cr_status(api, namespace, "applied")).get("phase") == "Succeeded" and s,
            "the resource's status to say Succeeded",
        )
    finally:
        recorder.stop()
        server.stop()
    assert final["status"]["phase"] == "Succeeded", final["status"]
    assert active, "no Job was running at the graceful stop"
    # Trials 0..5, each once, each with one Job that was created once.
    names = [r["trial"] for r in rows]
    assert sorted(r["number"] for r in rows) == list(range(6))
    made = jobs(api, namespace, "restart")
    assert sorted(j.metadata.name for j in made) == sorted(names)
    # The resource's experiment went on across the restarts too: submitted once, 4 trials.
    assert applied_final["status"]["phase"] == "Succeeded", applied_final["status"]
    assert sorted(r["number"] for r in applied_rows) == list(range(4))
    assert (status["trials"], status["trialsSucceeded"]) == (4, 4)
    applied_names = [r["trial"] for r in applied_rows]
    for j in jobs(api, namespace, "applied"):
        assert j.metadata.owner_references[0].uid == applied["metadata"]["uid"]
    assert set(recorder.uids) == set(names) | set(applied_names)
    assert all(len(uids) == 1 for uids in recorder.uids.values()), recorder.uids
    for row in board:  # every step's observation once; objective from the log
        assert row["status"] == "Succeeded"
        assert row["steps"] == 4
        assert row["objective"] == pytest.approx((row["parameters"]["x"] - 0.5) ** 2)


# ---------------------------------------------------------------------------------------------
# Faults


def test_experiments_complete_through_apiserver_faults(
    k8s_cluster: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """500s, 409s on status writes, 410 on watches, and watches and log follows cut mid-stream."""
    pki = k8s_cluster.workdir / "pki"
    proxy = FaultProxy(k8s_cluster.server, pki / "apiserver.crt", pki / "apiserver.key").start()
    config = json.loads(k8s_cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = proxy.url
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(config))
    server = Server(k8s_cluster, tmp_path, ["--namespace-scope", namespace], kubeconfig=kubeconfig)
    try:
        server.start()
        create_cr(api, quadratic(namespace, "applied", steps=3, sleep=0.3, maxTrialCount=4))
        with server.client(namespace) as c:
            c.submit(katib_random(namespace, "posted", trials=4))
            posted = finished(c, "posted", 120)
            wait_for(lambda: exists(c, "applied"), "the operator to submit the resource")
            applied = finished(c, "applied", 120)
            rows = c.leaderboard_rows("posted", limit=100)
            applied_rows = c.leaderboard_rows("applied", limit=100)
        status = wait_for(
            lambda: (s := cr_status(api, namespace, "applied")).get("phase") == "Succeeded" and s,
            "the resource's status to say Succeeded",
        )
    finally:
        server.stop()
        proxy.stop()
    assert posted["status"]["phase"] == "Succeeded", posted["status"]
    assert applied["status"]["phase"] == "Succeeded", applied["status"]
    assert len(rows) == 4 and len(applied_rows) == 4
    for row in rows:  # each log line counted once despite the cut streams
        assert row["status"] == "Succeeded" and row["steps"] == 3
        assert row["objective"] == pytest.approx(fake_mnist_accuracy(row["parameters"]), abs=1e-12)
    for row in applied_rows:
        assert row["status"] == "Succeeded" and row["steps"] == 3
        assert row["objective"] == pytest.approx((row["parameters"]["x"] - 0.5) ** 2)
    assert status["trialsSucceeded"] == 4
    assert status["currentOptimalTrial"]["bestTrialName"] == applied_rows[0]["trial"]
    assert len(jobs(api, namespace, "posted")) == 4 and len(jobs(api, namespace, "applied")) == 4
    assert all(proxy.counts[k] > 0 for k in ("error", "conflict", "gone", "cut")), proxy.counts


def test_applied_multi_objective_resource_mirrors_the_pareto_front(
    server: Server, api: client.ApiClient, cr_namespace: str
) -> None:
    """spec.objectives through the CRD: the status's currentOptimalTrial is the front's list,
    the non-dominated set of the stored trials."""
    data = two_objective_dict("multi-cr", "nsga2", {"population_size": "2"}, trials=4)
    data["metadata"]["namespace"] = cr_namespace
    container(data)["image"] = "python:3.11-slim"
    create_cr(api, data)
    status = wait_for(
        lambda: (s := cr_status(api, cr_namespace, "multi-cr")).get("phase") == "Succeeded" and s,
        "the multi-objective resource to succeed",
    )
    with server.client(cr_namespace) as c:
        trials = c.trial_rows("multi-cr")
        front = {r["trial"] for r in c.pareto_rows("multi-cr")}
    assert len(trials) == 4
    assert front == non_dominated(trials)
    optimal = status["currentOptimalTrial"]
    assert isinstance(optimal, list)
    assert {o["bestTrialName"] for o in optimal} == front
