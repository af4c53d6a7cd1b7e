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
from typing import IO, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tuner.errors import InvalidRequest, NotFound, TunerError
from tuner.names import ENV_DATABASE_URL

MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 0x7475_6E72  # "tunr"

DEFAULT_DB_ENV = ENV_DATABASE_URL


def default_url() -> str:
    """``TUNER_DATABASE_URL``, else a SQLite file in the current directory."""
    return os.environ.get(DEFAULT_DB_ENV) or f"sqlite:///{Path.cwd() / 'tuner.db'}"


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and pick the psycopg 3 driver for it; a plain path (no
    ``scheme://``) is a SQLite file."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def make_engine(
    url: str | None = None, *, create_schema: bool = True, must_exist: bool = False
) -> Engine:
    """An engine for ``url`` (default: :func:`default_url`), with the schema in place.

    SQLite gets WAL mode, a busy timeout and foreign keys, so that several processes
    (the service, ``tuner`` CLI readers) can share one file. A plain path is a SQLite file.

    Args:
        must_exist: a SQLite file that does not exist raises :class:`NotFound` instead of
            being created (for commands that only read).

    Raises:
        InvalidRequest: ``url`` is not a database URL.
    """
    url = normalize_url(url or default_url())
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise InvalidRequest(f"not a database URL or path: {url}") from e
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        database = parsed.database
        if database and database != ":memory:":
            path = Path(database).expanduser().resolve()
            if must_exist and not path.is_file():
                raise NotFound(f"no database at {path} (give --db, or set ${DEFAULT_DB_ENV})")
            if not must_exist:
                path.parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, ImportError) as e:
        raise InvalidRequest(f"cannot use the database {parsed!r}: {e}") from e
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if create_schema:
        migrate(engine)
    return engine


def _alembic_config(connection: Connection | None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest). Safe to call concurrently."""
    from alembic import command

    if revision == "head" and _at_head(engine):
        return  # nothing to do: no lock taken, no lock file made
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


def _at_head(engine: Engine) -> bool:
    """Whether the schema is at the newest migration already (read without a lock)."""
    from alembic.script import ScriptDirectory

    config = _alembic_config(None)
    head = ScriptDirectory.from_config(config).get_current_head()
    return head is not None and current_revision(engine) == head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return MigrationContext.configure(connection).get_current_revision()


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """An exclusive file lock beside a SQLite database, removed when released.

    The holder unlinks the file before unlocking; a waiter that then gets the lock on the
    unlinked file sees that the path no longer names it, and tries again on a fresh file.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).expanduser().resolve().with_suffix(".migrate.lock")
    while True:
        handle = lock_path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except BaseException:
            handle.close()
            raise
        if _names(lock_path, handle):
            break
        handle.close()  # the file we locked was unlinked by its last holder: closing unlocks
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock_path.unlink()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _names(path: Path, handle: IO[str]) -> bool:
    """Whether ``path`` still names the open file ``handle``."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(handle.fileno()))
    except FileNotFoundError:
        return False


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
