"""A "process kubelet": runs Pod containers as host processes. TEST FIXTURE, not a real kubelet.

The control plane the k8s tests start (etcd, kube-apiserver, kube-controller-manager) is real, but
nothing would run Pods without a kubelet, and none can run here (no container runtime, no images).
This stand-in fills that role so that Jobs complete for real:

- registers a Ready Node (address 127.0.0.1, ``daemonEndpoints.kubeletEndpoint.Port``);
- binds unbound Pods to it (there is no scheduler);
- runs each container's ``command`` + ``args`` with its ``env`` as a host process (no shell, the
  image is ignored, working directory = a fresh directory per Pod, the host environment inherited);
- patches the Pod status: Running, then Succeeded/Failed with ``state.terminated`` (exit code);
  ``restartPolicy`` OnFailure/Always restarts the container and counts ``restartCount``;
- serves ``GET /containerLogs/{ns}/{pod}/{container}`` over HTTPS (self-signed) with ``follow``,
  ``timestamps`` and ``tailLines``; the apiserver proxies ``read_namespaced_pod_log`` there;
- on a deletionTimestamp kills the process group (SIGTERM, then SIGKILL) and confirms the deletion
  with grace period 0.

- ``emptyDir`` volumes: each Pod gets a host directory per volume, and a container with
  ``volumeMounts`` runs in a mount namespace of its own (``unshare --mount --propagation
  private``) where that directory is bind-mounted at each ``mountPath``, so that the containers
  of one Pod share it and other Pods never see it (the mount points are created on the host).

- the service account's ``namespace`` file in ``/var/run/secrets/kubernetes.io/serviceaccount``
  (mounted as ``emptyDir`` volumes are), unless ``automountServiceAccountToken`` is false.

Processes of all Pods share the host's process namespace (as if every Pod had
``shareProcessNamespace: true``, and saw more than its own).

Fast mode: a container whose command is ``scripted-trial`` runs no process; the kubelet plays
its args as a script of log lines, delays and an exit code (:mod:`scripted_pods`), so that one
machine holds a thousand concurrent Pods.

Not supported: init containers, probes, volumes other than ``emptyDir`` (their mounts are
ignored), resources, ``previous`` logs.

Run: ``python tests/k8s/process_kubelet.py --kubeconfig FILE --root DIR [--port 0]``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.server
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

sys.path.insert(0, str(Path(__file__).parent))  # run as a script or imported from the tests
from scripted_pods import GATE_POLL, Step, Timeline, parse_script

IP = "127.0.0.1"
SECRETS_DIR = "/var/run/secrets"


def log(msg: str) -> None:
    print(f"{dt.datetime.now():%H:%M:%S.%f} process-kubelet: {msg}", file=sys.stderr, flush=True)


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion of command, args and env values (``$$`` escapes)."""
    pattern = r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)"
    return re.sub(pattern, lambda m: "$" if m[0] == "$$" else env.get(m[1], m[0]), text)


# Run in a private mount namespace: bind each (host dir, mountPath) pair, then exec the command.
# `unshare` without --fork execs in place, so the container's process keeps its pid.
MOUNT_SCRIPT = (
    'set -e; while [ "$1" != -- ]; do mkdir -p "$2"; mount --bind "$1" "$2"; shift 2; done; '
    'shift; exec "$@"'
)


def with_mounts(mounts: list[tuple[Path, str]], argv: list[str]) -> list[str]:
    """``argv`` run with ``mounts`` bind-mounted in a mount namespace of its own."""
    pairs = [str(x) for host, target in mounts for x in (host, target)]
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        MOUNT_SCRIPT,
        "sh",
        *pairs,
        "--",
        *argv,
    ]


class Container:
    """One container: its current process, its state and its log (lines ``<time> F|P <text>``)."""

    def __init__(
        self,
        spec: client.V1Container,
        workdir: Path,
        env: dict[str, str],
        mounts: list[tuple[Path, str]] | None = None,
    ) -> None:
        self.spec, self.workdir, self.env = spec, workdir, env
        self.mounts = mounts or []  # (host directory, mountPath)
        self.log_path = workdir / f"{spec.name}.log"
        self.cond = threading.Condition()
        self.done = False
        self.restarts = 0
        self.state: dict[str, Any] = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state: dict[str, Any] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.pump: threading.Thread | None = None
        self.log_path.touch()

    def spawn(self) -> None:
        argv = [expand(a, self.env) for a in (self.spec.command or []) + (self.spec.args or [])]
        try:
            if not argv:
                raise OSError("no command: images are not run, so `command` is needed")
            if self.mounts:
                argv = with_mounts(self.mounts, argv)
            self.proc = subprocess.Popen(
                argv,
                cwd=self.workdir,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as e:
            self.append(f"process-kubelet: cannot start {argv!r}: {e}\n".encode())
            self.proc = None
            self.state = {
                "terminated": {"exitCode": 128, "reason": "StartError", "message": str(e)}
            }
            return
        self.state = {"running": {"startedAt": now()}}
        self.pump = threading.Thread(target=self._pump, args=(self.proc,), daemon=True)
        self.pump.start()

    def _pump(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, b""):
            self.append(line)

    def append(self, line: bytes) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
        tag = b"F" if line.endswith(b"\n") else b"P"
        with self.cond, self.log_path.open("ab") as f:
            f.write(stamp + b" " + tag + b" " + line.rstrip(b"\n") + b"\n")
            self.cond.notify_all()

    def wait(self) -> int:
        assert self.proc is not None
        code = self.proc.wait()
        # Like a container, the pod's process group ends with its main process; then the pump
        # thread sees EOF and the log is complete.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        assert self.pump is not None
        self.pump.join(10.0)
        return 128 - code if code < 0 else code

    def kill(self, grace: float) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        for sig, timeout in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout)
                return
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                return

    def finish(self) -> None:
        with self.cond:
            self.done = True
            self.cond.notify_all()

    def status(self) -> dict[str, Any]:
        pid = self.proc.pid if self.proc else 0
        out = {
            "name": self.spec.name,
            "image": self.spec.image or "",
            "imageID": "",
            "containerID": f"process://{pid}",
            "ready": "running" in self.state,
            "restartCount": self.restarts,
            "state": self.state,
        }
        return {**out, "lastState": self.last_state} if self.last_state else out


class ScriptedContainer(Container):
    """A container of the fast mode: its script is played, no process runs (scripted_pods)."""

    def __init__(self, spec: client.V1Container, workdir: Path, env: dict[str, str]) -> None:
        super().__init__(spec, workdir, env)
        self.steps = parse_script(spec.command or [], spec.args or []) or []
        self.code = 0

    def spawn(self) -> None:
        self.state = {"running": {"startedAt": now()}}

    def advance(self) -> float | None:
        """Play steps up to the next sleep (its seconds) or the end (``None``)."""
        while self.steps:
            if self.steps[0].kind == "wait" and not Path(self.steps[0].value).exists():
                return GATE_POLL
            step: Step = self.steps.pop(0)
            if step.kind == "print":
                self.append(expand(step.value, self.env).encode() + b"\n")
            elif step.kind == "wait":
                continue
            elif step.kind == "exit":
                self.code = int(step.value)
                self.steps.clear()
            else:
                return float(step.value)
        return None

    def end(self, code: int) -> None:
        started = self.state.get("running", {}).get("startedAt", now())
        self.state = {
            "terminated": {
                "exitCode": code,
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": started,
                "finishedAt": now(),
                "containerID": "scripted://",
            }
        }
        self.finish()

    def kill(self, grace: float) -> None:
        if "running" in self.state:
            self.end(137)


class PodRun:
    """The processes of one Pod (by uid) and the status patches that report them."""

    def __init__(self, kubelet: Kubelet, pod: client.V1Pod) -> None:
        self.kubelet, self.pod = kubelet, pod
        self.ns, self.name, self.uid = pod.metadata.namespace, pod.metadata.name, pod.metadata.uid
        self.deleting = threading.Event()
        self.lock = threading.Lock()
        self.started = now()
        workdir = kubelet.root / f"{self.ns}_{self.name}_{self.uid}"
        workdir.mkdir(parents=True, exist_ok=True)
        volumes: dict[str, Path] = {}
        for v in pod.spec.volumes or []:
            if v.empty_dir is not None:
                volumes[v.name] = workdir / "volumes" / v.name
                volumes[v.name].mkdir(parents=True, exist_ok=True)
        # As a kubelet mounts a Pod's service account (unless automounting is off); only the
        # namespace file, which Katib's SDK reads in a trial (report_metrics). The whole
        # /var/run/secrets is mounted, so that the host gets no kubernetes.io directory (the
        # SDK would think the host is in a Pod).
        scripted = all(parse_script(c.command or [], c.args or []) for c in pod.spec.containers)
        account: list[tuple[Path, str]] = []
        if not scripted and pod.spec.automount_service_account_token is not False:
            secrets = workdir / "secrets"
            account_dir = secrets / "kubernetes.io" / "serviceaccount"
            account_dir.mkdir(parents=True, exist_ok=True)
            (account_dir / "namespace").write_text(self.ns)
            account = [(secrets, SECRETS_DIR)]
        self.scripted = scripted
        self.containers: dict[str, Container] = {
            c.name: ScriptedContainer(c, workdir, self._env(c))
            if scripted
            else Container(
                c,
                workdir,
                self._env(c),
                [
                    *account,
                    *(
                        (volumes[m.name], m.mount_path)
                        for m in c.volume_mounts or []
                        if m.name in volumes
                    ),
                ],
            )
            for c in pod.spec.containers
        }

    def _env(self, c: client.V1Container) -> dict[str, str]:
        env: dict[str, str] = {"HOSTNAME": self.name}
        fields = {
            "metadata.name": self.name,
            "metadata.namespace": self.ns,
            "metadata.uid": self.uid,
            "spec.nodeName": self.kubelet.node,
            "status.podIP": IP,
            "status.hostIP": IP,
        }
        for e in c.env or []:
            if e.value_from is not None and e.value_from.field_ref is not None:
                path = e.value_from.field_ref.field_path
                labels = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
                if labels:
                    env[e.name] = (getattr(self.pod.metadata, labels[1]) or {}).get(labels[2], "")
                elif path in fields:
                    env[e.name] = fields[path]
            elif e.value_from is None:
                env[e.name] = expand(e.value or "", env)
        return env

    def start(self) -> None:
        for c in self.containers.values():
            c.spawn()
        self.patch_status()
        for c in self.containers.values():
            if isinstance(c, ScriptedContainer):
                self.kubelet.timeline.submit(lambda c=c: self._play(c))
            else:
                threading.Thread(target=self._supervise, args=(c,), daemon=True).start()

    def _play(self, c: ScriptedContainer) -> None:
        if "running" not in c.state:
            return  # killed meanwhile
        delay = c.advance()
        if delay is not None:
            self.kubelet.timeline.after(delay, lambda: self._play(c))
            return
        c.end(c.code)
        job = (self.pod.metadata.labels or {}).get("job-name", "")
        log(f"scripted {self.ns} {self.name} {job} ended at {time.time():.6f}")  # bench/scale_k8s
        self.patch_status()

    def _supervise(self, c: Container) -> None:
        policy = self.pod.spec.restart_policy or "Always"
        while c.proc is not None:
            started = c.state["running"]["startedAt"]
            code = c.wait()
            term = {
                "exitCode": code,
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": started,
                "finishedAt": now(),
                "containerID": f"process://{c.proc.pid}",
            }
            restart = policy == "Always" or (policy == "OnFailure" and code != 0)
            if not restart or self.deleting.wait(1.0):
                c.state = {"terminated": term}
                break
            c.last_state, c.restarts = {"terminated": term}, c.restarts + 1
            c.spawn()
            self.patch_status()
        c.finish()
        self.patch_status()

    def patch_status(self) -> None:
        with self.lock:
            statuses = [c.status() for c in self.containers.values()]
            terminated = [s["state"]["terminated"] for s in statuses if "terminated" in s["state"]]
            phase = "Running"
            if len(terminated) == len(statuses):
                phase = "Succeeded" if all(t["exitCode"] == 0 for t in terminated) else "Failed"
            ready = "True" if all(s["ready"] for s in statuses) else "False"
            conditions = [{"type": t, "status": ready} for t in ("Ready", "ContainersReady")]
            body = {
                "status": {
                    "phase": phase,
                    "hostIP": IP,
                    "podIP": IP,
                    "podIPs": [{"ip": IP}],
                    "startTime": self.started,
                    "conditions": conditions,
                    "containerStatuses": statuses,
                }
            }
            try:
                self.kubelet.core.patch_namespaced_pod_status(self.name, self.ns, body)
            except ApiException as e:
                log(f"status patch of {self.ns}/{self.name} ({phase}): {e.status} {e.reason}")

    def kill(self) -> None:
        self.deleting.set()
        grace = float(self.pod.spec.termination_grace_period_seconds or 30)
        for c in self.containers.values():
            c.kill(min(grace, 10.0))


class Kubelet:
    def __init__(self, api: client.ApiClient, node: str, root: Path, port: int) -> None:
        self.core = client.CoreV1Api(api)
        self.node, self.root, self.port = node, root, port
        self.runs: dict[str, PodRun] = {}
        self.by_name: dict[tuple[str, str], PodRun] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.started = now()
        self.deleting: set[str] = set()
        self.timeline = Timeline()

    def register_node(self) -> None:
        meta = {"name": self.node, "labels": {"kubernetes.io/hostname": self.node}}
        try:
            self.core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": meta})
        except ApiException as e:
            if e.status != 409:
                raise
        self.patch_node()

    def heartbeat(self) -> None:  # no node lifecycle controller runs, but it is cheap
        while not self.stop.wait(30.0):
            try:
                self.patch_node()
            except ApiException as e:
                log(f"node heartbeat: {e.status} {e.reason}")

    def patch_node(self) -> None:
        ready = {"type": "Ready", "status": "True", "reason": "KubeletReady"}
        ready.update(lastHeartbeatTime=now(), lastTransitionTime=self.started)
        capacity = {"cpu": str(os.cpu_count() or 1), "memory": "16Gi", "pods": "110"}
        status = {
            "addresses": [{"type": "InternalIP", "address": IP}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "conditions": [ready],
            "capacity": capacity,
            "allocatable": capacity,
            "nodeInfo": {"kubeletVersion": "v1.20.2-process", "operatingSystem": "linux"},
        }
        self.core.patch_node_status(self.node, {"status": status})

    def handle(self, pod: client.V1Pod) -> None:
        meta, spec = pod.metadata, pod.spec
        if spec.node_name and spec.node_name != self.node:
            return  # another node's pod
        run = self.runs.get(meta.uid)
        if meta.deletion_timestamp is not None:
            if meta.uid not in self.deleting:
                self.deleting.add(meta.uid)
                threading.Thread(target=self._delete, args=(pod, run), daemon=True).start()
        elif not spec.node_name:
            target = client.V1ObjectReference(api_version="v1", kind="Node", name=self.node)
            body = client.V1Binding(metadata=client.V1ObjectMeta(name=meta.name), target=target)
            if all(parse_script(c.command or [], c.args or []) for c in spec.containers):
                self.timeline.submit(lambda: self._bind(meta, body))  # fast mode: in a pool
            else:
                self._bind(meta, body)
        elif spec.node_name == self.node and run is None and pod.status.phase == "Pending":
            run = PodRun(self, pod)
            with self.lock:
                self.runs[meta.uid] = self.by_name[(meta.namespace, meta.name)] = run
            log(f"starting {meta.namespace}/{meta.name}")
            if run.scripted:
                self.timeline.submit(run.start)  # not one by one on the watch thread
            else:
                run.start()

    def _bind(self, meta: client.V1ObjectMeta, body: client.V1Binding) -> None:
        try:  # _preload_content=False: the client fails to deserialize the reply
            self.core.create_namespaced_pod_binding(
                meta.name, meta.namespace, body, _preload_content=False
            )
        except ApiException as e:
            log(f"bind {meta.namespace}/{meta.name}: {e.status} {e.reason}")

    def _delete(self, pod: client.V1Pod, run: PodRun | None) -> None:
        if run is not None:
            run.kill()
        opts = client.V1DeleteOptions(
            grace_period_seconds=0, preconditions=client.V1Preconditions(uid=pod.metadata.uid)
        )
        try:
            self.core.delete_namespaced_pod(
                pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0, body=opts
            )
        except ApiException as e:
            if e.status not in (404, 409):
                log(f"delete {pod.metadata.namespace}/{pod.metadata.name}: {e.status} {e.reason}")

    def forget(self, uid: str) -> None:
        self.deleting.discard(uid)
        with self.lock:
            run = self.runs.pop(uid, None)
            if run is not None and self.by_name.get((run.ns, run.name)) is run:
                del self.by_name[(run.ns, run.name)]
        if run is not None:
            threading.Thread(target=run.kill, daemon=True).start()

    def sync_forever(self) -> None:
        """List, then watch from the list's resourceVersion; re-list on 410 Gone or errors."""
        while not self.stop.is_set():
            try:
                pods = self.core.list_pod_for_all_namespaces()
                for uid in set(self.runs) - {p.metadata.uid for p in pods.items}:
                    self.forget(uid)
                for pod in pods.items:
                    self.handle(pod)
                rv = pods.metadata.resource_version
                while not self.stop.is_set():
                    w = watch.Watch()
                    for ev in w.stream(
                        self.core.list_pod_for_all_namespaces,
                        resource_version=rv,
                        timeout_seconds=120,
                        allow_watch_bookmarks=True,
                    ):
                        if ev["type"] == "DELETED":
                            self.forget(ev["object"].metadata.uid)
                        elif ev["type"] != "BOOKMARK":
                            self.handle(ev["object"])
                    rv = w.resource_version or rv
            except ApiException as e:
                log(f"watch: {e.status} {e.reason}; re-listing")
                self.stop.wait(0 if e.status == 410 else 1.0)
            except (urllib3.exceptions.HTTPError, OSError) as e:
                log(f"watch: {e!r}; re-listing")
                self.stop.wait(1.0)

    def shutdown(self) -> None:
        self.stop.set()
        self.timeline.stop()
        for run in list(self.runs.values()):
            run.kill()


class LogHandler(http.server.BaseHTTPRequestHandler):
    kubelet: Kubelet

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/")
        run = self.kubelet.by_name.get(tuple(parts[1:3])) if len(parts) == 4 else None
        c = run.containers.get(parts[3]) if run is not None else None
        if parts[0] != "containerLogs" or c is None:
            self.send_error(404, f"no such container: {url.path}")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        follow, stamps = query.get("follow") == "true", query.get("timestamps") == "true"
        tail = int(query["tailLines"]) if "tailLines" in query else None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self._stream(c, follow, stamps, tail)  # (suppressed: the client went away)

    def _stream(self, c: Container, follow: bool, stamps: bool, tail: int | None) -> None:
        rest, first = b"", True
        with c.log_path.open("rb") as f:
            while True:
                with c.cond:
                    chunk, done = f.read(), c.done
                    if not chunk and follow and not done:
                        c.cond.wait(1.0)
                        continue
                *records, rest = (rest + chunk).split(b"\n")
                if first and tail is not None:
                    records = records[-tail:] if tail > 0 else []
                first = False
                out = []
                for rec in records:
                    stamp, tag, text = rec.split(b" ", 2)
                    out.append((stamp + b" " if stamps else b"") + text + (b"\n" * (tag == b"F")))
                if out:
                    self.wfile.write(b"".join(out))
                    self.wfile.flush()
                if not follow or (done and not chunk):
                    return

    def log_message(self, format: str, *args: Any) -> None:
        log("http: " + format % args)


def serve_logs(kubelet: Kubelet, port: int, certdir: Path) -> http.server.ThreadingHTTPServer:
    cert, key = certdir / "kubelet.crt", certdir / "kubelet.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "7",
            "-subj",
            f"/CN={kubelet.node}",
            "-addext",
            f"subjectAltName=IP:{IP}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    handler = type("Handler", (LogHandler,), {"kubelet": kubelet})
    server = http.server.ThreadingHTTPServer((IP, port), handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--root", required=True, type=Path, help="pod work dirs and logs")
    parser.add_argument("--node-name", default="process-node")
    parser.add_argument("--port", type=int, default=0, help="HTTPS port for logs (0: any)")
    args = parser.parse_args(argv)
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    args.root.mkdir(parents=True, exist_ok=True)
    kubelet = Kubelet(config.new_client_from_config(args.kubeconfig), args.node_name, args.root, 0)
    server = serve_logs(kubelet, args.port, args.root)
    kubelet.port = server.server_address[1]
    try:
        kubelet.register_node()
        threading.Thread(target=kubelet.heartbeat, daemon=True).start()
        log(f"node {kubelet.node} serving logs on https://{IP}:{kubelet.port}")
        kubelet.sync_forever()
    finally:
        kubelet.shutdown()
        server.shutdown()


if __name__ == "__main__":
    main()
