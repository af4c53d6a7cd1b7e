"""Engines and schema set-up. Nothing here runs at import time."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from tuner.storage.tables import Base

DEFAULT_DB_ENV = "TUNER_DATABASE_URL"


def default_url() -> str:
    """``TUNER_DATABASE_URL``, else a SQLite file in the current directory."""
    return os.environ.get(DEFAULT_DB_ENV) or f"sqlite:///{Path.cwd() / 'tuner.db'}"


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and pick the psycopg 3 driver for it."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str | None = None, *, create_schema: bool = True) -> Engine:
    """An engine for ``url`` (default: :func:`default_url`), with the schema in place.

    SQLite gets WAL mode, a busy timeout and foreign keys, so that several processes
    (the service, ``tuner`` CLI readers) can share one file.
    """
    url = normalize_url(url or default_url())
    parsed = make_url(url)
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if create_schema:
        Base.metadata.create_all(engine)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
