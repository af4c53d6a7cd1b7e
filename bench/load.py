"""Metric reports under load: offered vs achieved rate, latency, 503s and ``/healthz``.

A real ``tuner serve`` (a subprocess, on a temporary SQLite file or a private PostgreSQL
schema) holds one ask/tell experiment with ``--trials`` Running trials (asked through the API,
with their tokens). A load generator, in **its own process** so that it does not share the
server's event loop, offers pushes (``POST .../trials/{trial}/observations``, the request
``tuner.report`` makes, with the trial's token, ``loss`` and ``accuracy`` at an explicit step)
at a fixed rate, open loop: request ``i`` is due at ``start + i / rate`` whatever happened to
the earlier ones, and its latency is counted from that due time (a request waiting for a free
connection is late, not excused). It speaks HTTP/1.1 itself over ``--connections``
keep-alive connections (more than the server's admission limit, as many trials would be):
no HTTP library, so that the generator is not the bottleneck on 2 cores. A request without an
answer after 10 s is a timeout (its connection is closed and opened again).

Beside the load, a prober asks ``GET /healthz`` 10 times a second on its own connection.

Columns: ``achieved 2xx/s`` (acknowledged reports over the time from the first due request
to the last answer), ``p50``/``p99`` from due time, ``p99 from sent`` (from the request's
write to its answer: the server's part), ``503s`` (with the ``Retry-After`` values seen),
timeouts and connection errors, ``/healthz`` p99 and failures, the server process's CPU time
per acknowledged report and its CPU use over the run (100% = one core), and how late the
generator itself was in putting requests out (its own lag, to tell a starved generator from a
slow server).

After every rate the server is given time to drain; at the end, every trial's stored ``loss``
curve is read back through the API and compared with the pushes that were acknowledged
(2xx): acknowledged reports not stored (must be 0) and steps stored twice (must be 0).

Run: ``.venv/bin/python bench/load.py [--db sqlite|postgres|both] [--rates 200,500,1000,1500]
[--duration 10] [--quick]`` (``--quick``: 4 s per rate). PostgreSQL:
``$TUNER_BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``), a
private schema dropped afterwards. ``--serve-arg=--max-pending-reports=N`` (repeatable)
passes options to ``tuner serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    machine,
    markdown_table,
    percentile,
    postgres_schema,
)

TIMEOUT = 10.0
HEALTH_INTERVAL = 0.1
EXPERIMENT = "load"


# -- the generator (runs in its own process) ------------------------------------------------


@dataclass
class Plan:
    host: str
    port: int
    rate: float
    duration: float
    connections: int
    trials: list[tuple[str, str]]  # (name, token)
    first_step: int


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)  # seconds from due, answered requests
    served: list[float] = field(default_factory=list)  # seconds from sent to answered
    statuses: dict[str, int] = field(default_factory=dict)
    timeouts: int = 0
    errors: int = 0
    acked: dict[str, list[int]] = field(default_factory=dict)  # trial -> acknowledged steps
    health: list[float] = field(default_factory=list)
    health_failures: int = 0
    retry_after: set[str] = field(default_factory=set)
    elapsed: float = 0.0
    lags: list[float] = field(default_factory=list)  # the generator's own delay past due


class Connection:
    """One keep-alive HTTP/1.1 connection; ``request`` returns (status, headers, body)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _push(plan: Plan, trial: str, token: str, step: int) -> bytes:
    body = json.dumps({"step": step, "metrics": {"loss": 1.0 / (step + 1), "accuracy": 0.5}})
    return (
        f"POST /api/v1/experiments/{EXPERIMENT}/trials/{trial}/observations HTTP/1.1\r\n"
        f"Host: {plan.host}:{plan.port}\r\nContent-Type: application/json\r\n"
        f"X-Tuner-Trial-Token: {token}\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


async def generate(plan: Plan) -> Outcome:
    out = Outcome()
    queue: asyncio.Queue[tuple[float, str, int, bytes] | None] = asyncio.Queue()

    async def worker() -> None:
        conn = Connection(plan.host, plan.port)
        while (item := await queue.get()) is not None:
            due, trial, step, raw = item
            sent = time.monotonic()
            try:
                status, headers, _ = await asyncio.wait_for(conn.request(raw), TIMEOUT)
            except TimeoutError:
                out.timeouts += 1
                conn.close()
                continue
            except (OSError, asyncio.IncompleteReadError, ValueError):
                out.errors += 1
                conn.close()
                continue
            answered = time.monotonic()
            out.latencies.append(answered - due)
            out.served.append(answered - sent)
            out.statuses[str(status)] = out.statuses.get(str(status), 0) + 1
            if 200 <= status < 300:
                out.acked.setdefault(trial, []).append(step)
            elif status == 503 and "retry-after" in headers:
                out.retry_after.add(headers["retry-after"])
        conn.close()

    async def prober(stop: asyncio.Event) -> None:
        conn = Connection(plan.host, plan.port)
        raw = f"GET /healthz HTTP/1.1\r\nHost: {plan.host}:{plan.port}\r\n\r\n".encode()
        while not stop.is_set():
            began = time.monotonic()
            try:
                status, _, _ = await asyncio.wait_for(conn.request(raw), TIMEOUT)
                if status == 200:
                    out.health.append(time.monotonic() - began)
                else:
                    out.health_failures += 1
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                out.health_failures += 1
                conn.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), HEALTH_INTERVAL)
        conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(plan.connections)]
    stop = asyncio.Event()
    probe = asyncio.create_task(prober(stop))
    total = int(plan.rate * plan.duration)
    start = time.monotonic() + 0.05
    for i in range(total):
        due = start + i / plan.rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        out.lags.append(max(0.0, time.monotonic() - due))
        trial, token = plan.trials[i % len(plan.trials)]
        step = plan.first_step + i // len(plan.trials)
        queue.put_nowait((due, trial, step, _push(plan, trial, token, step)))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    out.elapsed = time.monotonic() - start
    stop.set()
    await probe
    return out


def generator_main() -> None:
    """``load.py --generate``: read a plan (JSON) on stdin, write the outcome (JSON) on stdout."""
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    plan = Plan(**json.loads(sys.stdin.read()))
    plan.trials = [tuple(t) for t in plan.trials]  # type: ignore[misc]
    outcome = asyncio.run(generate(plan))
    result = vars(outcome) | {"retry_after": sorted(outcome.retry_after)}
    json.dump(result, sys.stdout)


# -- the driver ---------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'load.db'}"
    else:
        with postgres_schema("load") as url:
            yield url


@dataclass
class Serving:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server(db_url: str, tmp: Path, serve_args: list[str]) -> Iterator[Serving]:
    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")}
    env["PYTHONPATH"] = str(ROOT)
    log = (tmp / "serve.log").open("wb")
    command = [sys.executable, "-m", "tuner.cli", "serve", "--db", db_url, "--port", str(port)]
    command += ["--no-token"]  # loopback only; the benchmark measures reports, not API auth
    command += ["--workdir", str(tmp / "work"), "--log-level", "warning", *serve_args]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"tuner serve did not start:\n{(tmp / 'serve.log').read_text()}")
            time.sleep(0.1)
        yield Serving(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def experiment_spec(trials: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": EXPERIMENT},
        "spec": {
            "objective": {
                "type": "minimize",
                "objectiveMetricName": "loss",
                "additionalMetricNames": ["accuracy"],
            },
            "algorithm": {"algorithmName": "random"},
            "parallelTrialCount": trials,
            "maxTrialCount": trials,
            "parameters": [
                {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
            ],
        },
    }


def ask_trials(url: str, count: int) -> list[tuple[str, str]]:
    import httpx

    with httpx.Client(base_url=f"{url}/api/v1", timeout=60) as client:
        client.post("/experiments", json=experiment_spec(count)).raise_for_status()
        answer = client.post(f"/experiments/{EXPERIMENT}/suggestions", json={"count": count})
        answer.raise_for_status()
        return [(t["trial"], t["token"]) for t in answer.json()["trials"]]


def stored_steps(url: str, trials: list[tuple[str, str]]) -> dict[str, list[int]]:
    import httpx

    out: dict[str, list[int]] = {}
    with httpx.Client(base_url=f"{url}/api/v1", timeout=120) as client:
        for name, _ in trials:
            answer = client.get(f"/experiments/{EXPERIMENT}/trials/{name}/observations")
            answer.raise_for_status()
            out[name] = [p["step"] for p in answer.json()["metrics"].get("loss", [])]
    return out


def run_rate(url: str, plan: Plan) -> dict[str, Any]:
    process = subprocess.run(
        [sys.executable, __file__, "--generate"],
        input=json.dumps(vars(plan)),
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(process.stdout)
    return result


def wait_idle(url: str, seconds: float) -> None:
    """Give the server time to finish what it accepted (a timed-out push may still be queued)."""
    time.sleep(seconds)


def row(kind: str, rate: float, result: dict[str, Any], cpu: float) -> list[Any]:
    lat = result["latencies"]
    ok = sum(n for s, n in result["statuses"].items() if s.startswith("2"))
    busy = result["statuses"].get("503", 0)
    other = sum(n for s, n in result["statuses"].items() if not s.startswith(("2", "503")))
    health = result["health"]
    ms = 1000
    lag = result["lags"]
    return [
        kind,
        int(rate),
        f"{ok / result['elapsed']:.0f}",
        f"{percentile(lat, 50) * ms:.0f}" if lat else "-",
        f"{percentile(lat, 99) * ms:.0f}" if lat else "-",
        f"{percentile(result['served'], 99) * ms:.0f}" if lat else "-",
        busy,
        result["timeouts"] + result["errors"] + other,
        f"{percentile(health, 99) * ms:.0f}" if health else "-",
        result["health_failures"],
        f"{cpu / max(ok, 1) * ms:.2f}",
        f"{cpu / result['elapsed'] * 100:.0f}%",
        f"{percentile(lag, 99) * ms:.0f}" if lag else "-",
    ]


HEADER = [
    "db",
    "offered/s",
    "achieved 2xx/s",
    "p50 ms",
    "p99 ms",
    "p99 ms from sent",
    "503s",
    "timeouts+errors",
    "healthz p99 ms",
    "healthz failed",
    "server CPU ms/report",
    "server CPU (of 1 core)",
    "generator late p99 ms",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rates", default="200,500,1000,1500")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per rate")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument(
        "--connections",
        type=int,
        default=512,
        help="keep-alive connections (trials); more than the server's --max-pending-reports, "
        "so that its admission limit, not the generator, bounds what is in flight",
    )
    parser.add_argument("--quick", action="store_true", help="4 s per rate")
    parser.add_argument("--serve-arg", action="append", default=[], help="for tuner serve")
    args = parser.parse_args()
    if args.generate:
        generator_main()
        return
    duration = 4.0 if args.quick else args.duration
    rates = [float(r) for r in args.rates.split(",")]
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(f"machine: {machine()}", flush=True)
    rows: list[list[Any]] = []
    for kind in kinds:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            with database(kind, tmp) as db_url, server(db_url, tmp, args.serve_arg) as serving:
                url = serving.url
                trials = ask_trials(url, args.trials)
                acked: dict[str, list[int]] = {}
                first_step = 0
                for rate in rates:
                    host, port = url.removeprefix("http://").split(":")
                    plan = Plan(
                        host, int(port), rate, duration, args.connections, trials, first_step
                    )
                    cpu = serving.cpu_seconds()
                    result = run_rate(url, plan)
                    cpu = serving.cpu_seconds() - cpu
                    first_step += int(rate * duration) // len(trials) + 1
                    for trial, steps in result["acked"].items():
                        acked.setdefault(trial, []).extend(steps)
                    rows.append(row(kind, rate, result, cpu))
                    print(markdown_table(HEADER, rows[-1:]).splitlines()[-1], flush=True)
                    if result["retry_after"]:
                        print(f"  Retry-After values: {result['retry_after']}", flush=True)
                    wait_idle(url, TIMEOUT + 2)
                stored = stored_steps(url, trials)
                lost = sum(len(set(steps) - set(stored.get(t, []))) for t, steps in acked.items())
                dupes = sum(len(s) - len(set(s)) for s in stored.values())
                print(
                    f"{kind}: {sum(map(len, acked.values()))} acknowledged reports, "
                    f"{lost} of them not stored, {dupes} stored twice",
                    flush=True,
                )
    print()
    print(markdown_table(HEADER, rows, "l" + "r" * (len(HEADER) - 1)))


if __name__ == "__main__":
    main()
