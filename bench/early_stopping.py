"""Early stopping on a real learning curve: no stopping, medianstop, ASHA, Hyperband.

Each strategy tunes the digits MLP of ``examples/digits_mlp.py`` (trained epoch by epoch, one
``epoch=N accuracy=... loss=...`` line per epoch) with the same trial budget, through the real
controller and the local runner on a temporary SQLite database:

* ``none``: random search, every trial runs all ``EPOCHS`` epochs;
* ``medianstop`` and ``asha``: the same random search with the early-stopping rule;
* ``hyperband``: the ``hyperband`` suggestion algorithm with ``resource_name: epochs``,
  ``r_l = EPOCHS``, ``eta = 3``: trials get 1, 4 or 12 epochs and only the best are promoted.
  Katib requires ``parallelTrialCount >= eta**s_max`` (9 here), so it runs 9 trials at once
  where the others run 2; compare epochs more than seconds for it.

Each strategy runs once per seed (the algorithm's ``random_state`` and the script's ``--seed``,
which fixes the data split and the weight initialisation). The objective is the accuracy of the
last reported epoch (metric strategy ``latest``). Reported per strategy, summed or averaged over
the seeds: epochs trained (sum of the trials' steps), wall time, the best final accuracy (mean
over seeds of each run's best trial) and the compute saved against ``none``.

Run: ``.venv/bin/python bench/early_stopping.py`` (about 3 minutes on 2 cores). Not part of
``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tuner.controller import ExperimentController  # noqa: E402
from tuner.runners.local import LocalRunner  # noqa: E402
from tuner.spec import load_spec  # noqa: E402
from tuner.storage import Repository, make_engine  # noqa: E402
from tuner.templates import job_trial_template  # noqa: E402
from tuner.trials import TrialState  # noqa: E402

EPOCHS = 12
TRIALS = 16
PARALLEL = 2
SEEDS = (1, 2, 3)
STRATEGIES = ("none", "medianstop", "asha", "hyperband")

SPACE: list[dict[str, Any]] = [
    {
        "name": "lr",
        "parameterType": "double",
        "feasibleSpace": {"min": "0.0005", "max": "0.1", "distribution": "logUniform"},
    },
    {"name": "hidden", "parameterType": "int", "feasibleSpace": {"min": "8", "max": "64"}},
    {
        "name": "optimizer",
        "parameterType": "categorical",
        "feasibleSpace": {"list": ["adam", "sgd"]},
    },
]
RULES: dict[str, dict[str, str]] = {
    "medianstop": {"min_trials_required": "3", "start_step": "4"},
    "asha": {"min_resource": "1", "reduction_factor": "3"},
}


def experiment(strategy: str, seed: int) -> dict[str, Any]:
    parameters = list(SPACE)
    names = ["lr", "hidden", "optimizer"]
    command = [
        "python3",
        "examples/digits_mlp.py",
        "--lr=${trialParameters.lr}",
        "--hidden=${trialParameters.hidden}",
        "--optimizer=${trialParameters.optimizer}",
        f"--seed={seed}",
    ]
    parallel = PARALLEL
    algorithm: dict[str, Any] = {
        "algorithmName": "random",
        "algorithmSettings": [{"name": "random_state", "value": str(seed)}],
    }
    if strategy == "hyperband":
        parameters.append(
            {
                "name": "epochs",
                "parameterType": "int",
                "feasibleSpace": {"min": "1", "max": str(EPOCHS)},
            }
        )
        names.append("epochs")
        command.append("--epochs=${trialParameters.epochs}")
        settings = {
            "resource_name": "epochs",
            "r_l": str(EPOCHS),
            "eta": "3",
            "random_state": str(seed),
        }
        algorithm = {
            "algorithmName": "hyperband",
            "algorithmSettings": [{"name": k, "value": v} for k, v in settings.items()],
        }
        parallel = 9  # Katib's minimum for r_l=12, eta=3: eta**s_max = 3**2
    else:
        command.append(f"--epochs={EPOCHS}")
    spec: dict[str, Any] = {
        "objective": {
            "type": "maximize",
            "objectiveMetricName": "accuracy",
            "additionalMetricNames": ["loss"],
            "metricStrategies": [
                {"name": "accuracy", "value": "latest"},
                {"name": "loss", "value": "latest"},
            ],
        },
        "algorithm": algorithm,
        "parallelTrialCount": parallel,
        "maxTrialCount": TRIALS,
        "maxFailedTrialCount": 3,
        "parameters": parameters,
        "trialTemplate": job_trial_template(
            command, names, image="python:3.11-slim", container="training-container"
        ),
    }
    if strategy in RULES:
        spec["earlyStopping"] = {
            "algorithmName": strategy,
            "algorithmSettings": [{"name": k, "value": v} for k, v in RULES[strategy].items()],
        }
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": f"bench-{strategy}-{seed}"},
        "spec": spec,
    }


@dataclass
class Run:
    strategy: str
    seed: int
    trials: int
    epochs: int
    early_stopped: int
    seconds: float
    best: float
    best_epochs: int
    phase: str


def run_one(strategy: str, seed: int, workdir: Path) -> Run:
    repo = Repository(make_engine(f"sqlite:///{workdir / f'{strategy}-{seed}.db'}"))
    record = repo.create_experiment(load_spec(experiment(strategy, seed)))
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    runner = LocalRunner(workdir / "trials", cwd=ROOT, base_env=env)
    controller = ExperimentController(repo, record, runner)
    start = time.perf_counter()
    final = asyncio.run(controller.run())
    seconds = time.perf_counter() - start
    trials = repo.trials(record.id)
    best = repo.best_trial(final)
    return Run(
        strategy=strategy,
        seed=seed,
        trials=len(trials),
        epochs=sum(t.steps for t in trials),
        early_stopped=sum(t.state is TrialState.EARLY_STOPPED for t in trials),
        seconds=seconds,
        best=best.objective if best is not None and best.objective is not None else float("nan"),
        best_epochs=best.steps if best is not None else 0,
        phase=f"{final.phase}/{final.reason}",
    )


def table(runs: list[Run]) -> list[str]:
    baseline = sum(r.epochs for r in runs if r.strategy == "none")
    base_time = sum(r.seconds for r in runs if r.strategy == "none")
    lines = [
        "| strategy | trials | early-stopped | epochs trained | compute saved vs none "
        "| wall time (s) | time vs none | best final accuracy (mean ± sd over seeds) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for strategy in STRATEGIES:
        rs = [r for r in runs if r.strategy == strategy]
        epochs = sum(r.epochs for r in rs)
        seconds = sum(r.seconds for r in rs)
        bests = [r.best for r in rs]
        sd = statistics.stdev(bests) if len(bests) > 1 else 0.0
        lines.append(
            f"| {strategy} | {sum(r.trials for r in rs)} | {sum(r.early_stopped for r in rs)} "
            f"| {epochs} | {1 - epochs / baseline:.0%} | {seconds:.1f} "
            f"| {seconds / base_time:.2f}x "
            f"| {statistics.mean(bests):.4f} ± {sd:.4f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="number of seeds (1-3)")
    args = parser.parse_args()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="tuner-bench-") as tmp:
        for seed in SEEDS[: args.seeds]:
            for strategy in STRATEGIES:
                r = run_one(strategy, seed, Path(tmp))
                runs.append(r)
                print(
                    f"seed={seed} {strategy:<10} trials={r.trials} epochs={r.epochs} "
                    f"stopped={r.early_stopped} best={r.best:.4f} ({r.best_epochs} epochs) "
                    f"{r.seconds:.1f}s {r.phase}",
                    flush=True,
                )
    print()
    print(
        f"{TRIALS} trials per run, up to {EPOCHS} epochs per trial, "
        f"seeds {', '.join(map(str, SEEDS[: args.seeds]))}, parallelTrialCount {PARALLEL} "
        "(hyperband: 9)"
    )
    print("\n".join(table(runs)))


if __name__ == "__main__":
    main()
