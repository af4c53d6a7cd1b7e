"""An in-process app (TestClient) with its own database, and spec builders for API tests."""

from __future__ import annotations

import copy
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import experiment_dict
from tuner.api.app import create_app
from tuner.runners.local import LocalRunner
from tuner.settings import Settings

with warnings.catch_warnings():
    # Starlette prefers httpx2 for its TestClient and warns at import when it finds httpx.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
API_TOKEN = "api-token-for-tests"
SECRET = b"0123456789abcdef0123456789abcdef"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
V1 = "/api/v1"


def ask_tell_dict(name: str = "asktell", **spec_overrides: Any) -> dict[str, Any]:
    """An experiment without trialTemplate (driven by ask/tell), pushing its metrics."""
    data = experiment_dict(name, **spec_overrides)
    del data["spec"]["trialTemplate"]
    data["spec"]["metricsCollectorSpec"] = {"collector": {"kind": "Push"}}
    return copy.deepcopy(data)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    values: dict[str, Any] = {
        "db_url": f"sqlite:///{tmp_path / 'api.db'}",
        "api_token": API_TOKEN,
        "secret": SECRET,
        "workdir": tmp_path / "work",
        "api_url": "http://testserver",
        "runner": LocalRunner(tmp_path / "work", cwd=ROOT, base_env=env),
        "events_poll_interval": 0.05,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=AUTH) as c:
        yield c


@pytest.fixture
def submit(client: TestClient) -> Callable[..., dict[str, Any]]:
    def submit(data: dict[str, Any], **params: Any) -> dict[str, Any]:
        response = client.post(f"{V1}/experiments", json=data, params=params)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    return submit
