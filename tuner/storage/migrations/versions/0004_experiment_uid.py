"""Experiments: a unique id, which trial tokens bind to (a name can be reused after a delete).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("uid", sa.String(32)))
    experiments = sa.table("experiments", sa.column("id", sa.Integer), sa.column("uid"))
    bind = op.get_bind()
    for (id_,) in bind.execute(sa.select(experiments.c.id)).all():
        bind.execute(
            experiments.update().where(experiments.c.id == id_).values(uid=uuid.uuid4().hex)
        )
    with op.batch_alter_table("experiments") as batch:
        batch.alter_column("uid", existing_type=sa.String(32), nullable=False)
        batch.create_unique_constraint("uq_experiments_uid", ["uid"])


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_constraint("uq_experiments_uid", type_="unique")
        batch.drop_column("uid")
