"""Shared fixtures: databases (SQLite always, PostgreSQL when configured) and spec builders."""

from __future__ import annotations

import copy
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tuner.storage import Repository, make_engine
from tuner.templates import job_trial_template

DATA = Path(__file__).parent / "data"
POSTGRES_ENV = "TUNER_TEST_POSTGRES_URL"


def _postgres_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a private schema on the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tuner.db'}"
        return
    base = _postgres_url()
    if base is None:
        pytest.skip(f"{POSTGRES_ENV} is not set; PostgreSQL tests need a server")
    from tuner.storage.engine import normalize_url

    url = normalize_url(base)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    yield f"{url}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def repo(db_url: str) -> Iterator[Repository]:
    engine = make_engine(db_url)
    yield Repository(engine)
    engine.dispose()


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
