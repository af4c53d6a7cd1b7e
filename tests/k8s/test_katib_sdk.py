"""The UNMODIFIED Katib SDK (``kubeflow-katib`` 0.19, its own venv: tests/katib_sdk.py) against
``tuner serve --runner kubernetes`` on the real control plane, with Katib's CRDs of
deploy/overlays/katib-compat installed and no Katib anywhere.

The SDK talks to the apiserver only (``KatibClient(config_file=<the control plane's
kubeconfig>)``); tuner's operator reconciles the ``experiments.kubeflow.org`` it creates, runs
the trials as Jobs (Pods run by the process kubelet, a test double that runs containers as host
processes) and writes Katib's status and Trial objects. Every answer of the SDK is checked
against tuner's own leaderboard (REST). ``get_trial_metrics`` and ``report_metrics`` go through
Katib's DB-manager gRPC and are tested with it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import waiting
from tests.helpers import DATA
from tests.k8s.conftest import new_namespace
from tests.k8s.controlplane import ControlPlane
from tests.k8s.test_e2e import CRD, Server, exists, quadratic
from tests.katib_sdk import run_sdk, sdk_python
from tests.servers import free_port

pytest.importorskip("kubernetes", reason="needs the client: pip install -e '.[kubernetes]'")
from kubernetes import client

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "deploy" / "overlays" / "katib-compat" / "crds.yaml"
KATIB = ("kubeflow.org", "v1beta1")
TIMEOUT = 120.0
DB_MANAGER_PORT = free_port()  # Katib's DB-manager gRPC API, served by the module's server

wait_for = partial(waiting.wait_for, timeout=TIMEOUT, interval=0.2)


def install_katib_crds(api: client.ApiClient, *more: Path) -> None:
    """Apply the overlay's CRDs and ``more`` CRD files (as ``kubectl apply`` would) and wait
    until they are served."""
    ext = client.ApiextensionsV1Api(api)
    custom = client.CustomObjectsApi(api)
    crds = [d for f in (CRDS, *more) for d in yaml.safe_load_all(f.read_text()) if d]
    for crd in crds:
        try:
            ext.create_custom_resource_definition(crd)
        except client.ApiException as e:
            if e.status != 409:
                raise

    def served() -> bool:
        try:
            for crd in crds:
                group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
                custom.list_cluster_custom_object(group, "v1beta1", plural, limit=1)
        except client.ApiException:
            return False
        return True

    wait_for(served, "Katib's CRDs to be served", timeout=30)


def uninstall_katib_crds(api: client.ApiClient) -> None:
    """Delete the overlay's CRDs (and with them every object of theirs) and wait until gone."""
    ext = client.ApiextensionsV1Api(api)
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(CRDS.read_text()) if d]
    for name in names:
        try:
            ext.delete_custom_resource_definition(name)
        except client.ApiException as e:
            if e.status != 404:
                raise

    def gone() -> bool:
        listed = {c.metadata.name for c in ext.list_custom_resource_definition().items}
        return not listed & set(names)

    wait_for(gone, "Katib's CRDs to be deleted", timeout=60)


def test_a_katib_crd_installed_after_the_service_started_is_reconciled(
    k8s_cluster: ControlPlane,
    api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    """First in this module: runs before the module's server (which starts with the CRDs)."""
    uninstall_katib_crds(api)
    server = Server(k8s_cluster, tmp_path / "serve", ["--namespace-scope", namespace]).start()
    try:
        install_katib_crds(api)
        body = quadratic(namespace, "late", steps=1, sleep=0, maxTrialCount=2)
        custom = client.CustomObjectsApi(api)
        custom.create_namespaced_custom_object(*KATIB, namespace, "experiments", body)

        def succeeded() -> bool:
            obj = custom.get_namespaced_custom_object(*KATIB, namespace, "experiments", "late")
            return bool((obj.get("status") or {}).get("phase") == "Succeeded")

        wait_for(succeeded, "the experiment of the CRD installed later to succeed")
        with server.client(namespace) as c:
            assert len(c.leaderboard_rows("late", limit=10)) == 2
    finally:
        server.stop()


@pytest.fixture(scope="module")
def katib_namespace(api: client.ApiClient) -> Iterator[str]:
    install_katib_crds(api, CRD)  # tuner's own group as well: both are reconciled
    yield from new_namespace(api, "katib-sdk")


@pytest.fixture(scope="module")
def katib_server(
    k8s_cluster: ControlPlane, katib_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """tuner serve, started after the Katib CRDs are installed (it finds them through discovery)."""
    s = Server(
        k8s_cluster,
        tmp_path_factory.mktemp("katib"),
        ["--namespace-scope", katib_namespace, "--katib-db-manager-port", str(DB_MANAGER_PORT)],
    )
    s.start()
    yield s
    s.stop()


def sdk(script: str, cluster: ControlPlane, namespace: str, **env: str) -> dict[str, Any]:
    """Run ``script`` with the SDK; it prints one JSON object last, which is returned."""
    prelude = (
        "import json, os\n"
        "from kubeflow.katib import KatibClient, models, search\n"
        "kc = KatibClient(config_file=os.environ['KUBECONFIG_PATH'], namespace=os.environ['NS'])\n"
        "plain = kc.api_client.sanitize_for_serialization\n"
    )
    done = run_sdk(
        prelude + script,
        env={"KUBECONFIG_PATH": str(cluster.kubeconfig), "NS": namespace, **env},
        timeout=TIMEOUT + 60,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


CREATE_AND_READ = """
name = os.environ["NAME"]
job = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "spec": {
        "backoffLimit": 0,
        "template": {"spec": {"restartPolicy": "Never", "containers": [{
            "name": "training-container",
            "image": "python:3.11-slim",
            "command": [os.environ["TRIAL_PYTHON"], os.environ["QUADRATIC"],
                        "--x=${trialParameters.x}", "--steps=3"],
        }]}},
    },
}
experiment = models.V1beta1Experiment(
    api_version="kubeflow.org/v1beta1",
    kind="Experiment",
    metadata=models.V1ObjectMeta(name=name),
    spec=models.V1beta1ExperimentSpec(
        objective=models.V1beta1ObjectiveSpec(
            type="minimize", objective_metric_name="loss", additional_metric_names=["accuracy"]
        ),
        algorithm=models.V1beta1AlgorithmSpec(algorithm_name="random"),
        parameters=[models.V1beta1ParameterSpec(
            name="x", parameter_type="double",
            feasible_space=models.V1beta1FeasibleSpace(min="-1", max="2"),
        )],
        max_trial_count=4,
        parallel_trial_count=2,
        max_failed_trial_count=0,
        resume_policy="LongRunning",
        trial_template=models.V1beta1TrialTemplate(
            primary_container_name="training-container",
            trial_parameters=[models.V1beta1TrialParameterSpec(name="x", reference="x")],
            trial_spec=job,
        ),
    ),
)
kc.create_experiment(experiment)
done = kc.wait_for_experiment_condition(name, timeout=120, polling_interval=1)
result = {
    "experiment": plain(done),
    "optimal": plain(kc.get_optimal_hyperparameters(name)),
    "trials": plain(kc.list_trials(name)),
    "succeeded": plain(kc.get_success_trial_details(name)),
    "suggestion": plain(kc.get_suggestion(name)),
}
print(json.dumps(result))
"""

EDIT_BUDGET = """
import time
name = os.environ["NAME"]
kc.edit_experiment_budget(name, max_trial_count=6)
deadline = time.monotonic() + 120
while True:  # the finished experiment resumes (LongRunning) and finishes the new budget
    experiment = kc.get_experiment(name)
    if (experiment.status.trials_succeeded or 0) == 6 and kc.is_experiment_succeeded(
        name, experiment=experiment
    ):
        break
    assert time.monotonic() < deadline, plain(experiment.status)
    time.sleep(0.5)
print(json.dumps({"experiment": plain(experiment), "trials": plain(kc.list_trials(name))}))
"""

DELETE = """
kc.delete_experiment(os.environ["NAME"])
print(json.dumps({}))
"""


def leaderboard(server: Server, namespace: str, name: str) -> list[dict[str, Any]]:
    with server.client(namespace) as c:
        rows: list[dict[str, Any]] = c.leaderboard_rows(name, limit=100)
    return rows


def metrics_of(trial: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {
        m["name"]: {k: float(m[k]) for k in ("min", "max", "latest")}
        for m in trial["status"]["observation"]["metrics"]
    }


def test_sdk_creates_waits_reads_edits_and_deletes_an_experiment(
    k8s_cluster: ControlPlane,
    katib_server: Server,
    api: client.ApiClient,
    katib_namespace: str,
) -> None:
    ns, name = katib_namespace, "sdk-quadratic"
    env = {"NAME": name, "TRIAL_PYTHON": sys.executable, "QUADRATIC": str(DATA / "quadratic.py")}
    got = sdk(CREATE_AND_READ, k8s_cluster, ns, **env)
    rows = leaderboard(katib_server, ns, name)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"Succeeded"}
    best = rows[0]

    status = got["experiment"]["status"]
    succeeded = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert (succeeded["status"], succeeded["reason"]) == ("True", "ExperimentMaxTrialsReached")
    running = next(c for c in status["conditions"] if c["type"] == "Running")
    assert (running["status"], running["reason"]) == ("False", "ExperimentRunning")
    assert status["trials"] == status["trialsSucceeded"] == 4
    assert sorted(status["succeededTrialList"]) == sorted(r["trial"] for r in rows)
    assert status["startTime"] and status["completionTime"]

    optimal = got["optimal"]  # get_optimal_hyperparameters
    assert optimal["bestTrialName"] == best["trial"]
    assert float(optimal["parameterAssignments"][0]["value"]) == pytest.approx(
        best["parameters"]["x"]
    )
    loss = next(m for m in optimal["observation"]["metrics"] if m["name"] == "loss")
    assert float(loss["latest"]) == pytest.approx(best["objective"])
    assert float(loss["latest"]) == pytest.approx((best["parameters"]["x"] - 0.5) ** 2)
    assert float(loss["max"]) == pytest.approx(best["objective"] + 0.2)  # 3 steps, 0.1 apart

    by_name = {r["trial"]: r for r in rows}  # list_trials: one Trial object per trial
    trials = got["trials"]
    assert sorted(t["metadata"]["name"] for t in trials) == sorted(by_name)
    for t in trials:
        row = by_name[t["metadata"]["name"]]
        assert t["metadata"]["labels"]["katib.kubeflow.org/experiment"] == name
        (owner,) = t["metadata"]["ownerReferences"]
        assert (owner["apiVersion"], owner["kind"], owner["name"]) == (
            "kubeflow.org/v1beta1",
            "Experiment",
            name,
        )
        assert float(t["spec"]["parameterAssignments"][0]["value"]) == pytest.approx(
            row["parameters"]["x"]
        )
        assert t["spec"]["primaryContainerName"] == "training-container"
        assert "runSpec" not in t["spec"]  # kept small: the Job has it
        types = {c["type"]: c["status"] for c in t["status"]["conditions"]}
        assert types["Succeeded"] == "True" and types["Running"] == "False"
        assert metrics_of(t)["loss"]["latest"] == pytest.approx(row["objective"])
        # accuracy rises each step; its strategy (the objective's type, minimize) takes the min
        assert metrics_of(t)["accuracy"]["min"] == pytest.approx(row["metrics"]["accuracy"])
        assert metrics_of(t)["accuracy"]["latest"] > metrics_of(t)["accuracy"]["min"]

    details = {d["name"]: d for d in got["succeeded"]}  # get_success_trial_details
    assert set(details) == set(by_name)
    for trial_name, d in details.items():
        loss = next(m for m in d["metrics"] if m["name"] == "loss")
        assert float(loss["latest"]) == pytest.approx(by_name[trial_name]["objective"])
        assert float(d["parameter_assignments"][0]["value"]) == pytest.approx(
            by_name[trial_name]["parameters"]["x"]
        )

    suggestion = got["suggestion"]  # get_suggestion: a summary (the algorithms run in tuner)
    assert suggestion["spec"]["algorithm"]["algorithmName"] == "random"
    assert suggestion["spec"]["requests"] == suggestion["status"]["suggestionCount"] == 4
    assert suggestion["status"]["conditions"][-1]["type"] == "Succeeded"

    # The Jobs are owned by the kubeflow.org resource (garbage-collected with it).
    jobs = client.BatchV1Api(api).list_namespaced_job(ns).items
    assert len(jobs) == 4
    assert {o.api_version for j in jobs for o in j.metadata.owner_references} == {
        "kubeflow.org/v1beta1"
    }

    # edit_experiment_budget: the finished experiment (LongRunning) resumes to 6 trials.
    edited = sdk(EDIT_BUDGET, k8s_cluster, ns, **env)
    rows = leaderboard(katib_server, ns, name)
    assert len(rows) == 6 and {r["status"] for r in rows} == {"Succeeded"}
    assert (
        edited["experiment"]["status"]["currentOptimalTrial"]["bestTrialName"] == rows[0]["trial"]
    )
    assert len(edited["trials"]) == 6

    # delete_experiment: tuner deletes the experiment; the collector removes Trials, the
    # Suggestion and the Jobs.
    sdk(DELETE, k8s_cluster, ns, **env)
    with katib_server.client(ns) as c:
        wait_for(lambda: not exists(c, name), "tuner to delete the experiment")
    custom = client.CustomObjectsApi(api)
    wait_for(
        lambda: (
            not custom.list_namespaced_custom_object(*KATIB, ns, "trials")["items"]
            and not custom.list_namespaced_custom_object(*KATIB, ns, "suggestions")["items"]
            and not client.BatchV1Api(api).list_namespaced_job(ns).items
        ),
        "the garbage collector to remove the Trials, the Suggestion and the Jobs",
    )


TUNE = """
def objective(parameters):
    x = float(parameters["x"])
    print(f"loss={(x - 0.5) ** 2}")


name = os.environ["NAME"]
kc.tune(
    name=name,
    objective=objective,
    parameters={"x": search.double(min=-1, max=2)},
    objective_metric_name="loss",
    objective_type="minimize",
    max_trial_count=3,
    parallel_trial_count=3,
    metrics_collector_config={"kind": "StdOut"},
    env_per_trial={"PATH": os.environ["TRIAL_PATH"]},
)
done = kc.wait_for_experiment_condition(name, timeout=120, polling_interval=1)
print(json.dumps({
    "experiment": plain(done),
    "optimal": plain(kc.get_optimal_hyperparameters(name)),
    "trials": plain(kc.list_trials(name)),
}))
"""


def test_sdk_tune_runs_a_python_objective_function(
    k8s_cluster: ControlPlane,
    katib_server: Server,
    katib_namespace: str,
    tmp_path: Path,
) -> None:
    ns, name = katib_namespace, "sdk-tune"
    # tune() sends the objective's source (inspect.getsource): it must live in a file.
    script = tmp_path / "tune_script.py"
    script.write_text(TUNE)
    trial_path = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
    got = sdk(
        f"exec(compile(open({str(script)!r}).read(), {str(script)!r}, 'exec'))",
        k8s_cluster,
        ns,
        NAME=name,
        TRIAL_PATH=trial_path,
    )
    rows = leaderboard(katib_server, ns, name)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"Succeeded"}
    for row in rows:  # the function ran with the sampled x, and its printed loss was collected
        assert row["objective"] == pytest.approx((row["parameters"]["x"] - 0.5) ** 2)
    status = got["experiment"]["status"]
    assert status["trialsSucceeded"] == 3
    assert got["optimal"]["bestTrialName"] == rows[0]["trial"]
    assert sorted(t["metadata"]["name"] for t in got["trials"]) == sorted(r["trial"] for r in rows)


TUNE_PUSH = """
def objective(parameters):
    import os
    from kubeflow.katib import report_metrics
    x = float(parameters["x"])
    report_metrics({"loss": (x - 0.5) ** 2}, db_manager_address=os.environ["DB_MANAGER"])


name, address = os.environ["NAME"], os.environ["DB_MANAGER"]
kc.tune(
    name=name,
    objective=objective,
    parameters={"x": search.double(min=-1, max=2)},
    objective_metric_name="loss",
    objective_type="minimize",
    max_trial_count=2,
    parallel_trial_count=2,
    metrics_collector_config={"kind": "Push"},
    env_per_trial={"PATH": os.environ["TRIAL_PATH"], "DB_MANAGER": address},
)
kc.wait_for_experiment_condition(name, timeout=120, polling_interval=1)
print(json.dumps({
    t.metadata.name: [
        [log.metric.name, log.metric.value]
        for log in kc.get_trial_metrics(t.metadata.name, db_manager_address=address)
    ]
    for t in kc.list_trials(name)
}))
"""


def test_sdk_report_metrics_in_trials_and_get_trial_metrics_over_the_db_manager(
    k8s_cluster: ControlPlane,
    katib_server: Server,
    katib_namespace: str,
    tmp_path: Path,
) -> None:
    """tune() with the Push collector: the objective calls the SDK's ``report_metrics`` in its
    Pod, which reaches tuner's DB-manager; ``get_trial_metrics`` reads back what tuner stored."""
    ns, name = katib_namespace, "sdk-push"
    script = tmp_path / "tune_push.py"
    script.write_text(TUNE_PUSH)
    # The trial's `python3` is the SDK venv's: report_metrics is imported in the Pod.
    trial_path = f"{sdk_python().parent}:/usr/local/bin:/usr/bin:/bin"
    got = sdk(
        f"exec(compile(open({str(script)!r}).read(), {str(script)!r}, 'exec'))",
        k8s_cluster,
        ns,
        NAME=name,
        TRIAL_PATH=trial_path,
        DB_MANAGER=f"127.0.0.1:{DB_MANAGER_PORT}",
    )
    rows = leaderboard(katib_server, ns, name)
    assert len(rows) == 2 and {r["status"] for r in rows} == {"Succeeded"}
    for row in rows:  # reported in the Pod with the sampled x; read back as tuner stored it
        assert row["objective"] == pytest.approx((row["parameters"]["x"] - 0.5) ** 2)
        [[metric, value]] = got[row["trial"]]
        assert metric == "loss" and float(value) == pytest.approx(row["objective"])


def test_both_groups_run_side_by_side_and_a_name_is_taken_once(
    katib_server: Server, api: client.ApiClient, katib_namespace: str
) -> None:
    """``tuner.dev`` and ``kubeflow.org`` resources in one namespace, reconciled by one service:
    both run; a name taken by one group's resource marks the other's Failed (NameTaken), and
    deleting that one leaves the first one's experiment alone."""
    ns = katib_namespace
    custom = client.CustomObjectsApi(api)

    def create(group: str, name: str, sleep: float = 0) -> None:
        body = quadratic(ns, name, steps=3, sleep=sleep, maxTrialCount=2)
        body["apiVersion"] = f"{group}/v1beta1"
        custom.create_namespaced_custom_object(group, "v1beta1", ns, "experiments", body)

    def status(group: str, name: str) -> dict[str, Any]:
        obj = custom.get_namespaced_custom_object(group, "v1beta1", ns, "experiments", name)
        found: dict[str, Any] = obj.get("status") or {}
        return found

    create("tuner.dev", "twin")
    wait_for(lambda: status("tuner.dev", "twin").get("phase"), "the tuner.dev resource to run")
    create("kubeflow.org", "twin")
    create("kubeflow.org", "solo", sleep=0.7)

    def running_trial() -> dict[str, Any] | None:
        trials = custom.list_namespaced_custom_object(
            *KATIB, ns, "trials", label_selector="katib.kubeflow.org/experiment=solo"
        )["items"]
        for t in trials:
            conditions = {c["type"]: c["status"] for c in t.get("status", {}).get("conditions", [])}
            if conditions.get("Running") == "True" and "startTime" in t["status"]:
                return dict(t)
        return None

    # The Trial objects follow their trials: one is seen Running before any finished.
    running = wait_for(running_trial, "a Trial object of solo to say Running")
    assert "completionTime" not in running["status"]
    taken = wait_for(
        lambda: (s := status("kubeflow.org", "twin")).get("reason") == "NameTaken" and s,
        "the kubeflow.org twin to be marked NameTaken",
    )
    assert taken["conditions"][-1]["type"] == "Failed"
    for group, name in [("tuner.dev", "twin"), ("kubeflow.org", "solo")]:
        wait_for(
            lambda g=group, n=name: status(g, n).get("phase") == "Succeeded",
            f"{group} {name} to succeed",
        )
    assert "succeededTrialList" in status("kubeflow.org", "solo")  # Katib's shape...
    assert "succeededTrialList" not in status("tuner.dev", "twin")  # ...only for Katib's group
    with katib_server.client(ns) as c:
        twin = c.get("twin")
        assert len(c.leaderboard_rows("twin", limit=10)) == 2
        custom.delete_namespaced_custom_object("kubeflow.org", "v1beta1", ns, "experiments", "twin")
        custom.delete_namespaced_custom_object("kubeflow.org", "v1beta1", ns, "experiments", "solo")
        wait_for(lambda: not exists(c, "solo"), "tuner to delete the kubeflow.org experiment")
        assert c.get("twin")["metadata"] == twin["metadata"]  # the tuner.dev one stays
    custom.delete_namespaced_custom_object("tuner.dev", "v1beta1", ns, "experiments", "twin")
