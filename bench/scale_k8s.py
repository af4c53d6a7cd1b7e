"""The Kubernetes rows of ``bench/scale.py``: many concurrent trials on the real control plane.

The control plane is the tests' (etcd, kube-apiserver 1.20 and kube-controller-manager with
``--kube-api-qps=400 --kube-api-burst=600``), with the process kubelet's fast mode (a TEST
FIXTURE: each Pod plays a ``scripted-trial`` script, no process; tests/k8s/scripted_pods.py).
``tuner serve --runner kubernetes --no-operator`` runs as a subprocess from a given source tree
(this one, or ``--baseline``'s, to set the current design beside it), and experiments come
through REST. Each trial prints its ``loss`` line, holds ``hold`` seconds, and ends.

Measured per run, from the service's database and the kubelet's log:

* suggestion -> Job created: a trial row is stored when it is suggested (``created_at``) and
  marked Running when its Job has been created (``started_at``). Beside it, the floor: the same
  number of Jobs created by a bare client from 16 threads on the same control plane right
  after (``bench/scale_k8s_observe.py``);
* Job completion -> trial stored: from when the bench's own watch first saw the Job's
  ``Complete`` condition to the trial's ``finished_at`` (when its ending was stored);
* container end -> trial stored: from when the kubelet logged that the scripted container
  ended (to the microsecond), which adds the Job controller's own delay;
* ``TUNER_BENCH_KEEP=DIR`` keeps the service's database and log, the kubelet's log and the
  completion times in ``DIR``;
* peaks, sampled every second from ``/proc``: trials Running at once, the service's RSS (and at
  the most trials running), its threads and its TCP connections to the apiserver (each watch,
  log stream and pooled request holds one).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scale_k8s_observe import JobCompletions, bare_creates  # noqa: E402
from tests.k8s.controlplane import ControlPlane, free_port  # noqa: E402

ENDED = re.compile(r"scripted (\S+) (\S+) (\S+) ended at ([0-9.]+)")


def experiment(name: str, trials: int, hold: float) -> dict[str, Any]:
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {"algorithmName": "random"},
            "parallelTrialCount": trials,
            "maxTrialCount": trials,
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
                                        "image": "scripted",
                                        "command": [
                                            "scripted-trial",
                                            "print=loss=${trialParameters.x}",
                                            f"sleep={hold}",
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


@dataclass
class Peaks:
    running: int = 0
    rss_mb: float = 0.0
    rss_at_most_running_mb: float = 0.0
    threads: int = 0
    connections: int = 0
    samples: list[tuple[float, int, float, int, int]] = field(default_factory=list)


def _status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def connections_to(pid: int, port: int) -> int:
    """TCP connections of process ``pid`` whose remote port is ``port``."""
    try:
        inodes = {
            os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1]
            for fd in os.listdir(f"/proc/{pid}/fd")
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")
        }
    except OSError:
        return 0
    count = 0
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[9] in inodes and int(parts[2].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


def sample(pid: int, db: Path, port: int, stop: threading.Event, peaks: Peaks) -> None:
    while not stop.wait(1.0):
        status = _status(pid)
        if not status:
            return
        rss = int(status["VmRSS"].split()[0]) / 1024
        threads = int(status["Threads"])
        conns = connections_to(pid, port)
        try:
            with sqlite3.connect(db, timeout=5) as conn:
                (running,) = conn.execute(
                    "SELECT count(*) FROM trials WHERE state = 'Running'"
                ).fetchone()
        except sqlite3.Error:
            running = 0
        peaks.samples.append((time.time(), running, rss, threads, conns))
        if running >= peaks.running:
            peaks.running, peaks.rss_at_most_running_mb = running, rss
        peaks.rss_mb = max(peaks.rss_mb, rss)
        peaks.threads = max(peaks.threads, threads)
        peaks.connections = max(peaks.connections, conns)


def percentile(values: list[float], q: float) -> float:
    xs = sorted(values)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, max(0, round(q / 100 * len(xs) + 0.5) - 1))]


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def run_k8s(
    source: Path, experiments: int, trials: int, hold: float, extra: list[str]
) -> dict[str, Any]:
    """One run: ``experiments`` experiments of ``trials`` concurrent trials each."""
    with tempfile.TemporaryDirectory(prefix="tuner-scale-") as tmp:
        d = Path(tmp)
        cluster = ControlPlane(d / "k8s").start()
        db = d / "tuner.db"
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")}
        env.update(PYTHONPATH=str(source), PYTHONWARNINGS="ignore:Unverified HTTPS request")
        argv = [sys.executable, "-m", "tuner.cli", "serve", "--runner", "kubernetes"]
        argv += ["--kubeconfig", str(cluster.kubeconfig), "--db", f"sqlite:///{db}"]
        argv += ["--port", str(port), "--workdir", str(d / "work"), "--no-operator"]
        argv += ["--no-token", "--log-level", "warning", *extra]
        log = (d / "serve.log").open("wb")
        serve = subprocess.Popen(argv, cwd=d, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/api/v1"
        stop, peaks = threading.Event(), Peaks()
        api = cluster.api_client()
        completions = JobCompletions(api, "default").start()
        floor: list[float] = []
        try:
            _wait(lambda: _healthy(port, serve), 60, "tuner serve to answer")
            apiserver_port = int(cluster.server.rsplit(":", 1)[1])
            threading.Thread(
                target=sample, args=(serve.pid, db, apiserver_port, stop, peaks), daemon=True
            ).start()
            started = time.monotonic()
            with httpx.Client(base_url=url, timeout=60) as http:
                for i in range(experiments):
                    reply = http.post(
                        "/experiments",
                        params={"namespace": "default"},
                        json=experiment(f"e{i:03d}", trials, hold),
                    )
                    reply.raise_for_status()
                deadline = time.monotonic() + 600 + hold
                while time.monotonic() < deadline:
                    done = _count(db, "state NOT IN ('Created', 'Running')")
                    if done >= experiments * trials:
                        break
                    if serve.poll() is not None:
                        raise RuntimeError(f"tuner serve exited:\n{_tail(d / 'serve.log')}")
                    time.sleep(1)
                else:
                    raise RuntimeError(f"trials not done in time: {done}")
            wall = time.monotonic() - started
        finally:
            stop.set()
            completions.stop()
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(30)
            except subprocess.TimeoutExpired:
                serve.kill()
            log.close()
        try:
            floor = _floor(api, experiments * trials, hold)
        finally:
            kubelet_log = cluster.log_path("process-kubelet").read_text()
            memory = cluster.memory_mb()
            cluster.stop()
        if keep := os.environ.get("TUNER_BENCH_KEEP"):  # the database and logs, to look into
            for path in (db, d / "serve.log", cluster.log_path("process-kubelet")):
                shutil.copy(path, Path(keep) / path.name)
            (Path(keep) / "completions.json").write_text(json.dumps(completions.seen))
        summary = _summary(db, kubelet_log, peaks, wall, experiments * trials, memory)
        summary.update(_stored_after(db, completions.seen))
        summary.update(floor_p50=percentile(floor, 50), floor_p99=percentile(floor, 99))
        return summary


def _floor(api: Any, n: int, hold: float) -> list[float]:
    """The bare client's creation times of ``n`` Jobs like the trials' (named ``floor-*``, in
    the trials' namespace, where their Pods can start as the trials' did)."""
    spec = experiment("floor", 1, hold)["spec"]["trialTemplate"]["trialSpec"]
    text = json.dumps(spec).replace("${trialParameters.x}", "0.5")
    jobs = []
    for i in range(n):
        job = json.loads(text)
        job["metadata"] = {"name": f"floor-{i:05d}"}
        jobs.append(job)
    return bare_creates(api, "default", jobs)


def _stored_after(db: Path, completed: dict[str, float]) -> dict[str, Any]:
    """Job completion (seen on the API) -> trial stored, per trial."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name, finished_at FROM trials").fetchall()
    after = [_epoch(f) - completed[name] for name, f in rows if f and name in completed]
    return {
        "completed_p50": percentile(after, 50),
        "completed_p99": percentile(after, 99),
        "completed_n": len(after),
    }


def _summary(
    db: Path, kubelet_log: str, peaks: Peaks, wall: float, n: int, memory: dict[str, float]
) -> dict[str, Any]:
    ended = {m[3]: float(m[4]) for m in ENDED.finditer(kubelet_log)}
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT name, state, created_at, started_at, finished_at FROM trials"
        ).fetchall()
    created = [_epoch(s) - _epoch(c) for _, _, c, s, _ in rows if s]
    stored = [_epoch(f) - ended[name] for name, _, _, _, f in rows if f and name in ended]
    states: dict[str, int] = {}
    for _, state, *_ in rows:
        states[state] = states.get(state, 0) + 1
    return {
        "trials": n,
        "states": states,
        "wall_s": wall,
        "created_p50": percentile(created, 50),
        "created_p99": percentile(created, 99),
        "stored_p50": percentile(stored, 50),
        "stored_p99": percentile(stored, 99),
        "stored_n": len(stored),
        "peak_running": peaks.running,
        "rss_mb": peaks.rss_mb,
        "rss_at_most_running_mb": peaks.rss_at_most_running_mb,
        "threads": peaks.threads,
        "connections": peaks.connections,
        "control_plane_mb": memory,
    }


def _healthy(port: int, serve: subprocess.Popen[bytes]) -> bool:
    if serve.poll() is not None:
        raise RuntimeError("tuner serve exited at start")
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _wait(probe: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _count(db: Path, where: str) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            (n,) = conn.execute(f"SELECT count(*) FROM trials WHERE {where}").fetchone()
            return int(n)
    except sqlite3.Error:
        return 0


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


if __name__ == "__main__":
    print(json.dumps(run_k8s(ROOT, int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), [])))
