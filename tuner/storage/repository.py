"""Every query the service makes, in one place.

Callers get plain values (:class:`ExperimentRecord`, :class:`tuner.trials.Trial`), never ORM
rows, and each method is one short transaction.
"""

from __future__ import annotations

import math
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tuner.constraints import feasible as is_feasible
from tuner.errors import Conflict, NotFound
from tuner.spec import Experiment, MetricStrategyType, ObjectiveType
from tuner.storage.tables import ExperimentRow, ObservationRow, TrialMetricRow, TrialRow
from tuner.trials import (
    ACTIVE_STATES,
    RANKED_STATES,
    ExperimentPhase,
    Observation,
    Trial,
    TrialState,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def database_now(s: Session) -> datetime:
    """The database server's current time (UTC), so that every replica times leases by one clock.

    Replicas' own clocks may disagree by many seconds; the database's is shared. PostgreSQL's
    ``clock_timestamp()`` is the time of the call (``now()`` would be the transaction's start);
    SQLite's ``'now'`` is the host's clock, which every process of one SQLite file shares.
    """
    if s.get_bind().dialect.name == "postgresql":
        value = s.scalar(select(func.clock_timestamp()))
    else:
        text = s.scalar(select(func.strftime("%Y-%m-%d %H:%M:%f", "now")))
        value = datetime.fromisoformat(str(text))
    assert isinstance(value, datetime)
    aware = _aware(value)
    assert aware is not None
    return aware.astimezone(UTC)


def _aware(t: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if t is not None and t.tzinfo is None:
        return t.replace(tzinfo=UTC)
    return t


class RunningMark(NamedTuple):
    """A trial whose runner started it: :meth:`Repository.mark_running_many`."""

    experiment_id: int
    name: str
    runner_ref: str | None
    process_start: int | None = None


class TrialFinish(NamedTuple):
    """A trial's ending: :meth:`Repository.finish_trials`."""

    experiment_id: int
    name: str
    state: TrialState
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class ExperimentRecord:
    """One stored experiment: its parsed spec document and its status.

    Attributes:
        experiment: the Experiment document (``apiVersion``, ``metadata``, ``spec``).
        uid: unique for ever, unlike the name (trial tokens bind to it).
    """

    id: int
    namespace: str
    name: str
    uid: str
    experiment: Experiment
    phase: ExperimentPhase
    reason: str | None
    message: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True)
class Census:
    """Counts by ``(namespace, phase)``, ``(namespace, state)`` and lease holder."""

    experiments: dict[tuple[str, str], int]
    trials: dict[tuple[str, str], int]
    leases: dict[str, int]


class _SpecCache:
    """Parsed specs, one per experiment, reused while the stored spec JSON is unchanged.

    Parsing a spec (pydantic validation) costs far more than comparing the stored JSON with
    the JSON it was parsed from, so each read compares and parses only when they differ: a
    budget edit or a replaced spec is seen on the very next read, and a stale spec is never
    served. The cache holds no state of its own beyond that: the database stays the record.
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._entries: dict[int, tuple[dict[str, Any], Experiment]] = {}
        self._lock = threading.Lock()  # reads come from the database thread and FastAPI's pool

    def get(self, experiment_id: int, stored: dict[str, Any]) -> Experiment:
        entry = self._entries.get(experiment_id)
        if entry is not None and entry[0] == stored:
            return entry[1]
        parsed = Experiment.model_validate(stored)
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.pop(next(iter(self._entries)), None)
            self._entries[experiment_id] = (
                stored,
                parsed,
            )  # a fresh dict per read: nobody else holds it
        return parsed

    def forget(self, experiment_id: int) -> None:
        with self._lock:
            self._entries.pop(experiment_id, None)


_FLOAT_MAX = sys.float_info.max
"""The largest finite float: ``BETWEEN -_FLOAT_MAX AND _FLOAT_MAX`` selects finite values."""


def _text(message: str | None) -> str | None:
    """A message for a text column: NUL (which PostgreSQL's text cannot hold; a trial's output
    may carry one into a message) becomes U+FFFD, the same on both databases."""
    return message.replace("\x00", "\ufffd") if message else message


def _nan_to_none(v: float) -> float | None:
    return None if math.isnan(v) else v


def _none_to_nan(v: float | None) -> float:
    return math.nan if v is None else v


class Repository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)
        self._specs = _SpecCache()

    def session(self) -> Session:
        return self._session()

    # -- experiments ---------------------------------------------------------------------

    def create_experiment(self, experiment: Experiment) -> ExperimentRecord:
        row = ExperimentRow(
            namespace=experiment.namespace,
            name=experiment.name,
            uid=uuid.uuid4().hex,
            spec=experiment.dump(),
            phase=ExperimentPhase.CREATED.value,
            created_at=utcnow(),
        )
        with self.session() as s:
            s.add(row)
            try:
                s.commit()
            except IntegrityError as e:
                raise Conflict(
                    f"experiment {experiment.namespace}/{experiment.name} already exists"
                ) from e
            return self._experiment(row)

    def get_experiment(self, namespace: str, name: str) -> ExperimentRecord:
        with self.session() as s:
            row = s.scalar(
                select(ExperimentRow).where(
                    ExperimentRow.namespace == namespace, ExperimentRow.name == name
                )
            )
            if row is None:
                raise NotFound(f"experiment {namespace}/{name} not found")
            return self._experiment(row)

    def experiment_by_id(self, experiment_id: int) -> ExperimentRecord:
        with self.session() as s:
            row = s.get(ExperimentRow, experiment_id)
            if row is None:
                raise NotFound(f"experiment #{experiment_id} not found")
            return self._experiment(row)

    def list_experiments(
        self,
        namespace: str | None = None,
        phase: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[ExperimentRecord]:
        query = select(ExperimentRow).order_by(ExperimentRow.created_at.desc(), ExperimentRow.id)
        if namespace is not None:
            query = query.where(ExperimentRow.namespace == namespace)
        if phase is not None:
            query = query.where(ExperimentRow.phase == phase)
        with self.session() as s:
            return [self._experiment(r) for r in s.scalars(query.limit(limit).offset(offset))]

    def experiments_with_trial(self, trial_name: str) -> list[ExperimentRecord]:
        """The experiments, in any namespace, that have a trial of this name, newest first
        (Katib's DB-manager API names a trial and nothing else)."""
        query = (
            select(ExperimentRow)
            .join(TrialRow, TrialRow.experiment_id == ExperimentRow.id)
            .where(TrialRow.name == trial_name)
            .order_by(ExperimentRow.id.desc())
        )
        with self.session() as s:
            return [self._experiment(r) for r in s.scalars(query)]

    def set_phase(
        self,
        experiment_id: int,
        phase: ExperimentPhase,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"phase": phase.value, "reason": reason, "message": _text(message)}
        now = utcnow()
        if phase is ExperimentPhase.RUNNING:
            values["started_at"] = func.coalesce(ExperimentRow.started_at, now)
            values["completed_at"] = None
        elif phase.finished:
            values["completed_at"] = now
        with self.session() as s:
            s.execute(
                update(ExperimentRow).where(ExperimentRow.id == experiment_id).values(**values)
            )
            s.commit()

    # -- leases: which replica drives an experiment ----------------------------------------

    def acquire_lease(
        self, experiment_id: int, owner: str, ttl: float, *, from_dead: str | None = None
    ) -> bool:
        """Take (or keep) the right to drive an experiment for ``ttl`` seconds.

        One conditional UPDATE, so two replicas racing for the same experiment cannot both win:
        the lease is free, already ours, or expired; or held by ``from_dead``, a holder the
        caller knows to be dead (a killed process of this host).
        """
        with self.session() as s:
            now = database_now(s)
            result = s.execute(
                update(ExperimentRow)
                .where(
                    ExperimentRow.id == experiment_id,
                    or_(
                        ExperimentRow.owner.is_(None),
                        ExperimentRow.owner == owner,
                        ExperimentRow.owner == (from_dead or owner),
                        ExperimentRow.lease_expires_at.is_(None),
                        ExperimentRow.lease_expires_at < now,
                    ),
                )
                .values(owner=owner, lease_expires_at=now + timedelta(seconds=ttl))
            )
            s.commit()
            return bool(getattr(result, "rowcount", 0))

    def lease_holder(self, experiment_id: int) -> str | None:
        """Who holds the lease of an experiment (expired or not), or ``None``."""
        with self.session() as s:
            return s.scalar(select(ExperimentRow.owner).where(ExperimentRow.id == experiment_id))

    def renew_leases(self, owner: str, experiment_ids: Iterable[int], ttl: float) -> set[int]:
        """Extend the leases ``owner`` still holds; returns the ids it holds."""
        ids = list(experiment_ids)
        if not ids:
            return set()
        with self.session() as s:
            now = database_now(s)
            s.execute(
                update(ExperimentRow)
                .where(ExperimentRow.id.in_(ids), ExperimentRow.owner == owner)
                .values(lease_expires_at=now + timedelta(seconds=ttl))
            )
            s.commit()
            held = s.scalars(
                select(ExperimentRow.id).where(
                    ExperimentRow.id.in_(ids), ExperimentRow.owner == owner
                )
            )
            return set(held)

    def release_lease(self, experiment_id: int, owner: str) -> None:
        with self.session() as s:
            s.execute(
                update(ExperimentRow)
                .where(ExperimentRow.id == experiment_id, ExperimentRow.owner == owner)
                .values(owner=None, lease_expires_at=None)
            )
            s.commit()

    def census(self) -> Census:
        """How many experiments and trials are in each state, and the leases each replica
        holds: three grouped counts, for the metrics scraped at ``/metrics``."""
        with self.session() as s:
            now = database_now(s)
            experiments = s.execute(
                select(ExperimentRow.namespace, ExperimentRow.phase, func.count()).group_by(
                    ExperimentRow.namespace, ExperimentRow.phase
                )
            )
            trials = s.execute(
                select(ExperimentRow.namespace, TrialRow.state, func.count())
                .join(ExperimentRow, ExperimentRow.id == TrialRow.experiment_id)
                .group_by(ExperimentRow.namespace, TrialRow.state)
            )
            leases = s.execute(
                select(ExperimentRow.owner, func.count())
                .where(ExperimentRow.owner.is_not(None), ExperimentRow.lease_expires_at > now)
                .group_by(ExperimentRow.owner)
            )
            return Census(
                experiments={(ns, phase): n for ns, phase, n in experiments},
                trials={(ns, state): n for ns, state, n in trials},
                leases={str(owner): n for owner, n in leases},
            )

    def update_spec(self, experiment_id: int, experiment: Experiment) -> None:
        with self.session() as s:
            s.execute(
                update(ExperimentRow)
                .where(ExperimentRow.id == experiment_id)
                .values(spec=experiment.dump())
            )
            s.commit()

    def delete_experiment(self, experiment_id: int) -> None:
        with self.session() as s:
            trial_ids = select(TrialRow.id).where(TrialRow.experiment_id == experiment_id)
            s.execute(delete(ObservationRow).where(ObservationRow.trial_id.in_(trial_ids)))
            s.execute(delete(TrialMetricRow).where(TrialMetricRow.trial_id.in_(trial_ids)))
            s.execute(delete(TrialRow).where(TrialRow.experiment_id == experiment_id))
            s.execute(delete(ExperimentRow).where(ExperimentRow.id == experiment_id))
            s.commit()
        self._specs.forget(experiment_id)

    def _experiment(self, row: ExperimentRow) -> ExperimentRecord:
        return ExperimentRecord(
            id=row.id,
            namespace=row.namespace,
            name=row.name,
            uid=row.uid,
            experiment=self._specs.get(row.id, row.spec),
            phase=ExperimentPhase(row.phase),
            reason=row.reason,
            message=row.message,
            created_at=_aware(row.created_at) or utcnow(),
            started_at=_aware(row.started_at),
            completed_at=_aware(row.completed_at),
        )

    # -- trials --------------------------------------------------------------------------

    def create_trials(
        self,
        experiment: ExperimentRecord,
        suggestions: Sequence[tuple[dict[str, Any], dict[str, Any]]],
    ) -> list[Trial]:
        """Store new trials in state Created, numbered after the existing ones.

        The numbers are unique per experiment (a constraint), so two writers racing can never
        create the same trial twice.
        """
        if not suggestions:
            return []
        now = utcnow()
        with self.session() as s:
            start = s.scalar(
                select(func.coalesce(func.max(TrialRow.number), -1) + 1).where(
                    TrialRow.experiment_id == experiment.id
                )
            )
            assert start is not None
            values: list[dict[str, Any]] = [
                {
                    "experiment_id": experiment.id,
                    "number": start + i,
                    "name": trial_name(experiment.name, start + i),
                    "parameters": params,
                    "attrs": attrs,
                    "state": TrialState.CREATED.value,
                    "created_at": now,
                    "steps": 0,
                }
                for i, (params, attrs) in enumerate(suggestions)
            ]
            try:
                s.connection().execute(insert(TrialRow), values)
                s.commit()
            except IntegrityError as e:
                raise Conflict("trials were created concurrently; retry") from e
        return [
            Trial(
                name=v["name"],
                number=v["number"],
                parameters=dict(v["parameters"]),
                attrs=dict(v["attrs"]),
                created_at=now,
            )
            for v in values
        ]

    def history(
        self,
        experiment_id: int,
        *,
        with_curves: bool = False,
        after_number: int = -1,
        limit: int | None = None,
    ) -> list[Trial]:
        """Every trial of the experiment in creation order (the input of every decision); with
        ``after_number`` and ``limit``, one page of it (those numbered after, at most
        ``limit``), so that a start-up reads a long history page by page."""
        query = (
            select(*_TRIAL_COLUMNS)
            .where(TrialRow.experiment_id == experiment_id, TrialRow.number > after_number)
            .order_by(TrialRow.number)
        )
        whole = after_number < 0 and limit is None
        with self.session() as s:
            rows = s.execute(query if limit is None else query.limit(limit)).all()
            trials = [self._trial(r) for r in rows]
            self._attach_metrics(s, trials, rows, experiment_id=experiment_id if whole else None)
            if with_curves and trials:
                exp = s.get(ExperimentRow, experiment_id)
                assert exp is not None
                metric = exp.spec["spec"]["objective"]["objectiveMetricName"]
                self._attach_curves(s, metric, trials, rows)
        return trials

    def history_delta(
        self,
        experiment_id: int,
        after_number: int,
        names: Iterable[str] = (),
        *,
        finished_only: bool = False,
    ) -> list[Trial]:
        """The trials numbered after ``after_number``, plus the named ones (with
        ``finished_only``, those of them that have finished), in creation order.

        What :class:`tuner.history.HistoryCache` reads to catch up: finished trials never
        change, so only new trials and those that were still active need reading.
        """
        ours = select(*_TRIAL_COLUMNS).where(TrialRow.experiment_id == experiment_id)
        names = list(names)
        with self.session() as s:
            # Two index lookups, and nothing more in their conditions: with an OR of both, or
            # a condition on the number or state of the named ones, SQLite's planner reads
            # every trial of the experiment, and a decision would cost O(trials) again.
            rows = list(s.execute(ours.where(TrialRow.number > after_number)).all())
            if names:
                active = {st.value for st in ACTIVE_STATES}
                rows += [
                    r
                    for r in s.execute(ours.where(TrialRow.name.in_(names))).all()
                    if r.number <= after_number and not (finished_only and r.state in active)
                ]
            rows.sort(key=lambda r: r.number)
            trials = [self._trial(r) for r in rows]
            self._attach_metrics(s, trials, rows)
        return trials

    def get_trial(self, experiment_id: int, name: str, *, with_curve: bool = False) -> Trial:
        with self.session() as s:
            row = s.scalar(
                select(TrialRow).where(
                    TrialRow.experiment_id == experiment_id, TrialRow.name == name
                )
            )
            if row is None:
                raise NotFound(f"trial {name} not found")
            trial = self._trial(row)
            self._attach_metrics(s, [trial], [row])
            if with_curve:
                exp = s.get(ExperimentRow, experiment_id)
                assert exp is not None
                metric = exp.spec["spec"]["objective"]["objectiveMetricName"]
                self._attach_curves(s, metric, [trial], [row])
            return trial

    def trials(
        self,
        experiment_id: int,
        states: Iterable[TrialState] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Trial]:
        query = (
            select(*_TRIAL_COLUMNS)
            .where(TrialRow.experiment_id == experiment_id)
            .order_by(TrialRow.number)
            .offset(offset)
        )
        if states is not None:
            query = query.where(TrialRow.state.in_([st.value for st in states]))
        if limit is not None:
            query = query.limit(limit)
        with self.session() as s:
            rows = s.execute(query).all()
            trials = [self._trial(r) for r in rows]
            self._attach_metrics(s, trials, rows)
            return trials

    def mark_running(
        self,
        experiment_id: int,
        name: str,
        runner_ref: str | None,
        process_start: int | None = None,
    ) -> None:
        self.mark_running_many([RunningMark(experiment_id, name, runner_ref, process_start)])

    def mark_running_many(self, marks: Sequence[RunningMark]) -> list[bool]:
        """Move active trials to Running, in one transaction (see
        :class:`tuner.storage.coalesce.Coalescer`: trials started together share it); for
        each, whether it was still active."""
        return self._update_active(
            (
                m.experiment_id,
                m.name,
                {
                    "state": TrialState.RUNNING.value,
                    "started_at": utcnow(),
                    "runner_ref": m.runner_ref,
                    "process_start": m.process_start,
                    "log_offset": 0,
                    "log_steps": None,
                },
            )
            for m in marks
        )

    def _update_active(self, changes: Iterable[tuple[int, str, dict[str, Any]]]) -> list[bool]:
        """Set ``values`` on each ``(experiment id, trial name, values)`` trial that is still
        active, in one transaction; for each, whether it was."""
        changed = []
        with self.session() as s:
            connection = s.connection()
            for experiment_id, name, values in changes:
                result = connection.execute(
                    update(TrialRow)
                    .where(
                        TrialRow.experiment_id == experiment_id,
                        TrialRow.name == name,
                        TrialRow.state.in_([st.value for st in ACTIVE_STATES]),
                    )
                    .values(**values)
                )
                changed.append(bool(getattr(result, "rowcount", 0)))
            s.commit()
        return changed

    def save_log_position(
        self, experiment_id: int, name: str, offset: int, steps: Mapping[str, int]
    ) -> None:
        """Remember how far a running trial's log was read, once its observations are stored:
        a restarted controller reads on from there with the same step counters, so that each
        line is parsed into the same steps (stored once) and none is skipped."""
        with self.session() as s:
            s.connection().execute(
                update(TrialRow)
                .where(
                    TrialRow.experiment_id == experiment_id,
                    TrialRow.name == name,
                    TrialRow.state == TrialState.RUNNING.value,
                )
                .values(log_offset=offset, log_steps=dict(steps))
            )
            s.commit()

    def finish_trial(
        self,
        experiment_id: int,
        name: str,
        state: TrialState,
        reason: str | None = None,
        message: str | None = None,
    ) -> bool:
        """Move an active trial to a final state. Returns False when it had already finished."""
        return self.finish_trials([TrialFinish(experiment_id, name, state, reason, message)])[0]

    def finish_trials(self, endings: Sequence[TrialFinish]) -> list[bool]:
        """:meth:`finish_trial` for several trials, in one transaction; for each, whether it
        was still active."""
        assert all(e.state.finished for e in endings)
        return self._update_active(
            (
                e.experiment_id,
                e.name,
                {
                    "state": e.state.value,
                    "reason": e.reason,
                    "message": _text(e.message),
                    "finished_at": utcnow(),
                },
            )
            for e in endings
        )

    def counts(self, experiment_id: int) -> dict[TrialState, int]:
        with self.session() as s:
            rows = s.execute(
                select(TrialRow.state, func.count())
                .where(TrialRow.experiment_id == experiment_id)
                .group_by(TrialRow.state)
            ).all()
        counts = dict.fromkeys(TrialState, 0)
        for state, n in rows:
            counts[TrialState(state)] = n
        return counts

    def step_stats(self, experiment_id: int) -> dict[TrialState, tuple[int, int]]:
        """Per state: (sum, max) of the steps trials ran, in one grouped query."""
        with self.session() as s:
            rows = s.execute(
                select(TrialRow.state, func.sum(TrialRow.steps), func.max(TrialRow.steps))
                .where(TrialRow.experiment_id == experiment_id)
                .group_by(TrialRow.state)
            ).all()
        return {TrialState(state): (int(total or 0), int(most or 0)) for state, total, most in rows}

    # -- observations --------------------------------------------------------------------

    def add_observations(
        self, experiment: ExperimentRecord, trial_name: str, observations: Sequence[Observation]
    ) -> int:
        """Store observations; returns how many were new.

        An observation is keyed by (trial, metric, step): a repeat (a retried push, a log parsed
        again after a restart) is ignored, so nothing is ever stored twice. The trial's metric
        values under their strategies are updated in the same transaction.
        """
        return self.add_observation_batches([(experiment, trial_name, observations)])[0]

    def add_observation_batches(
        self, batches: Sequence[tuple[ExperimentRecord, str, Sequence[Observation]]]
    ) -> list[int]:
        """:meth:`add_observations` for several trials in one transaction (all or nothing)."""
        with self.session() as s:
            counts = [self._add_observations(s, *batch) for batch in batches]
            s.commit()
        return counts

    def store_pushes(
        self, pushes: Sequence[tuple[ExperimentRecord, str, int | None, Mapping[str, float]]]
    ) -> list[list[Observation] | None]:
        """Pushed values ``(experiment, trial, step, values)`` of several trials, in one
        transaction (all or nothing): each push numbered, stored and returned as observations,
        or ``None`` when its trial has finished (nothing stored).

        A push without a step gives each metric the step after its highest stored one (pushes
        earlier in the same call included). The trials' states are read in the transaction that
        stores the values, so a push never lands after its trial's end was committed. A
        (metric, step) stored already keeps its value (a retried push changes nothing). The
        statements do not grow with the number of pushes: one read of the trials per
        experiment, one insert, one read and one write of the trials' metric values.
        """
        statements = self._report_statements
        with self.session() as s:
            conn = s.connection()
            trials: dict[tuple[int, str], tuple[int, str]] = {}
            names: dict[int, set[str]] = {}
            for experiment, name, _, _ in pushes:
                names.setdefault(experiment.id, set()).add(name)
            for experiment_id, wanted in names.items():
                for trial_id, name, state in conn.execute(
                    statements.trial_states, {"experiment_id": experiment_id, "names": wanted}
                ):
                    trials[(experiment_id, name)] = (trial_id, state)
            stepless = [
                trials[(e.id, n)][0]
                for e, n, step, values in pushes
                if step is None and values and (e.id, n) in trials
            ]
            last: dict[tuple[int, str], int] = {}
            if stepless:
                for trial_id, metric, step in conn.execute(
                    statements.last_steps, {"trial_ids": sorted(set(stepless))}
                ):
                    last[(trial_id, metric)] = int(step)
            now = utcnow()
            out: list[list[Observation] | None] = []
            rows: dict[tuple[int, str, int], dict[str, Any]] = {}
            objectives: dict[int, Any] = {}
            for experiment, name, step, values in pushes:
                found = trials.get((experiment.id, name))
                if found is None:
                    raise NotFound(f"trial {name} not found")
                trial_id, state = found
                if TrialState(state).finished:
                    out.append(None)
                    continue
                observations = []
                for metric, value in values.items():
                    at = last.get((trial_id, metric), -1) + 1 if step is None else step
                    last[(trial_id, metric)] = max(at, last.get((trial_id, metric), -1))
                    observations.append(Observation(metric, at, float(value), now))
                    rows.setdefault(
                        (trial_id, metric, at),
                        {
                            "trial_id": trial_id,
                            "metric": metric,
                            "step": at,
                            "value": _nan_to_none(float(value)),
                            "time": now,
                        },
                    )
                objectives[trial_id] = experiment.experiment.spec.objective
                out.append(observations)
            if rows:
                inserted = conn.execute(statements.insert_pushed, list(rows.values())).all()
                if inserted:
                    self._fold_pushed(conn, objectives, inserted)
            s.commit()
        return out

    def _fold_pushed(
        self, conn: Connection, objectives: Mapping[int, Any], inserted: Sequence[Any]
    ) -> None:
        """:meth:`_update_metrics` for the new observations ``(trial_id, metric, step, value)``
        of several trials, in one read and one write."""
        statements = self._report_statements
        new: dict[int, list[tuple[str, int, float | None, Any]]] = {}
        for trial_id, metric, step, value, time in inserted:
            new.setdefault(trial_id, []).append((metric, step, value, time))
        current: dict[int, dict[str, _Aggregate]] = {t: {} for t in new}
        for trial_id, name, value, step, count in conn.execute(
            statements.metrics_of_trials, {"trial_ids": sorted(new)}
        ):
            current[trial_id][name] = _Aggregate(value, step, count)
        upserts: list[dict[str, Any]] = []
        objective_rows: list[dict[str, Any]] = []
        for trial_id, observed in new.items():
            objective = objectives[trial_id]
            aggregates = current[trial_id]
            # A push is stamped on arrival, later than anything stored: for `latest` it wins.
            touched = _fold(aggregates, objective, observed, lambda metric, step: None)
            upserts += [{"trial_id": trial_id, "name": m, **vars(aggregates[m])} for m in touched]
            if objective.objective_metric_name in touched:
                best = aggregates[objective.objective_metric_name]
                objective_rows.append(
                    {"trial_id": trial_id, "objective": best.value, "steps": best.count}
                )
        conn.execute(statements.upsert_metrics, upserts)
        if objective_rows:
            conn.execute(statements.set_objective, objective_rows)

    def _add_observations(
        self,
        s: Session,
        experiment: ExperimentRecord,
        trial_name: str,
        observations: Sequence[Observation],
    ) -> int:
        """Plain statements, no ORM objects: a report is on the hot path of every trial."""
        if not observations:
            return 0
        conn = s.connection()  # prepared Core statements: a report is on every trial's hot path
        statements = self._report_statements
        trial_id = conn.scalar(
            statements.trial_id, {"experiment_id": experiment.id, "name": trial_name}
        )
        if trial_id is None:
            raise NotFound(f"trial {trial_name} not found")
        return self._insert_observations(conn, trial_id, experiment, observations)

    def _insert_observations(
        self,
        conn: Connection,
        trial_id: int,
        experiment: ExperimentRecord,
        observations: Sequence[Observation],
    ) -> int:
        if not observations:
            return 0
        statements = self._report_statements
        now = utcnow()
        # Last value wins within one batch for a repeated (metric, step).
        unique = {
            (o.metric, o.step): {
                "trial_id": trial_id,
                "metric": o.metric,
                "step": o.step,
                "value": _nan_to_none(o.value),
                "time": o.time or now,
            }
            for o in observations
        }
        inserted = conn.execute(statements.insert_observations, list(unique.values())).all()
        if inserted:
            self._update_metrics(conn, trial_id, experiment.experiment.spec.objective, inserted)
        return len(inserted)

    @cached_property
    def _report_statements(self) -> _ReportStatements:
        return _ReportStatements.build(self.engine.dialect.name)

    def _update_metrics(
        self, conn: Connection, trial_id: int, objective: Any, inserted: Sequence[Any]
    ) -> None:
        """Fold new observations into the trial's per-metric values (min, max or latest)."""
        statements = self._report_statements
        current = {
            name: _Aggregate(value, step, count)
            for name, value, step, count in conn.execute(
                statements.trial_metrics, {"trial_id": trial_id}
            )
        }
        touched = _fold(
            current,
            objective,
            inserted,
            lambda metric, step: conn.scalar(
                statements.observation_time, {"trial_id": trial_id, "metric": metric, "step": step}
            ),
        )
        conn.execute(
            statements.upsert_metrics,
            [{"trial_id": trial_id, "name": m, **vars(current[m])} for m in touched],
        )
        if objective.objective_metric_name in touched:
            aggregate = current[objective.objective_metric_name]
            conn.execute(
                statements.set_objective,
                {"trial_id": trial_id, "objective": aggregate.value, "steps": aggregate.count},
            )

    def observations(
        self, experiment_id: int, trial_name: str, metric: str | None = None
    ) -> list[Observation]:
        query = (
            select(ObservationRow)
            .join(TrialRow, TrialRow.id == ObservationRow.trial_id)
            .where(TrialRow.experiment_id == experiment_id, TrialRow.name == trial_name)
            .order_by(ObservationRow.metric, ObservationRow.step)
        )
        if metric is not None:
            query = query.where(ObservationRow.metric == metric)
        with self.session() as s:
            return [
                Observation(o.metric, o.step, _none_to_nan(o.value), _aware(o.time))
                for o in s.scalars(query)
            ]

    def last_steps(self, experiment_id: int, trial_name: str) -> dict[str, int]:
        """The highest stored step of each metric of a trial (for pushes without a step)."""
        query = (
            select(ObservationRow.metric, func.max(ObservationRow.step))
            .join(TrialRow, TrialRow.id == ObservationRow.trial_id)
            .where(TrialRow.experiment_id == experiment_id, TrialRow.name == trial_name)
            .group_by(ObservationRow.metric)
        )
        with self.session() as s:
            return {metric: int(step) for metric, step in s.execute(query)}

    def last_report_times(
        self, experiment_id: int, trial_names: Sequence[str]
    ) -> dict[str, datetime]:
        """When each named trial last stored an observation (trials without one are left out)."""
        if not trial_names:
            return {}
        query = (
            select(TrialRow.name, func.max(ObservationRow.time))
            .join(TrialRow, TrialRow.id == ObservationRow.trial_id)
            .where(TrialRow.experiment_id == experiment_id, TrialRow.name.in_(list(trial_names)))
            .group_by(TrialRow.name)
        )
        with self.session() as s:
            out: dict[str, datetime] = {}
            for name, time in s.execute(query):
                aware = _aware(time)
                if aware is not None:
                    out[name] = aware
            return out

    # -- leaderboard ---------------------------------------------------------------------

    def leaderboard(
        self,
        experiment: ExperimentRecord,
        metric: str | None = None,
        states: Iterable[TrialState] | None = RANKED_STATES,
        limit: int | None = 20,
        offset: int = 0,
    ) -> list[Trial]:
        """Trials best first by the objective (or by ``metric`` in its direction), one query.

        By default only trials that finished with their metrics (Succeeded, EarlyStopped):
        a trial that printed a good value and then crashed is not ranked. ``states=None``
        ranks every trial. Ties go in creation order; trials without a finite value (none,
        NaN, +-Infinity) come last, in creation order: a non-finite value is never the best.
        With ``spec.constraints``, infeasible trials follow every feasible one (each group in
        that order; :mod:`tuner.constraints`).
        """
        constraints = experiment.experiment.spec.study.constraints
        if not constraints:
            return self._ranked(experiment, metric, states, limit, offset)
        # Read in ranked pages until enough feasible trials are found (the usual top-k case),
        # else to the end, where the infeasible ones follow.
        wanted = None if limit is None else offset + limit
        page = 1000 if wanted is None else max(64, 4 * wanted)
        feasible: list[Trial] = []
        infeasible: list[Trial] = []
        start = 0
        while True:
            rows = self._ranked(experiment, metric, states, page, start)
            for t in rows:
                (feasible if is_feasible(t, constraints) else infeasible).append(t)
            start += len(rows)
            if len(rows) < page or (wanted is not None and len(feasible) >= wanted):
                break
        if wanted is not None and len(feasible) >= wanted:
            return feasible[offset:wanted]
        ordered = [*feasible, *infeasible][offset:]
        return ordered if limit is None else ordered[:limit]

    def _ranked(
        self,
        experiment: ExperimentRecord,
        metric: str | None,
        states: Iterable[TrialState] | None,
        limit: int | None,
        offset: int,
    ) -> list[Trial]:
        objective = experiment.experiment.spec.objective
        metric = metric or objective.objective_metric_name
        strategy = objective.strategy(metric)
        descending = (
            strategy is MetricStrategyType.MAX
            if strategy is not MetricStrategyType.LATEST
            else objective.type is ObjectiveType.MAXIMIZE
        )
        if metric == objective.objective_metric_name:
            column: Any = TrialRow.objective
            query = select(*_TRIAL_COLUMNS)
        else:
            column = TrialMetricRow.value
            query = select(*_TRIAL_COLUMNS).outerjoin(
                TrialMetricRow,
                (TrialMetricRow.trial_id == TrialRow.id) & (TrialMetricRow.name == metric),
            )
        query = query.where(TrialRow.experiment_id == experiment.id)
        if states is not None:
            query = query.where(TrialRow.state.in_([st.value for st in states]))
        # Two queries (finite values ranked, then the rest) rather than a computed sort key, so
        # that the (experiment, objective) index serves the order and a top-k reads k rows.
        finite = column.between(-_FLOAT_MAX, _FLOAT_MAX)  # false for NULL, NaN and +-inf
        order = column.desc() if descending else column.asc()
        ranked = query.where(finite).order_by(order.nulls_last(), TrialRow.number)
        unranked = query.where(or_(column.is_(None), ~finite)).order_by(TrialRow.number)
        with self.session() as s:
            rows = list(s.execute(ranked.limit(limit).offset(offset)).all())
            if limit is None or len(rows) < limit:  # the ranked ones ran out: the rest follow
                skip = 0
                if not rows and offset:
                    counted = select(func.count()).select_from(ranked.order_by(None).subquery())
                    skip = max(0, offset - (s.scalar(counted) or 0))
                more = None if limit is None else limit - len(rows)
                rows += s.execute(unranked.limit(more).offset(skip)).all()
            trials = [self._trial(r) for r in rows]
            self._attach_metrics(s, trials, rows)
            return trials

    def best_trial(self, experiment: ExperimentRecord) -> Trial | None:
        """The current optimal trial: the best objective of a Succeeded or EarlyStopped trial."""
        rows = self.leaderboard(experiment, states=RANKED_STATES, limit=1)
        best = rows[0].objective if rows else None
        return rows[0] if best is not None and math.isfinite(best) else None

    # -- dashboard aggregates ------------------------------------------------------------

    def experiment_tallies(self, experiment_ids: Sequence[int]) -> dict[int, ExperimentTally]:
        """Trial counts by state and the objective's range over completed trials, per experiment.

        Two grouped queries however many experiments (the dashboard's list page).
        """
        tallies = {i: ExperimentTally(dict.fromkeys(TrialState, 0)) for i in experiment_ids}
        ids = list(tallies)
        completed = [TrialState.SUCCEEDED.value, TrialState.EARLY_STOPPED.value]
        with self.session() as s:
            for chunk in range(0, len(ids), 500):
                part = ids[chunk : chunk + 500]
                for experiment_id, state, n in s.execute(
                    select(TrialRow.experiment_id, TrialRow.state, func.count())
                    .where(TrialRow.experiment_id.in_(part))
                    .group_by(TrialRow.experiment_id, TrialRow.state)
                ):
                    tallies[experiment_id].counts[TrialState(state)] = n
                for experiment_id, low, high in s.execute(
                    select(
                        TrialRow.experiment_id,
                        func.min(TrialRow.objective),
                        func.max(TrialRow.objective),
                    )
                    .where(
                        TrialRow.experiment_id.in_(part),
                        TrialRow.state.in_(completed),
                        TrialRow.objective.between(-_FLOAT_MAX, _FLOAT_MAX),  # finite
                    )
                    .group_by(TrialRow.experiment_id)
                ):
                    tallies[experiment_id].low = low
                    tallies[experiment_id].high = high
        return tallies

    def trial_points(
        self,
        experiment_id: int,
        states: Iterable[TrialState] | None = None,
        *,
        with_parameters: bool = True,
    ) -> list[TrialPoint]:
        """Every trial as a light row (no metrics) in creation order: one column query."""
        columns: list[Any] = [
            TrialRow.number,
            TrialRow.name,
            TrialRow.state,
            TrialRow.objective,
            TrialRow.message,
        ]
        if with_parameters:
            columns.append(TrialRow.parameters)
        query = (
            select(*columns)
            .where(TrialRow.experiment_id == experiment_id)
            .order_by(TrialRow.number)
        )
        if states is not None:
            query = query.where(TrialRow.state.in_([st.value for st in states]))
        with self.session() as s:
            return [
                TrialPoint(
                    number=row[0],
                    name=row[1],
                    state=TrialState(row[2]),
                    objective=row[3],
                    message=row[4],
                    parameters=dict(row[5]) if with_parameters else {},
                )
                for row in s.execute(query)
            ]

    def metric_curves(
        self, experiment_id: int, trial_names: Sequence[str], metric: str
    ) -> dict[str, list[tuple[int, float | None]]]:
        """One metric's observations of the named trials, by step (None stands for NaN)."""
        curves: dict[str, list[tuple[int, float | None]]] = {n: [] for n in trial_names}
        names = list(curves)
        with self.session() as s:
            for chunk in range(0, len(names), 500):
                for name, step, value in s.execute(
                    select(TrialRow.name, ObservationRow.step, ObservationRow.value)
                    .join(TrialRow, TrialRow.id == ObservationRow.trial_id)
                    .where(
                        TrialRow.experiment_id == experiment_id,
                        TrialRow.name.in_(names[chunk : chunk + 500]),
                        ObservationRow.metric == metric,
                    )
                    .order_by(TrialRow.name, ObservationRow.step)
                ):
                    curves[name].append((step, value))
        return curves

    # -- mapping -------------------------------------------------------------------------

    @staticmethod
    def _trial(row: Any) -> Trial:
        """A Trial from a TrialRow or a row of :data:`_TRIAL_COLUMNS`."""
        return Trial(
            name=row.name,
            number=row.number,
            parameters=dict(row.parameters),
            state=TrialState(row.state),
            objective=row.objective,
            attrs=dict(row.attrs or {}),
            reason=row.reason,
            message=row.message,
            created_at=_aware(row.created_at),
            started_at=_aware(row.started_at),
            finished_at=_aware(row.finished_at),
            steps=row.steps,
            runner_ref=row.runner_ref,
            process_start=row.process_start,
            log_offset=row.log_offset or 0,
            log_steps=dict(row.log_steps or {}),
        )

    @staticmethod
    def _attach_metrics(
        s: Session, trials: list[Trial], rows: Sequence[Any], *, experiment_id: int | None = None
    ) -> None:
        """Fill ``Trial.metrics``; with ``experiment_id``, the trials are all of that experiment
        (one joined query instead of id lists)."""
        if not trials:
            return
        by_id = {row.id: t for row, t in zip(rows, trials, strict=True)}
        columns = (TrialMetricRow.trial_id, TrialMetricRow.name, TrialMetricRow.value)
        if experiment_id is not None:
            queries = [
                select(*columns)
                .join(TrialRow, TrialRow.id == TrialMetricRow.trial_id)
                .where(TrialRow.experiment_id == experiment_id)
            ]
        else:
            ids = list(by_id)
            queries = [
                select(*columns).where(TrialMetricRow.trial_id.in_(ids[i : i + 1000]))
                for i in range(0, len(ids), 1000)
            ]
        for query in queries:
            for trial_id, name, value in s.execute(query):
                trial = by_id.get(trial_id)
                if trial is not None:
                    trial.metrics[name] = _none_to_nan(value)

    @staticmethod
    def _attach_curves(s: Session, metric: str, trials: list[Trial], rows: Sequence[Any]) -> None:
        by_id = {row.id: t for row, t in zip(rows, trials, strict=True)}
        curves: dict[int, dict[int, float]] = {i: {} for i in by_id}
        ids = list(by_id)
        for chunk in range(0, len(ids), 500):
            for trial_id, step, value in s.execute(
                select(ObservationRow.trial_id, ObservationRow.step, ObservationRow.value).where(
                    ObservationRow.trial_id.in_(ids[chunk : chunk + 500]),
                    ObservationRow.metric == metric,
                )
            ):
                curves[trial_id][step] = _none_to_nan(value)
        for trial_id, curve in curves.items():
            by_id[trial_id].with_curve(curve)


_TRIAL_COLUMNS = (
    TrialRow.id,
    TrialRow.name,
    TrialRow.number,
    TrialRow.parameters,
    TrialRow.attrs,
    TrialRow.state,
    TrialRow.reason,
    TrialRow.message,
    TrialRow.created_at,
    TrialRow.started_at,
    TrialRow.finished_at,
    TrialRow.objective,
    TrialRow.steps,
    TrialRow.runner_ref,
    TrialRow.process_start,
    TrialRow.log_offset,
    TrialRow.log_steps,
)
"""What a :class:`Trial` is made of: selected as plain rows, without ORM identity tracking."""


@dataclass(frozen=True)
class _ReportStatements:
    """The statements of :meth:`Repository.add_observations`, built once per dialect."""

    trial_id: Any
    trial_states: Any
    last_steps: Any
    insert_pushed: Any
    metrics_of_trials: Any
    insert_observations: Any
    observation_time: Any
    trial_metrics: Any
    upsert_metrics: Any
    set_objective: Any

    @classmethod
    def build(cls, dialect: str) -> _ReportStatements:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        upsert = insert(TrialMetricRow)
        return cls(
            trial_id=select(TrialRow.id).where(
                TrialRow.experiment_id == bindparam("experiment_id"),
                TrialRow.name == bindparam("name"),
            ),
            trial_states=select(TrialRow.id, TrialRow.name, TrialRow.state).where(
                TrialRow.experiment_id == bindparam("experiment_id"),
                TrialRow.name.in_(bindparam("names", expanding=True)),
            ),
            last_steps=select(
                ObservationRow.trial_id, ObservationRow.metric, func.max(ObservationRow.step)
            )
            .where(ObservationRow.trial_id.in_(bindparam("trial_ids", expanding=True)))
            .group_by(ObservationRow.trial_id, ObservationRow.metric),
            insert_pushed=insert(ObservationRow)
            .on_conflict_do_nothing(index_elements=["trial_id", "metric", "step"])
            .returning(
                ObservationRow.trial_id,
                ObservationRow.metric,
                ObservationRow.step,
                ObservationRow.value,
                ObservationRow.time,
            ),
            metrics_of_trials=select(
                TrialMetricRow.trial_id,
                TrialMetricRow.name,
                TrialMetricRow.value,
                TrialMetricRow.step,
                TrialMetricRow.count,
            ).where(TrialMetricRow.trial_id.in_(bindparam("trial_ids", expanding=True))),
            insert_observations=insert(ObservationRow)
            .on_conflict_do_nothing(index_elements=["trial_id", "metric", "step"])
            .returning(
                ObservationRow.metric,
                ObservationRow.step,
                ObservationRow.value,
                ObservationRow.time,
            ),
            observation_time=select(ObservationRow.time).where(
                ObservationRow.trial_id == bindparam("trial_id"),
                ObservationRow.metric == bindparam("metric"),
                ObservationRow.step == bindparam("step"),
            ),
            trial_metrics=select(
                TrialMetricRow.name, TrialMetricRow.value, TrialMetricRow.step, TrialMetricRow.count
            ).where(TrialMetricRow.trial_id == bindparam("trial_id")),
            upsert_metrics=upsert.on_conflict_do_update(
                index_elements=["trial_id", "name"],
                set_={
                    "value": upsert.excluded.value,
                    "step": upsert.excluded.step,
                    "count": upsert.excluded.count,
                },
            ),
            set_objective=update(TrialRow)
            .where(TrialRow.id == bindparam("trial_id"))
            .values(objective=bindparam("objective"), steps=bindparam("steps")),
        )


@dataclass
class _Aggregate:
    """A metric's value under its strategy, the step it came from, and how many were seen."""

    value: float | None
    step: int
    count: int


def _fold(
    current: dict[str, _Aggregate],
    objective: Any,
    inserted: Iterable[Sequence[Any]],
    stored_time: Callable[[str, int], Any],
) -> list[str]:
    """Fold new ``(metric, step, value, time)`` observations of one trial into its per-metric
    values under their strategies (in ``current``); returns the metrics touched, sorted.

    Katib's ``latest`` is the value with the latest timestamp (the later step on a tie);
    ``stored_time(metric, step)`` gives the time of the stored value's observation, or ``None``
    when the new observations are later than anything stored.
    """
    touched: set[str] = set()
    times: dict[str, Any] = {}
    for metric, step, value, time in sorted(inserted, key=lambda r: r[1]):
        touched.add(metric)
        entry = current.get(metric)
        if entry is None:
            current[metric] = _Aggregate(value, step, 1)
            times[metric] = time
            continue
        strategy = objective.strategy(metric)
        if strategy is MetricStrategyType.LATEST:
            if metric not in times:
                times[metric] = stored_time(metric, entry.step)
            known = times[metric]
            if known is None or (time, step) >= (known, entry.step):
                entry.value, entry.step, times[metric] = value, step, time
        elif _better(strategy, value, entry.value):
            entry.value, entry.step = value, step
        entry.count += 1
    return sorted(touched)


def _better(strategy: MetricStrategyType, value: float | None, current: float | None) -> bool:
    """Whether a new observation replaces the stored value under min or max."""
    if value is None or not math.isfinite(value):  # NaN (None) or +-inf is never the best
        return False
    if current is None or not math.isfinite(current):
        return True
    return value < current if strategy is MetricStrategyType.MIN else value > current


def trial_name(experiment_name: str, number: int) -> str:
    return f"{experiment_name}-{number:04d}"


@dataclass
class ExperimentTally:
    """Per experiment: trials by state, and the lowest and highest completed objective."""

    counts: dict[TrialState, int]
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class TrialPoint:
    """A trial without its metrics: what the dashboard's plots need."""

    number: int
    name: str
    state: TrialState
    objective: float | None
    message: str | None
    parameters: dict[str, Any]
