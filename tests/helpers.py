"""Builders that tests share: specs, settings, and running an experiment in-process.

Fixtures stay in the ``conftest.py`` files; everything a test imports by name lives here.
"""

from __future__ import annotations

import asyncio
import copy
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml

from tuner.controller import ExperimentController
from tuner.runners.local import LocalRunner
from tuner.settings import Settings
from tuner.storage import ExperimentRecord, Repository
from tuner.templates import job_trial_template

with warnings.catch_warnings():
    # Starlette prefers httpx2 for its TestClient and warns at import when it finds httpx.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

__all__ = ["TestClient"]  # re-exported for the API tests' annotations

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"

API_TOKEN = "api-token-for-tests"
SECRET = b"0123456789abcdef0123456789abcdef"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
V1 = "/api/v1"


def experiment_dict(name: str = "exp", **spec_overrides: Any) -> dict[str, Any]:
    """A small valid Katib Experiment whose trial runs tests/data/quadratic.py locally."""
    spec: dict[str, Any] = {
        "objective": {
            "type": "minimize",
            "objectiveMetricName": "loss",
            "additionalMetricNames": ["accuracy"],
        },
        "algorithm": {
            "algorithmName": "random",
            "algorithmSettings": [{"name": "random_state", "value": "3"}],
        },
        "parallelTrialCount": 2,
        "maxTrialCount": 4,
        "maxFailedTrialCount": 2,
        "parameters": [
            {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-2", "max": "2"}},
            {"name": "n", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "3"}},
        ],
        "trialTemplate": job_trial_template(
            [
                sys.executable,
                str(DATA / "quadratic.py"),
                "--x=${trialParameters.x}",
                "--steps=${trialParameters.n}",
            ],
            ["x", "n"],
        ),
    }
    for key, value in spec_overrides.items():
        spec[key] = copy.deepcopy(value)
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def ask_tell_dict(name: str = "asktell", **spec_overrides: Any) -> dict[str, Any]:
    """An experiment without trialTemplate (driven by ask/tell), pushing its metrics."""
    data = experiment_dict(name, **spec_overrides)
    del data["spec"]["trialTemplate"]
    data["spec"]["metricsCollectorSpec"] = {"collector": {"kind": "Push"}}
    return copy.deepcopy(data)


def command(data: dict[str, Any]) -> list[str]:
    """The trial command of a spec built here (a list to change in place)."""
    container = data["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    result: list[str] = container["command"]
    return result


def trial_env() -> dict[str, str]:
    """This environment, with `python3` resolving to this interpreter (as in a virtualenv)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def runner(tmp_path: Path) -> LocalRunner:
    return LocalRunner(tmp_path / "work", cwd=ROOT, base_env=trial_env())


def run(repo: Repository, record: ExperimentRecord, tmp_path: Path, **kw: Any) -> ExperimentRecord:
    """Drive an experiment to its end in-process with the local runner (bounded)."""
    controller = ExperimentController(repo, record, runner(tmp_path), **kw)
    return asyncio.run(asyncio.wait_for(controller.run(), 90))


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Service settings on a private SQLite database and workdir, with the test API token."""
    values: dict[str, Any] = {
        "db_url": f"sqlite:///{tmp_path / 'api.db'}",
        "api_token": API_TOKEN,
        "secret": SECRET,
        "workdir": tmp_path / "work",
        "api_url": "http://testserver",
        "runner": runner(tmp_path),
        "events_poll_interval": 0.05,
    }
    values.update(overrides)
    return Settings(**values)


def push_spec(name: str) -> str:
    """A YAML spec whose trials run tests/data/push_trial.py and push with tuner.report."""
    return yaml.safe_dump(
        {
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Experiment",
            "metadata": {"name": name},
            "spec": {
                "objective": {
                    "type": "minimize",
                    "objectiveMetricName": "loss",
                    "additionalMetricNames": ["accuracy"],
                },
                "algorithm": {"algorithmName": "grid"},
                "parallelTrialCount": 3,
                "maxTrialCount": 6,
                "maxFailedTrialCount": 0,
                "metricsCollectorSpec": {"collector": {"kind": "Push"}},
                "parameters": [
                    {
                        "name": "x",
                        "parameterType": "double",
                        "feasibleSpace": {"min": "-0.5", "max": "2.0", "step": "0.5"},
                    }
                ],
                "trialTemplate": job_trial_template(
                    [sys.executable, str(DATA / "push_trial.py"), "--x=${trialParameters.x}"],
                    ["x"],
                ),
            },
        },
        sort_keys=False,
    )


def push_stopping_spec(name: str, *, steps: int) -> dict[str, Any]:
    """:func:`push_spec` with eight points, four of them hopeless, and the median rule."""
    data: dict[str, Any] = yaml.safe_load(push_spec(name))
    spec = data["spec"]
    spec["parallelTrialCount"] = 2
    spec["maxTrialCount"] = 8
    spec["parameters"] = [
        {
            "name": "x",
            "parameterType": "discrete",
            "feasibleSpace": {"list": ["0.5", "0.6", "0.4", "0.55", "4", "-4", "5", "-5"]},
        }
    ]
    spec["earlyStopping"] = {
        "algorithmName": "medianstop",
        "algorithmSettings": [
            {"name": "min_trials_required", "value": "2"},
            {"name": "start_step", "value": "1"},
        ],
    }
    container = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"].append(f"--steps={steps}")
    return data


def cli_env() -> dict[str, str]:
    """The environment of a ``tuner`` child process: this checkout's code and this venv first,
    and none of the caller's ``TUNER_*`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")}
    env["PYTHONPATH"] = str(ROOT)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_tuner(
    *args: str, cwd: Path = ROOT, timeout: float = 120, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """``tuner ARGS`` as a process, run in ``cwd``, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "tuner.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        **kw,
    )
