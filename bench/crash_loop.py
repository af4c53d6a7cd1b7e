"""SIGKILL ``tuner run`` or ``tuner serve`` again and again mid-experiment, then let it finish;
count what was lost (the numbers of RELIABILITY.md, "Crashes and restarts").

    python bench/crash_loop.py --target run --collector push --kills 10 --seed 3
    python bench/crash_loop.py --target serve --collector push --kills 6
    python bench/crash_loop.py --target run --code /path/to/other/checkout   # compare

Each trial records every start of its command in a file, so a trial run twice shows. The spec
has ``maxFailedTrialCount: 1``: one failure caused by a kill ends the experiment Failed. A kill
comes at a random point 1.5 to 4 s after the previous (re)start. Trials are fast (3 steps of
0.25 s). Prints one JSON line: trials by (state, reason), the experiment's phase, double
starts, the number of trials, and the seconds each restart took to come up (serve).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent

TRIAL = """
import os, sys, time
mode, x = sys.argv[1], float(sys.argv[2])
with open(os.environ["STARTS_FILE"], "a") as f:
    f.write(os.environ["TUNER_TRIAL"] + "\\n")
for step in range(3):
    time.sleep(0.25)
    loss = (x - 0.5) ** 2 + 0.1 * (2 - step)
    if mode == "push":
        import tuner
        tuner.report(step=step, loss=loss)
    else:
        print(f"loss={loss}", flush=True)
"""


def spec(script: Path, collector: str, trials: int, parallel: int) -> dict[str, object]:
    container = {
        "name": "training-container",
        "image": "local",
        "command": [sys.executable, str(script), collector, "${trialParameters.x}"],
    }
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "crash"},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {"algorithmName": "random"},
            "parallelTrialCount": parallel,
            "maxTrialCount": trials,
            "maxFailedTrialCount": 1,
            "metricsCollectorSpec": {
                "collector": {"kind": "Push" if collector == "push" else "StdOut"}
            },
            "parameters": [
                {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-1", "max": "2"}}
            ],
            "trialTemplate": {
                "primaryContainerName": "training-container",
                "trialParameters": [{"name": "x", "reference": "x"}],
                "trialSpec": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {
                        "template": {"spec": {"containers": [container], "restartPolicy": "Never"}}
                    },
                },
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=["run", "serve"], default="run")
    parser.add_argument("--collector", choices=["push", "stdout"], default="push")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--code", default=str(ROOT), help="the checkout to run (PYTHONPATH)")
    args = parser.parse_args()
    pick = random.Random(args.seed)
    d = Path(tempfile.mkdtemp(prefix="crash-loop-"))
    script = d / "trial.py"
    script.write_text(TRIAL)
    data = spec(script, args.collector, args.trials, args.parallel)
    (d / "spec.yaml").write_text(yaml.safe_dump(data))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")}
    env.update(PYTHONPATH=args.code, STARTS_FILE=str(d / "starts"))
    db = f"sqlite:///{d / 'tuner.db'}"
    base = [sys.executable, "-m", "tuner.cli"]
    common = ["--db", db, "--workdir", str(d / "work")]
    started = time.monotonic()
    comeback: list[float] = []
    if args.target == "run":
        command = [*base, "run", str(d / "spec.yaml"), *common, "--quiet"]
        for _ in range(args.kills):
            process = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(pick.uniform(1.5, 4.0))
            process.send_signal(signal.SIGKILL)
            process.wait()
        subprocess.run(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600
        )
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        command = [*base, "serve", *common, "--port", str(port), "--no-token"]

        def serve() -> subprocess.Popen[bytes]:
            at = time.monotonic()
            process = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        comeback.append(round(time.monotonic() - at, 1))
                        return process
                except httpx.TransportError:
                    pass
                if process.poll() is not None:
                    sys.exit(f"tuner serve ended with {process.returncode}")
                time.sleep(0.05)

        process = serve()
        httpx.post(f"{url}/api/v1/experiments", json=data, timeout=30).raise_for_status()
        for _ in range(args.kills):
            time.sleep(pick.uniform(1.5, 4.0))
            process.send_signal(signal.SIGKILL)
            process.wait()
            process = serve()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with sqlite3.connect(d / "tuner.db") as con:
                (phase,) = con.execute("select phase from experiments").fetchone()
            if phase not in ("Created", "Running"):
                break
            time.sleep(0.5)
        process.terminate()
        process.wait(30)
    with sqlite3.connect(d / "tuner.db") as con:
        rows = con.execute("select state, reason from trials").fetchall()
        (phase, reason) = con.execute("select phase, reason from experiments").fetchone()
    starts = Counter((d / "starts").read_text().split()) if (d / "starts").exists() else Counter()
    result = {
        "target": args.target,
        "collector": args.collector,
        "kills": args.kills,
        "trials": len(rows),
        "by_state": {f"{s}/{r}": n for (s, r), n in Counter(rows).items()},
        "experiment": f"{phase}/{reason}",
        "started_twice": sorted(name for name, n in starts.items() if n > 1),
        "seconds": round(time.monotonic() - started, 1),
        "serve_comeback_s": comeback,
        "dir": str(d),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
