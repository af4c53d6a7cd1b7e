"""Engines and schema set-up. Nothing here runs at import time.

The schema is owned by Alembic migrations (``tuner/storage/migrations``), applied when an
engine is made and by ``tuner db upgrade``. Concurrent starters (several replicas, a CLI reader
next to a server) take a lock first: a PostgreSQL advisory lock, or a file lock beside a SQLite
database.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

from tuner.errors import TunerError
from tuner.names import ENV_DATABASE_URL

MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 0x7475_6E72  # "tunr"

DEFAULT_DB_ENV = ENV_DATABASE_URL


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
        migrate(engine)
    return engine


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest). Safe to call concurrently."""
    from alembic import command

    with _migration_lock(engine), engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        from alembic.runtime.migration import MigrationContext

        unversioned = MigrationContext.configure(connection).get_current_revision() is None
        if unversioned and inspect(connection).has_table("experiments"):
            raise TunerError(
                f"the database {engine.url.render_as_string(hide_password=True)} has tuner "
                "tables but no migration record (it predates migrations); move it away and "
                "start a new one"
            )
        command.upgrade(_alembic_config(connection), revision)


def include_object(dialect: str) -> Any:
    """An Alembic ``include_object`` hook that skips objects declared for other dialects.

    (Autogenerate ignores ``ddl_if``; our PostgreSQL-only index must not look missing on SQLite.)
    """

    def include(obj: Any, _name: Any, _type: Any, _reflected: Any, _compare_to: Any) -> bool:
        condition = getattr(obj, "_ddl_if", None)
        return condition is None or condition.dialect in (None, dialect)

    return include


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return MigrationContext.configure(connection).get_current_revision()


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).expanduser().resolve().with_suffix(".migrate.lock")
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
