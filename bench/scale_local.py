"""The local rows of ``bench/scale.py``: ``tuner run`` against the floor, and controller CPU per
trial across a long experiment.

* **trivial trials vs xargs**: ``tuner run`` of N trials of ``python3 -S -c ...`` (prints
  ``loss=...``) at parallelism 8, local runner, StdOut collector, against the same N commands
  run by ``xargs -P 8`` with nothing around them (the floor). Alternating, ``repeat`` times.
* **controller CPU per trial**: ``tuner run`` of N trials with ``medianstop`` (defaults) whose
  command prints 5 ``loss=`` lines; the controller process's own CPU time (``/proc/PID/stat``,
  its trials' processes not counted) is sampled with the count of finished trials, and the CPU
  per trial over the first 1,000 finished (after the first 100) is set beside the last 1,000.

Each runs ``python -m tuner.cli`` with ``PYTHONPATH`` set to a source tree, so a baseline tree
(``--baseline``) is measured the same way.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import experiment  # noqa: E402
from tuner.templates import job_trial_template  # noqa: E402

PARALLEL = 8
PYTHON = sys.executable
TRIVIAL = "import sys; x, y = float(sys.argv[1]), float(sys.argv[2]); print(f'loss={x*x+y*y}')"
CURVE = (
    "import sys; x, y = float(sys.argv[1]), float(sys.argv[2])\n"
    "for i in range(5): print(f'loss={x*x+y*y+1/(i+1)}')"
)
NAMES = ["x", "y", "lr", "layers", "optimizer"]
TICK = os.sysconf("SC_CLK_TCK")


def spec(script: str, n: int, stopping: bool) -> dict[str, Any]:
    command = [PYTHON, "-S", "-c", script, *(f"${{trialParameters.{p}}}" for p in NAMES)]
    data = experiment(
        "scale",
        "random",
        max_trials=n,
        parallel=PARALLEL,
        trial_template=job_trial_template(command, NAMES),
    )
    if stopping:
        data["spec"]["earlyStopping"] = {"algorithmName": "medianstop"}
    return data


def tuner_run(source: Path, d: Path, data: dict[str, Any], tag: str) -> subprocess.Popen[bytes]:
    path = d / f"{tag}.yaml"
    path.write_text(json.dumps(data))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")}
    env["PYTHONPATH"] = str(source)
    argv = [PYTHON, "-m", "tuner.cli", "run", str(path), "--db", f"sqlite:///{d / tag}.db"]
    argv += ["--quiet", "--workdir", str(d / f"work-{tag}")]
    return subprocess.Popen(argv, cwd=d, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def xargs_floor(d: Path, n: int) -> float:
    args = d / "args"
    args.write_text("1.5 -2.0 0.01 3 adam\n" * n)
    t0 = time.perf_counter()
    with args.open() as stdin:
        subprocess.run(
            ["xargs", "-P", str(PARALLEL), "-n", "5", PYTHON, "-S", "-c", TRIVIAL],
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            check=True,
        )
    return time.perf_counter() - t0


def trivial_vs_xargs(source: Path, n: int, repeat: int) -> dict[str, list[float]]:
    walls: dict[str, list[float]] = {"xargs": [], "tuner": []}
    with tempfile.TemporaryDirectory(prefix="tuner-scale-local-") as tmp:
        d = Path(tmp)
        for k in range(repeat):
            walls["xargs"].append(xargs_floor(d, n))
            t0 = time.perf_counter()
            process = tuner_run(source, d, spec(TRIVIAL, n, False), f"trivial-{k}")
            _, err = process.communicate()
            walls["tuner"].append(time.perf_counter() - t0)
            if process.returncode != 0:
                raise RuntimeError(f"tuner run failed: {err.decode()[-2000:]}")
            print(
                f"  local {k + 1}: xargs {walls['xargs'][-1]:.2f} s, tuner "
                f"{walls['tuner'][-1]:.2f} s",
                file=sys.stderr,
            )
    return walls


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def controller_cpu(source: Path, n: int) -> dict[str, float]:
    """CPU seconds per trial of the controller over its first and last 1,000 finished trials."""
    window = min(1000, max(1, (n - 100) // 2))
    samples: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory(prefix="tuner-scale-cpu-") as tmp:
        d = Path(tmp)
        process = tuner_run(source, d, spec(CURVE, n, True), "curve")
        db = d / "curve.db"
        t0 = time.perf_counter()
        while process.poll() is None:
            cpu = cpu_seconds(process.pid)
            done = _finished(db)
            if cpu is not None:
                samples.append((done, cpu))
            time.sleep(0.25)
        wall = time.perf_counter() - t0
        if process.returncode != 0:
            raise RuntimeError(f"tuner run failed: {process.stderr.read().decode()[-2000:]}")
        stopped = _count(db, "state = 'EarlyStopped'")
    first = _per_trial(samples, 100, 100 + window)
    last = _per_trial(samples, n - window - 8, n - 8)
    return {
        "trials": n,
        "window": window,
        "first_ms": first * 1000,
        "last_ms": last * 1000,
        "wall_s": wall,
        "early_stopped": stopped,
    }


def _per_trial(samples: list[tuple[int, float]], start: int, end: int) -> float:
    """CPU seconds per finished trial between the samples at ``start`` and ``end`` finished."""
    a = next((s for s in samples if s[0] >= start), samples[-1])
    b = next((s for s in samples if s[0] >= end), samples[-1])
    return (b[1] - a[1]) / max(1, b[0] - a[0])


def _finished(db: Path) -> int:
    return _count(db, "state NOT IN ('Created', 'Running')")


def _count(db: Path, where: str) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return int(conn.execute(f"SELECT count(*) FROM trials WHERE {where}").fetchone()[0])
    except sqlite3.Error:
        return 0


if __name__ == "__main__":
    print(trivial_vs_xargs(ROOT, int(sys.argv[1]), 1))
