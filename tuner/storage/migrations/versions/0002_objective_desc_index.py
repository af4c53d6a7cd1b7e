"""PostgreSQL: an index for leaderboards of maximised objectives (DESC NULLS LAST).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(
        "ix_trials_experiment_objective_desc",
        "trials",
        ["experiment_id", sa.text("objective DESC NULLS LAST")],
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_trials_experiment_objective_desc", "trials")
