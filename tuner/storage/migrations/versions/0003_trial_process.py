"""Trials: the local process's start time and how far its log was read, for re-adoption.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("process_start", sa.BigInteger))
        batch.add_column(sa.Column("log_offset", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("log_steps", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("log_steps")
        batch.drop_column("log_offset")
        batch.drop_column("process_start")
