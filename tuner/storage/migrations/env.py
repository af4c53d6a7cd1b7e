"""Alembic environment: runs on the connection that tuner.storage.migrate hands over."""

from __future__ import annotations

from alembic import context

from tuner.storage.engine import include_object
from tuner.storage.tables import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_object=include_object(connection.dialect.name),
)
with context.begin_transaction():
    context.run_migrations()
