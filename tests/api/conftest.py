"""Fixtures of the API tests: an in-process app (TestClient) with its own database."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import AUTH, V1, make_settings
from tuner.api.app import create_app
from tuner.settings import Settings

with warnings.catch_warnings():
    # Starlette prefers httpx2 for its TestClient and warns at import when it finds httpx.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


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
