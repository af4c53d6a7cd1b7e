"""What the reliability tests share: a fast trial that records every start, its spec, and the
ways to run ``tuner run`` / read the outcome (real processes, a real SQLite database)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import ROOT, cli_env, experiment_dict
from tuner.storage import Repository
from tuner.templates import job_trial_template
from tuner.trials import Trial

STEPS = 3

TRIAL = """
import os, sys, time
mode, x = sys.argv[1], float(sys.argv[2])
with open(os.environ["STARTS_FILE"], "a") as f:  # one line per start of this command
    f.write(os.environ["TUNER_TRIAL"] + "\\n")
if os.environ.get("GRANDCHILD_DIR"):  # leaves a child behind, as a careless script does
    import subprocess
    child = subprocess.Popen(["sleep", "300"])
    with open(os.path.join(os.environ["GRANDCHILD_DIR"], os.environ["TUNER_TRIAL"]), "w") as f:
        f.write(str(child.pid))
pause = float(os.environ.get("TRIAL_PAUSE", "0.2"))
gate = os.environ.get("GATE_FILE")  # held at its first step until the test creates this file
for step in range(STEPS):
    deadline = time.monotonic() + 120
    while step == 1 and gate and not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(pause)
    loss = (x - 0.5) ** 2 + 0.1 * (STEPS - 1 - step)
    if mode == "push":
        import tuner
        tuner.report(step=step, loss=loss)
    else:
        print(f"loss={loss}", flush=True)
""".replace("STEPS", str(STEPS))


def write_spec(
    tmp_path: Path, *, push: bool, max_trials: int, parallel: int, name: str = "rel"
) -> Path:
    """A spec of fast trials (``STEPS`` reports each) with ``maxFailedTrialCount: 1``: a single
    failure ends it Failed, so a loss caused by a kill would show."""
    script = tmp_path / "trial.py"
    script.write_text(TRIAL)
    data: dict[str, Any] = experiment_dict(
        name,
        maxTrialCount=max_trials,
        parallelTrialCount=parallel,
        maxFailedTrialCount=1,
        objective={"type": "minimize", "objectiveMetricName": "loss"},
        metricsCollectorSpec={"collector": {"kind": "Push" if push else "StdOut"}},
        parameters=[
            {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-1", "max": "2"}}
        ],
        trialTemplate=job_trial_template(
            [
                sys.executable,
                str(script),
                "push" if push else "stdout",
                "${trialParameters.x}",
            ],
            ["x"],
        ),
    )
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def trial_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = cli_env()
    env["STARTS_FILE"] = str(tmp_path / "starts")
    env.update(extra)
    return env


def start_run(
    spec: Path, db: str, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``tuner run`` as a process (quiet, its own workdir under ``tmp_path``)."""
    argv = ["run", str(spec), "--db", db, "--quiet", "--workdir", str(tmp_path / "work"), *args]
    return subprocess.Popen(
        [sys.executable, "-m", "tuner.cli", *argv],
        cwd=ROOT,
        env=env or trial_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def starts(tmp_path: Path) -> Counter[str]:
    """How many times each trial's command started."""
    path = tmp_path / "starts"
    lines = path.read_text().split() if path.exists() else []
    return Counter(lines)


def trials_of(repo: Repository, name: str = "rel") -> list[Trial]:
    try:
        record = repo.get_experiment("default", name)
    except Exception:  # not created yet
        return []
    return repo.trials(record.id)


def assert_nothing_lost(repo: Repository, tmp_path: Path, max_trials: int) -> None:
    """Every trial Succeeded with each of its ``STEPS`` observations stored once, started
    once, and no more trials than ``maxTrialCount``."""
    record = repo.get_experiment("default", "rel")
    trials = repo.trials(record.id)
    assert len(trials) == max_trials
    assert len({t.name for t in trials}) == len(trials)
    not_succeeded = [(t.name, t.state.value, t.reason, t.message) for t in trials
                     if t.state.value != "Succeeded"]  # fmt: skip
    assert not_succeeded == []
    for t in trials:
        steps = [o.step for o in repo.observations(record.id, t.name, "loss")]
        assert steps == list(range(STEPS)), (t.name, steps)
    counted = starts(tmp_path)
    assert set(counted) == {t.name for t in trials}
    assert max(counted.values()) == 1, counted
    assert record.phase.value == "Succeeded", record.message
