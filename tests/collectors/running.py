"""Running a spec through ``tuner run`` (a real process) and reading what it stored."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import experiment_dict, run_tuner
from tuner.storage import Repository, make_engine
from tuner.templates import job_trial_template
from tuner.trials import Observation, Trial

DATA = Path(__file__).parent / "data"


def collector_spec(
    name: str,
    script: str,
    args: list[str],
    collector: dict[str, Any],
    objective: dict[str, Any],
    **overrides: Any,
) -> dict[str, Any]:
    """A spec of one double parameter ``x`` whose trial runs ``data/<script>``."""
    spec = experiment_dict(
        name,
        objective=objective,
        metricsCollectorSpec=collector,
        parameters=[
            {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
        ],
        trialTemplate=job_trial_template(
            [sys.executable, str(DATA / script), *args, "--x=${trialParameters.x}"], ["x"]
        ),
        parallelTrialCount=1,
        maxTrialCount=2,
        maxFailedTrialCount=1,
    )
    spec["spec"].update(overrides)
    return spec


def tuner_run(tmp_path: Path, spec: dict[str, Any], timeout: float = 120) -> tuple[int, str]:
    """``tuner run`` of ``spec`` in ``tmp_path``: its exit code and its output."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = run_tuner(
        "run",
        str(path),
        "--db",
        str(tmp_path / "runs.db"),
        "--quiet",
        "--workdir",
        str(tmp_path / "work"),
        cwd=tmp_path,
        timeout=timeout,
    )
    return result.returncode, result.stdout + result.stderr


def stored(tmp_path: Path, name: str) -> list[tuple[Trial, list[Observation]]]:
    """Every trial of experiment ``name`` with its observations."""
    repo = Repository(make_engine(str(tmp_path / "runs.db"), must_exist=True))
    try:
        record = repo.get_experiment("default", name)
        return [(t, repo.observations(record.id, t.name)) for t in repo.trials(record.id)]
    finally:
        repo.engine.dispose()
