"""The initial schema: experiments, trials, per-trial metric values and observations.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64)),
        sa.Column("message", sa.Text),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("started_at", TIME),
        sa.Column("completed_at", TIME),
        sa.Column("owner", sa.String(128)),
        sa.Column("lease_expires_at", TIME),
        sa.UniqueConstraint("namespace", "name", name="uq_experiments_namespace_name"),
    )
    op.create_index("ix_experiments_phase", "experiments", ["phase"])
    op.create_table(
        "trials",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "experiment_id",
            sa.Integer,
            sa.ForeignKey("experiments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("attrs", sa.JSON, nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("reason", sa.String(64)),
        sa.Column("message", sa.Text),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("started_at", TIME),
        sa.Column("finished_at", TIME),
        sa.Column("objective", sa.Float),
        sa.Column("steps", sa.Integer, nullable=False),
        sa.Column("runner_ref", sa.String(255)),
        sa.UniqueConstraint("experiment_id", "number", name="uq_trials_experiment_number"),
        sa.UniqueConstraint("experiment_id", "name", name="uq_trials_experiment_name"),
    )
    op.create_index("ix_trials_experiment_state", "trials", ["experiment_id", "state"])
    op.create_index("ix_trials_experiment_objective", "trials", ["experiment_id", "objective"])
    op.create_table(
        "trial_metrics",
        sa.Column(
            "trial_id",
            sa.Integer,
            sa.ForeignKey("trials.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("value", sa.Float),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_index("ix_trial_metrics_name_value", "trial_metrics", ["name", "value"])
    op.create_table(
        "observations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "trial_id", sa.Integer, sa.ForeignKey("trials.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("metric", sa.String(128), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("time", TIME, nullable=False),
        sa.UniqueConstraint("trial_id", "metric", "step", name="uq_observations_trial_metric_step"),
    )


def downgrade() -> None:
    op.drop_table("observations")
    op.drop_index("ix_trial_metrics_name_value", "trial_metrics")
    op.drop_table("trial_metrics")
    op.drop_index("ix_trials_experiment_objective", "trials")
    op.drop_index("ix_trials_experiment_state", "trials")
    op.drop_table("trials")
    op.drop_index("ix_experiments_phase", "experiments")
    op.drop_table("experiments")
