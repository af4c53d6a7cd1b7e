"""SQLAlchemy 2.0 tables: the database is the only record of an experiment.

``trials.objective`` and ``trial_metrics`` hold each metric's value under its strategy,
maintained as observations arrive, so that leaderboards are one indexed query.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {
        dict[str, Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class ExperimentRow(Base):
    __tablename__ = "experiments"
    __table_args__ = (
        UniqueConstraint("namespace", "name", name="uq_experiments_namespace_name"),
        UniqueConstraint("uid", name="uq_experiments_uid"),
        Index("ix_experiments_phase", "phase"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    # Unique for ever (a name is reused after a delete): trial tokens bind to it (tuner.tokens)
    uid: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]]
    phase: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    # Which controller drives the experiment, until when (several replicas; see Repository.lease)
    owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]


class TrialRow(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("experiment_id", "number", name="uq_trials_experiment_number"),
        UniqueConstraint("experiment_id", "name", name="uq_trials_experiment_name"),
        Index("ix_trials_experiment_state", "experiment_id", "state"),
        Index("ix_trials_experiment_objective", "experiment_id", "objective"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    number: Mapped[int]
    name: Mapped[str] = mapped_column(String(128))
    parameters: Mapped[dict[str, Any]]
    attrs: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    objective: Mapped[float | None] = mapped_column(Float)
    steps: Mapped[int] = mapped_column(Integer, default=0)
    runner_ref: Mapped[str | None] = mapped_column(String(255))
    # A local trial's process start time, and how far its log was read (with the parser's
    # step counters there), so that a restarted controller re-adopts it.
    process_start: Mapped[int | None] = mapped_column(BigInteger)
    log_offset: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    log_steps: Mapped[dict[str, Any] | None]


class TrialMetricRow(Base):
    """A metric's value under its strategy, per trial (min, max or latest)."""

    __tablename__ = "trial_metrics"
    __table_args__ = (Index("ix_trial_metrics_name_value", "name", "value"),)

    trial_id: Mapped[int] = mapped_column(
        ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[float | None] = mapped_column(Float)
    step: Mapped[int]  # the step the value came from
    count: Mapped[int]  # observations of this metric


class ObservationRow(Base):
    __tablename__ = "observations"
    __table_args__ = (
        UniqueConstraint("trial_id", "metric", "step", name="uq_observations_trial_metric_step"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(128))
    step: Mapped[int]
    # NULL stands for NaN: SQLite cannot store NaN.
    value: Mapped[float | None] = mapped_column(Float)
    time: Mapped[datetime]


# PostgreSQL scans the ascending (experiment, objective) index backwards as DESC NULLS FIRST, so a
# maximised objective's leaderboard (DESC NULLS LAST) needs its own index to read only k rows.
# SQLite cannot declare NULLS LAST in an index; it sorts small experiments quickly anyway.
Index(
    "ix_trials_experiment_objective_desc",
    TrialRow.experiment_id,
    TrialRow.objective.desc().nulls_last(),
).ddl_if(dialect="postgresql")
