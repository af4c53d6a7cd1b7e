"""End to end: 500 trials of a trivial command, 8 at a time, `tuner run` vs Optuna.

The trial is the same process for both: ``<python> -S -c <script> x y lr layers optimizer``,
which prints ``loss=<x² + y²>`` and exits (about 10-20 ms of CPU, mostly interpreter start).

* ``tuner run``: the CLI as a subprocess, ``.venv/bin/tuner run spec.yaml --db sqlite:///...
  --quiet``: random algorithm, ``maxTrialCount`` N, ``parallelTrialCount`` 8, the local runner
  and the default StdOut metrics collector (Katib's ``name=value`` filter).
* ``optuna``: a script run as a subprocess with the same interpreter, ``RDBStorage`` on a SQLite
  file, ``RandomSampler``, ``study.optimize(objective, n_trials=N, n_jobs=8)``; the objective
  suggests the same 5 parameters, runs the same command with ``subprocess.run`` and parses
  ``loss=`` from its output.

Both wall times include the interpreter start and imports of the driving process. The ideal is
``single-trial time x N / 8`` (the brief's definition: 8 slots, zero overhead); since the
machine has fewer cores than slots, the CPU bound ``trial CPU time x N / cores`` is shown too.
Runs alternate (optuna, tuner) per repetition.

Run: ``.venv/bin/python bench/e2e.py [--quick]`` (500 trials, 3 repetitions; ``--quick`` 100
trials, 1 repetition).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import PARAMETERS, experiment, machine, markdown_table, mean  # noqa: E402
from tuner.templates import job_trial_template  # noqa: E402

PARALLEL = 8
PYTHON = sys.executable
TUNER = str(Path(sys.executable).parent / "tuner")
TRIAL_SCRIPT = (
    "import sys; x, y = float(sys.argv[1]), float(sys.argv[2]); print(f'loss={x * x + y * y}')"
)
NAMES = [p["name"] for p in PARAMETERS]

OPTUNA_SCRIPT = """
import re, subprocess, sys
import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)
PYTHON, SCRIPT, URL = sys.argv[1:4]
N, JOBS = int(sys.argv[4]), int(sys.argv[5])
LOSS = re.compile(r"loss=([-+0-9.eE]+)")


def objective(trial):
    args = [
        str(trial.suggest_float("x", -5, 5)),
        str(trial.suggest_float("y", -5, 5)),
        str(trial.suggest_float("lr", 0.0001, 0.1, log=True)),
        str(trial.suggest_int("layers", 1, 8)),
        trial.suggest_categorical("optimizer", ["adam", "sgd", "rmsprop"]),
    ]
    out = subprocess.run([PYTHON, "-S", "-c", SCRIPT, *args], capture_output=True, text=True)
    match = LOSS.search(out.stdout)
    if out.returncode != 0 or match is None:
        raise RuntimeError(out.stderr)
    return float(match.group(1))


study = optuna.create_study(
    storage=optuna.storages.RDBStorage(URL),
    sampler=optuna.samplers.RandomSampler(),
    study_name="e2e",
)
study.optimize(objective, n_trials=N, n_jobs=JOBS)
print(sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials))
"""


def trial_command() -> list[str]:
    return [PYTHON, "-S", "-c", TRIAL_SCRIPT, *(f"${{trialParameters.{n}}}" for n in NAMES)]


def spec(n: int) -> dict[str, Any]:
    template = job_trial_template(trial_command(), NAMES)
    return experiment("e2e", "random", max_trials=n, parallel=PARALLEL, trial_template=template)


def single_trial(repeats: int = 30) -> tuple[float, float]:
    """Wall and CPU seconds of one trial process, run alone (mean over ``repeats``)."""
    args = [PYTHON, "-S", "-c", TRIAL_SCRIPT, "1.5", "-2.0", "0.01", "3", "adam"]
    for _ in range(3):
        subprocess.run(args, capture_output=True, check=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True)
        walls.append(time.perf_counter() - t0)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / repeats
    return mean(walls), cpu


def run_tuner(d: Path, n: int, k: int) -> tuple[float, int]:
    spec_path = d / f"spec-{k}.yaml"
    spec_path.write_text(json.dumps(spec(n)))  # JSON is YAML
    db = d / f"tuner-{k}.db"
    cmd = [TUNER, "run", str(spec_path), "--db", f"sqlite:///{db}", "--quiet"]
    cmd += ["--workdir", str(d / f"work-{k}")]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=d)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"tuner run failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    with sqlite3.connect(db) as conn:
        (done,) = conn.execute("SELECT count(*) FROM trials WHERE state = 'Succeeded'").fetchone()
    return wall, int(done)


def run_optuna(d: Path, n: int, k: int) -> tuple[float, int]:
    script = d / "optuna_e2e.py"
    script.write_text(OPTUNA_SCRIPT)
    url = f"sqlite:///{d / f'optuna-{k}.db'}"
    cmd = [PYTHON, str(script), PYTHON, TRIAL_SCRIPT, url, str(n), str(PARALLEL)]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=d)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"optuna script failed ({out.returncode}):\n{out.stderr}")
    return wall, int(out.stdout.strip().splitlines()[-1])


def startup(d: Path) -> tuple[float, float]:
    """Seconds to start each driver without running trials: `tuner validate`, `import optuna`."""
    spec_path = d / "spec-startup.yaml"
    spec_path.write_text(json.dumps(spec(PARALLEL)))
    walls: dict[str, list[float]] = {"tuner": [], "optuna": []}
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([TUNER, "validate", str(spec_path)], capture_output=True, check=True)
        walls["tuner"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([PYTHON, "-c", "import optuna"], capture_output=True, check=True)
        walls["optuna"].append(time.perf_counter() - t0)
    return min(walls["tuner"]), min(walls["optuna"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 trials, 1 repetition")
    parser.add_argument("--trials", type=int, help="trials per run (overrides --quick)")
    parser.add_argument("--repeat", type=int, help="repetitions (default 3; --quick 1)")
    args = parser.parse_args()
    n = args.trials or (100 if args.quick else 500)
    repeat = args.repeat or (1 if args.quick else 3)
    print(machine())
    single_wall, single_cpu = single_trial()
    cores = os.cpu_count() or 1
    ideal = single_wall * n / PARALLEL
    cpu_bound = single_cpu * n / cores
    walls: dict[str, list[float]] = {"optuna": [], "tuner": []}
    with tempfile.TemporaryDirectory(prefix="tuner-bench-") as tmp:
        d = Path(tmp)
        tuner_start, optuna_start = startup(d)
        for k in range(repeat):
            wall, done = run_optuna(d, n, k)
            print(f"  optuna run {k + 1}: {wall:.2f} s, {done} trials complete", file=sys.stderr)
            assert done == n, done
            walls["optuna"].append(wall)
            wall, done = run_tuner(d, n, k)
            print(f"  tuner  run {k + 1}: {wall:.2f} s, {done} trials succeeded", file=sys.stderr)
            assert done == n, done
            walls["tuner"].append(wall)
    optuna_wall = mean(walls["optuna"])
    print(
        f"\n{n} trials, parallelism {PARALLEL}, {repeat} run(s) each; single trial "
        f"{single_wall * 1000:.1f} ms wall, {single_cpu * 1000:.1f} ms CPU (n=30)"
    )
    rows = []
    for label, start in (
        ("optuna (RDB SQLite, n_jobs=8)", optuna_start),
        ("tuner run", tuner_start),
    ):
        key = "optuna" if label.startswith("optuna") else "tuner"
        w = mean(walls[key])
        rows.append(
            [
                label,
                " / ".join(f"{x:.2f}" for x in walls[key]),
                f"{w:.2f}",
                f"{w / n * 1000:.1f}",
                f"{start:.2f}",
                f"{w / ideal:.2f}x",
                f"{w / cpu_bound:.2f}x",
                f"{w / optuna_wall:.2f}x",
            ]
        )
    rows.append([f"ideal (single x {n} / {PARALLEL})", "", f"{ideal:.2f}", "", "", "1.00x", "", ""])
    rows.append(
        [
            f"CPU bound (trial CPU x {n} / {cores} cores)",
            "",
            f"{cpu_bound:.2f}",
            "",
            "",
            "",
            "1.00x",
            "",
        ]
    )
    print(
        markdown_table(
            [
                "driver",
                "wall per run (s)",
                "mean wall (s)",
                "ms per trial",
                "driver start (s)",
                "vs ideal",
                "vs CPU bound",
                "vs optuna",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
