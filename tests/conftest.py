"""Shared fixtures: databases (SQLite always, PostgreSQL when configured) and spec builders."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.ui import digits
from tuner.storage import Repository, make_engine

DATA = Path(__file__).parent / "data"
POSTGRES_ENV = "TUNER_TEST_POSTGRES_URL"


def _postgres_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


@pytest.fixture(autouse=True, scope="session")
def private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``XDG_STATE_HOME`` in a temporary directory, for this process and the ``tuner``
    processes it starts: the server secret and default API token of the tests never touch the
    user's own (:func:`tuner.tokens.state_dir`)."""
    path = tmp_path_factory.mktemp("xdg-state")
    with pytest.MonkeyPatch.context() as m:
        m.setenv("XDG_STATE_HOME", str(path))
        yield path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, the digits test first: the longest file, started last, would leave
    one worker running it alone at the end (in one process it gets a head start instead)."""
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: Path(item.path) != digits.TEST_FILE)  # stable: else as is


@pytest.fixture(autouse=True, scope="session")
def digits_head_start(
    request: pytest.FixtureRequest,
    private_state_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[digits.HeadStart | None]:
    """The digits experiment of tests/ui/test_digits.py, started in the background when the
    session begins, if the session runs that test (see tests/ui/digits.py for why)."""
    if not digits.wanted(request.session):
        yield None
        return
    head_start = digits.HeadStart(tmp_path_factory.mktemp("digits"))
    yield head_start
    head_start.stop()


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
