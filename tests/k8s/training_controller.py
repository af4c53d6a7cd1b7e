"""A STAND-IN training controller: a TEST DOUBLE of the Kubeflow training operator and trainer.

The k8s tests install minimal CRDs of PyTorchJob, TFJob and TrainJob (tests/k8s/crds/), but the
real operators cannot run here (no images). This stand-in plays them, as the process kubelet plays
the kubelet, just enough for tuner to be tested against the real apiserver:

- for each PyTorchJob / TFJob, one Pod per replica (at most 2 per replica type), owned by the job
  and labelled as the training operator labels them: ``training.kubeflow.org/job-name``,
  ``replica-type``, ``replica-index``, and ``job-role: master`` on the primary one (Master or
  Chief, else Worker 0);
- for each TrainJob, ``spec.trainer.numNodes`` Pods (at most 2) of container ``node`` running
  ``spec.trainer``'s command, labelled as JobSet labels them
  (``jobset.sigs.k8s.io/jobset-name``, ``replicatedjob-name: node``,
  ``batch.kubernetes.io/job-completion-index``);
- status conditions from the Pods: ``Created``, ``Running``, then ``Succeeded`` (TrainJob:
  ``Complete``) when the primary Pod (TrainJob: every node) succeeded, or ``Failed`` when one
  failed. Pods go with their job through the real garbage collector;
- a suspended job (``spec.runPolicy.suspend``, a TrainJob's ``spec.suspend``) loses its Pods and
  gets the condition ``Suspended``.

It polls (every 0.2 s) instead of watching, so it adds no watch to the apiserver's count.

Run: ``python tests/k8s/training_controller.py --kubeconfig FILE``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import sys
import time
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException

JOB_NAME = "training.kubeflow.org/job-name"
REPLICA_TYPE = "training.kubeflow.org/replica-type"
REPLICA_INDEX = "training.kubeflow.org/replica-index"
JOB_ROLE = "training.kubeflow.org/job-role"
JOBSET_NAME = "jobset.sigs.k8s.io/jobset-name"
REPLICATED_JOB = "jobset.sigs.k8s.io/replicatedjob-name"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
STAND_IN = "tuner.test/stand-in-controller"

KINDS = {
    "PyTorchJob": ("kubeflow.org", "v1", "pytorchjobs", "pytorchReplicaSpecs", ("Master",)),
    "TFJob": ("kubeflow.org", "v1", "tfjobs", "tfReplicaSpecs", ("Chief", "Master")),
    "TrainJob": ("trainer.kubeflow.org", "v1alpha1", "trainjobs", "", ()),
}


def log(msg: str) -> None:
    stamp = f"{dt.datetime.now():%H:%M:%S.%f}"
    print(f"{stamp} training-controller: {msg}", file=sys.stderr, flush=True)


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def owner(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": job["apiVersion"],
        "kind": job["kind"],
        "name": job["metadata"]["name"],
        "uid": job["metadata"]["uid"],
        "controller": True,
    }


def replica_pods(job: dict[str, Any], field: str, masters: tuple[str, ...]) -> list[dict[str, Any]]:
    """The Pods of a Kubeflow training job, one per replica (at most 2 per type)."""
    name = job["metadata"]["name"]
    replicas = (job.get("spec") or {}).get(field) or {}
    master = next((t for t in masters if t in replicas), None)
    pods = []
    for rtype, replica in replicas.items():
        template = copy.deepcopy(replica.get("template") or {})
        for index in range(min(2, int(replica.get("replicas", 1)))):
            primary = rtype == master or (master is None and rtype == "Worker" and index == 0)
            labels = {
                **((template.get("metadata") or {}).get("labels") or {}),
                JOB_NAME: name,
                REPLICA_TYPE: rtype.lower(),
                REPLICA_INDEX: str(index),
                STAND_IN: "true",
            }
            if primary:
                labels[JOB_ROLE] = "master"
            spec = copy.deepcopy(template.get("spec") or {})
            spec["restartPolicy"] = "Never"
            pods.append(
                {
                    "metadata": {"name": f"{name}-{rtype.lower()}-{index}", "labels": labels},
                    "spec": spec,
                }
            )
    return pods


def train_job_pods(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The node Pods of a TrainJob (at most 2), running ``spec.trainer``."""
    name = job["metadata"]["name"]
    trainer = (job.get("spec") or {}).get("trainer") or {}
    container = {
        "name": "node",
        "image": trainer.get("image") or "stand-in",
        **{k: trainer[k] for k in ("command", "args", "env") if k in trainer},
    }
    return [
        {
            "metadata": {
                "name": f"{name}-node-0-{index}",
                "labels": {
                    JOBSET_NAME: name,
                    REPLICATED_JOB: "node",
                    COMPLETION_INDEX: str(index),
                    STAND_IN: "true",
                },
            },
            "spec": {"restartPolicy": "Never", "containers": [container]},
        }
        for index in range(min(2, int(trainer.get("numNodes", 1))))
    ]


def conditions(kind: str, pods: list[dict[str, Any]]) -> list[str]:
    """The condition types that hold, given the job's Pods."""
    phases = {p["metadata"]["name"]: (p.get("status") or {}).get("phase") for p in pods}
    primary = [
        p["metadata"]["name"]
        for p in pods
        if kind == "TrainJob" or (p["metadata"].get("labels") or {}).get(JOB_ROLE) == "master"
    ]
    held = ["Created"]
    if any(phase in ("Running", "Succeeded") for phase in phases.values()):
        held.append("Running")
    if "Failed" in phases.values():
        held.append("Failed")
    elif primary and all(phases[p] == "Succeeded" for p in primary):
        held.append("Complete" if kind == "TrainJob" else "Succeeded")
    return held


class Controller:
    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    def sync(self) -> None:
        resp = self.core.list_pod_for_all_namespaces(
            label_selector=f"{STAND_IN}=true", _preload_content=False
        )
        owned: dict[str, list[dict[str, Any]]] = {}
        for pod in json.loads(resp.data)["items"]:
            for ref in pod["metadata"].get("ownerReferences") or []:
                owned.setdefault(ref["uid"], []).append(pod)
        for kind, (group, version, plural, field, masters) in KINDS.items():
            try:
                jobs = self.custom.list_cluster_custom_object(group, version, plural)["items"]
            except ApiException as e:
                if e.status == 404:
                    continue  # the CRD is not installed (yet)
                raise
            for job in jobs:
                if (job["metadata"]).get("deletionTimestamp"):
                    continue
                self.reconcile(kind, plural, group, version, field, masters, job, owned)

    def reconcile(
        self,
        kind: str,
        plural: str,
        group: str,
        version: str,
        field: str,
        masters: tuple[str, ...],
        job: dict[str, Any],
        owned: dict[str, list[dict[str, Any]]],
    ) -> None:
        meta = job["metadata"]
        ns, name = meta["namespace"], meta["name"]
        pods = owned.get(meta["uid"], [])
        spec = job.get("spec") or {}
        if (spec.get("runPolicy") or {}).get("suspend") or spec.get("suspend"):
            for pod in pods:  # suspended: its pods go, the job stays
                try:
                    self.core.delete_namespaced_pod(pod["metadata"]["name"], ns)
                except ApiException as e:
                    if e.status != 404:
                        raise
            self.set_conditions(kind, plural, group, version, job, ["Created", "Suspended"])
            return
        if not pods:
            if kind == "TrainJob":
                wanted = train_job_pods(job)
            else:
                wanted = replica_pods(job, field, masters)
            for pod in wanted:
                pod["metadata"]["namespace"] = ns
                pod["metadata"]["ownerReferences"] = [owner(job)]
                try:
                    self.core.create_namespaced_pod(ns, pod)
                    log(f"{kind} {ns}/{name}: created pod {pod['metadata']['name']}")
                except ApiException as e:
                    if e.status != 409:
                        log(f"{kind} {ns}/{name}: cannot create a pod: {e.status} {e.reason}")
        self.set_conditions(kind, plural, group, version, job, conditions(kind, pods))

    def set_conditions(
        self, kind: str, plural: str, group: str, version: str, job: dict[str, Any], held: list[str]
    ) -> None:
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        status = job.get("status") or {}
        had = [c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"]
        if had == held:
            return
        body = {
            "status": {
                "conditions": [
                    {
                        "type": t,
                        "status": "True",
                        "reason": f"{kind}{t}",
                        "message": f"{kind} {name} is {t.lower()} (stand-in controller)",
                        "lastTransitionTime": now(),
                    }
                    for t in held
                ]
            }
        }
        try:
            self.custom.patch_namespaced_custom_object_status(
                group,
                version,
                ns,
                plural,
                name,
                body,
                _content_type="application/merge-patch+json",
            )
            log(f"{kind} {ns}/{name}: {held}")
        except ApiException as e:
            if e.status != 404:
                log(f"{kind} {ns}/{name}: cannot set the status: {e.status} {e.reason}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--interval", type=float, default=0.2)
    args = parser.parse_args(argv)
    urllib3.disable_warnings()
    api = config.new_client_from_config(config_file=args.kubeconfig)  # type: ignore[no-untyped-call]
    controller = Controller(api)
    log("started")
    while True:
        started = time.monotonic()
        try:
            controller.sync()
        except Exception as e:  # keep playing the operator through apiserver hiccups
            log(f"sync failed: {e!r}")
        time.sleep(max(0.0, args.interval - (time.monotonic() - started)))


if __name__ == "__main__":
    main()
