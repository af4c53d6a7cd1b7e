"""The schema comes from Alembic migrations, and they match the SQLAlchemy models."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from tuner.storage import make_engine
from tuner.storage.engine import current_revision, include_object, migrate
from tuner.storage.tables import Base


def test_migrations_build_the_model_schema(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == "0004"
        with engine.connect() as connection:
            opts = {"compare_type": False, "include_object": include_object(engine.dialect.name)}
            context = MigrationContext.configure(connection, opts=opts)
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
        names = set(inspect(engine).get_table_names())
        assert {"experiments", "trials", "trial_metrics", "observations"} <= names
        indexes = {i["name"] for i in inspect(engine).get_indexes("trials")}
        assert {"ix_trials_experiment_state", "ix_trials_experiment_objective"} <= indexes
        migrate(engine)  # idempotent
        assert current_revision(engine) == "0004"
    finally:
        engine.dispose()


def _start(url: str) -> None:
    make_engine(url).dispose()


def test_concurrent_starts_migrate_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_start, args=(url,)) for _ in range(3)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(60)
    assert [p.exitcode for p in processes] == [0, 0, 0]
    assert current_revision(make_engine(url, create_schema=False)) == "0004"


def test_db_cli_upgrades_an_empty_database(tmp_path: Path) -> None:
    from tuner.cli import main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["db", "current", "--db", url]) == 0
    assert current_revision(make_engine(url, create_schema=False)) is None
    assert main(["db", "upgrade", "--db", url]) == 0
    assert current_revision(make_engine(url, create_schema=False)) == "0004"


def test_a_database_without_migration_record_is_refused_clearly(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    from tuner.errors import TunerError

    url = f"sqlite:///{tmp_path / 'old.db'}"
    Base.metadata.create_all(create_engine(url))  # tables, but no alembic_version
    try:
        make_engine(url)
    except TunerError as e:
        assert "no migration record" in e.message
    else:
        raise AssertionError("an unversioned database was accepted")


def test_0004_gives_existing_experiments_distinct_uids(db_url: str) -> None:
    from sqlalchemy import text

    engine = make_engine(db_url, create_schema=False)
    try:
        migrate(engine, "0003")
        with engine.begin() as conn:
            for name in ("a", "b"):
                conn.execute(
                    text(
                        "INSERT INTO experiments (namespace, name, spec, phase, created_at) "
                        "VALUES ('default', :name, '{}', 'Running', CURRENT_TIMESTAMP)"
                    ),
                    {"name": name},
                )
        migrate(engine)
        assert current_revision(engine) == "0004"
        with engine.connect() as conn:
            uids = [row[0] for row in conn.execute(text("SELECT uid FROM experiments"))]
        assert len(uids) == 2 and len(set(uids)) == 2 and all(len(u) == 32 for u in uids)
    finally:
        engine.dispose()
