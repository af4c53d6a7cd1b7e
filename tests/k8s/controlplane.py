"""Start a real Kubernetes control plane on loopback for tests: etcd, kube-apiserver 1.20 and
kube-controller-manager (Job, garbage-collector and namespace controllers), plus the process
kubelet (``process_kubelet.py``, a test fixture) so that Pods run as host processes.

The binaries come from ``tests/k8s/build-control-plane.sh`` (``make test-k8s`` runs it); they are
looked up in ``$TUNER_K8S_BIN`` (default ``~/.cache/tuner-k8s/bin``), etcd also at /usr/bin/etcd.

Standalone use, e.g. to poke at it with kubectl-like tools or the Python client::

    python tests/k8s/controlplane.py     # prints the kubeconfig path; Ctrl-C stops everything
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

HOST = "127.0.0.1"
NODE_NAME = "process-node"
START_TIMEOUT = 90.0  # seconds; a cold start takes about 5 s on 2 cores
KUBELET = Path(__file__).with_name("process_kubelet.py")


def bin_dir() -> Path:
    return Path(os.environ.get("TUNER_K8S_BIN") or Path.home() / ".cache/tuner-k8s/bin")


def find_binaries() -> tuple[dict[str, Path], str | None]:
    """Paths of etcd, kube-apiserver and kube-controller-manager, and why they are unusable."""
    d = bin_dir()
    paths = {name: d / name for name in ("kube-apiserver", "kube-controller-manager")}
    paths["etcd"] = d / "etcd" if os.access(d / "etcd", os.X_OK) else Path("/usr/bin/etcd")
    for name, path in paths.items():
        if not os.access(path, os.X_OK):
            return paths, (
                f"{name} not built ({path} missing): run `make test-k8s` "
                "(tests/k8s/build-control-plane.sh)"
            )
    return paths, None


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"


class StartError(RuntimeError):
    """A component did not come up; the message carries the tail of its log."""


@dataclass
class Component:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def rss_mb(self) -> float:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0


@dataclass
class ControlPlane:
    """A running control plane. Start with :meth:`start`, stop with :meth:`stop`."""

    workdir: Path
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    server: str = ""
    kubeconfig: Path = field(init=False)
    components: list[Component] = field(default_factory=list)
    etcd_url: str = field(init=False, default="")
    _kcm: Component | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.kubeconfig = self.workdir / "kubeconfig"

    # -- public API -------------------------------------------------------------------------

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` configured from :attr:`kubeconfig`."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def log_path(self, component: str) -> Path:
        return self.workdir / f"{component}.log"

    def memory_mb(self) -> dict[str, float]:
        return {c.name: round(c.rss_mb(), 1) for c in self.components}

    def start(self) -> ControlPlane:
        paths, missing = find_binaries()
        if missing:
            raise StartError(missing)
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_etcd(paths["etcd"])
            self._start_apiserver(paths["kube-apiserver"])
            self._start_controller_manager(paths["kube-controller-manager"])
            self._start_kubelet()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every component by its recorded PID, newest first (kubelet kills its pods)."""
        while self.components:
            c = self.components.pop()
            if c.proc.poll() is None:
                c.proc.terminate()
                try:
                    c.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    c.proc.kill()
                    c.proc.wait(timeout=10)

    # -- components --------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> Component:
        log = self.log_path(name)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                preexec_fn=_die_with_parent,
            )
        component = Component(name, proc, log)
        self.components.append(component)
        return component

    def _wait(self, c: Component, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if c.proc.poll() is not None:
                raise StartError(
                    f"{c.name} exited with {c.proc.returncode} before {what}; "
                    f"log {c.log}:\n{tail(c.log)}"
                )
            if ready():
                return
            time.sleep(0.2)
        raise StartError(
            f"{c.name}: no {what} after {START_TIMEOUT:.0f} s; log {c.log}:\n{tail(c.log)}"
        )

    def _start_etcd(self, etcd: Path) -> None:
        client_url, peer_url = f"http://{HOST}:{free_port()}", f"http://{HOST}:{free_port()}"
        c = self._spawn(
            "etcd",
            [
                str(etcd),
                "--name=tuner-test",
                f"--data-dir={self.workdir / 'etcd-data'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=tuner-test={peer_url}",
                "--log-level=warn",
                "--logger=zap",
            ],
        )
        self.etcd_url = client_url
        self._wait(c, lambda: _http_ok(f"{client_url}/health"), "/health")

    def _start_apiserver(self, apiserver: Path) -> None:
        pki = self.workdir / "pki"
        pki.mkdir(exist_ok=True)
        sa_key, sa_pub = pki / "sa.key", pki / "sa.pub"
        _openssl("genrsa", "-out", str(sa_key), "2048")
        _openssl("rsa", "-in", str(sa_key), "-pubout", "-out", str(sa_pub))
        tokens = pki / "tokens.csv"
        tokens.write_text(f'{self.token},tuner-admin,tuner-admin,"system:masters"\n')
        tokens.chmod(0o600)
        port = free_port()
        self.server = f"https://{HOST}:{port}"
        self._write_kubeconfig()
        c = self._spawn(
            "kube-apiserver",
            [
                str(apiserver),
                f"--etcd-servers={self.etcd_url}",
                f"--bind-address={HOST}",
                f"--secure-port={port}",
                f"--advertise-address={HOST}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=AlwaysAllow",
                "--disable-admission-plugins=ServiceAccount",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                "--service-cluster-ip-range=10.96.0.0/24",
                f"--cert-dir={pki}",
                # No --kubelet-certificate-authority: kubelet certs are not verified, so the
                # process kubelet's self-signed one works for logs.
                "--kubelet-preferred-address-types=InternalIP",
                "--profiling=false",
                "--v=1",
            ],
        )
        self._wait(c, lambda: _http_ok(f"{self.server}/readyz", self.token), "/readyz")

    def _start_controller_manager(self, kcm: Path) -> None:
        c = self._spawn(
            "kube-controller-manager",
            [
                str(kcm),
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--port=0",
                "--secure-port=0",
                "--controllers=job,garbagecollector,namespace",
                # The default client rate (20/s, burst 30) holds the Job controller to about
                # 120 running pods out of 300 asked for: raised, as an installation must.
                "--kube-api-qps=400",
                "--kube-api-burst=600",
                "--v=1",
            ],
        )
        # It serves nothing (--secure-port=0); _start_kubelet checks that it is still running.
        self._kcm = c

    def _start_kubelet(self) -> None:
        c = self._spawn(
            "process-kubelet",
            [
                sys.executable,
                str(KUBELET),
                f"--kubeconfig={self.kubeconfig}",
                f"--root={self.workdir / 'pods'}",
                f"--node-name={NODE_NAME}",
            ],
        )

        def node_ready() -> bool:
            if self._kcm is not None and self._kcm.proc.poll() is not None:
                raise StartError(
                    f"kube-controller-manager exited with {self._kcm.proc.returncode}; "
                    f"log {self._kcm.log}:\n{tail(self._kcm.log)}"
                )
            node = _get_json(f"{self.server}/api/v1/nodes/{NODE_NAME}", self.token)
            if not node:
                return False
            port = node["status"].get("daemonEndpoints", {}).get("kubeletEndpoint", {}).get("Port")
            conds = {x["type"]: x["status"] for x in node["status"].get("conditions", [])}
            return bool(port) and conds.get("Ready") == "True"

        self._wait(c, node_ready, f"Ready node {NODE_NAME}")

    def _write_kubeconfig(self) -> None:
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "tuner-test",
                    "cluster": {"server": self.server, "insecure-skip-tls-verify": True},
                }
            ],
            "users": [{"name": "tuner-admin", "user": {"token": self.token}}],
            "contexts": [
                {"name": "tuner-test", "context": {"cluster": "tuner-test", "user": "tuner-admin"}}
            ],
            "current-context": "tuner-test",
        }
        self.kubeconfig.write_text(json.dumps(cfg, indent=2))  # JSON is valid YAML
        self.kubeconfig.chmod(0o600)


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _insecure() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _request(url: str, token: str | None) -> IO[bytes] | None:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        return urllib.request.urlopen(req, timeout=5, context=_insecure())  # type: ignore[no-any-return]
    except (urllib.error.URLError, OSError):
        return None


def _http_ok(url: str, token: str | None = None) -> bool:
    resp = _request(url, token)
    if resp is None:
        return False
    with resp:
        return resp.status == 200


def _get_json(url: str, token: str) -> dict[str, Any] | None:
    resp = _request(url, token)
    if resp is None:
        return None
    with resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="tuner-k8s-"))
    cp = ControlPlane(workdir)
    started = time.monotonic()
    cp.start()
    print(f"control plane up in {time.monotonic() - started:.1f} s")
    print(f"export KUBECONFIG={cp.kubeconfig}")
    print(f"logs in {workdir}; memory MB: {cp.memory_mb()}; Ctrl-C to stop")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cp.stop()


if __name__ == "__main__":
    main()
