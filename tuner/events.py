"""Changes of experiments, told to whoever watches: progress bars, the operator, SSE streams."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Literal, TypedDict

from pydantic import BaseModel, ConfigDict

from tuner.errors import NotFound
from tuner.storage import ExperimentRecord, Repository
from tuner.storage.aio import AsyncRepository
from tuner.trials import ACTIVE_STATES, ExperimentPhase

log = logging.getLogger(__name__)

DELETED = "Deleted"
"""The ``state`` of the last ``experiment`` event of a deleted experiment."""
FINISHED_PHASES = frozenset(p.value for p in ExperimentPhase if p.finished)
NO_NEW = 2**31 - 1
"""A trial number above any: ``history_delta`` after it reads only the named trials."""

EventKind = Literal["trial", "best", "experiment"]


class EventFields(TypedDict, total=False):
    """The fields of an :class:`Event` besides its kind and experiment."""

    trial: str
    state: str
    value: float
    reason: str | None


class Event(BaseModel):
    """One change of one experiment: what the controller emits and event streams carry.

    On the wire (``GET .../events``) each is one Server-Sent Event: ``event:`` is ``kind`` and
    ``data:`` this model as JSON (its OpenAPI schema keeps the name ``EventRead``).

    Attributes:
        kind: ``trial`` (a state change), ``best`` (a new optimum) or ``experiment`` (a phase
            change; ``Deleted`` after a deletion).
        trial: the trial of a ``trial`` event.
        state: the new trial state or experiment phase.
        value: the new best objective value of a ``best`` event.
        reason: a human message about the change, when there is one.
    """

    model_config = ConfigDict(frozen=True, title="EventRead")

    kind: EventKind
    namespace: str
    experiment: str
    trial: str | None = None
    state: str | None = None
    value: float | None = None
    reason: str | None = None

    @classmethod
    def phase_of(cls, record: ExperimentRecord) -> Event:
        """The ``experiment`` event of the record's current phase."""
        return cls(
            kind="experiment",
            namespace=record.namespace,
            experiment=record.name,
            state=record.phase.value,
            reason=record.message,
        )

    @property
    def ends_stream(self) -> bool:
        """Whether nothing follows this event: the experiment finished or was deleted."""
        return self.kind == "experiment" and (
            self.state in FINISHED_PHASES or self.state == DELETED
        )


Listener = Callable[[Event], None]


class EventHub:
    """Fan-out of one process's events to listeners and to the streams of each experiment.

    Args:
        db: the database, for streams of experiments another process drives.
        poll_interval: seconds between database polls of such a stream.
    """

    def __init__(self, db: AsyncRepository, poll_interval: float) -> None:
        self.db = db
        self.poll_interval = poll_interval
        self.closing = False
        self._listeners: list[Listener] = []
        self._subscribers: dict[int, set[asyncio.Queue[Event | None]]] = {}

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with every event published here (of any experiment)."""
        self._listeners.append(listener)

    def publish(self, experiment_id: int, event: Event) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed")
        for queue in self._subscribers.get(experiment_id, ()):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning(
                    "an event stream of experiment %s lags; event dropped", event.experiment
                )

    def publish_phase(self, record: ExperimentRecord) -> None:
        self.publish(record.id, Event.phase_of(record))

    def publish_trial(
        self, record: ExperimentRecord, trial: str, state: str, reason: str | None = None
    ) -> None:
        self.publish(
            record.id,
            Event(
                kind="trial",
                namespace=record.namespace,
                experiment=record.name,
                trial=trial,
                state=state,
                reason=reason,
            ),
        )

    def close(self) -> None:
        """End every stream."""
        self.closing = True
        for queues in self._subscribers.values():
            for queue in queues:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)

    async def stream(
        self, record: ExperimentRecord, pushed: Callable[[ExperimentRecord], bool]
    ) -> AsyncIterator[Event]:
        """The experiment's changes until it finishes (or is deleted, or the hub closes).

        The first event is the experiment's current phase. While ``pushed(record)`` holds, this
        process publishes every change of it; otherwise the database is polled every
        ``poll_interval`` seconds.
        """
        queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=1024)
        self._subscribers.setdefault(record.id, set()).add(queue)
        try:
            try:
                record = await self.db.experiment_by_id(record.id)
            except NotFound:
                return
            if record.phase.finished:
                yield Event.phase_of(record)
                return
            # The snapshot a poll compares with is taken before the first event: a change
            # made after a client has seen that event is then never missed.
            poller = await self.db.run(_Poller, record)
            yield Event.phase_of(record)
            while not self.closing:
                try:
                    event = await asyncio.wait_for(queue.get(), self.poll_interval)
                except TimeoutError:
                    event = None
                if event is not None:
                    yield event
                    if event.ends_stream:
                        return
                    continue
                if self.closing:
                    return
                if pushed(record):
                    try:  # a safety net: end with the experiment even if an event was lost
                        current = await self.db.experiment_by_id(record.id)
                    except NotFound:
                        yield Event(
                            kind="experiment",
                            namespace=record.namespace,
                            experiment=record.name,
                            state=DELETED,
                        )
                        return
                    if current.phase.finished:
                        yield Event.phase_of(current)
                        return
                    continue
                polled, finished = await self.db.run(poller.poll)
                for polled_event in polled:
                    yield polled_event
                if finished:
                    return
        finally:
            subscribers = self._subscribers.get(record.id)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._subscribers[record.id]


class _Poller:
    """Database polling for event streams of experiments another process drives.

    Runs on the database thread (its methods take the synchronous repository). Each poll costs
    a few small queries, whatever the number of trials: new trials (by number), the previously
    active trials (in one query), the best trial and the phase.
    """

    def __init__(self, repo: Repository, record: ExperimentRecord) -> None:
        self.record = record
        # Count first, then read the active ones: a trial created in between is then both
        # active and past the count, and the next poll reports it once (as new). The other
        # order would lose it: in neither set.
        self.seen = sum(repo.counts(record.id).values())
        self.active = {t.name: t.state for t in repo.trials(record.id, states=ACTIVE_STATES)}
        best = repo.best_trial(record)
        self.best = best.objective if best is not None else None
        self.phase = record.phase

    def poll(self, repo: Repository) -> tuple[list[Event], bool]:
        record = self.record
        ns, name = record.namespace, record.name
        try:
            current = repo.experiment_by_id(record.id)
        except NotFound:
            return [Event(kind="experiment", namespace=ns, experiment=name, state=DELETED)], True
        events: list[Event] = []
        new = repo.trials(record.id, offset=self.seen)
        self.seen += len(new)
        fresh = {t.name for t in new}
        changed = list(new)
        names = [n for n in self.active if n not in fresh]
        # One query for every trial that was active, not one each (1,000 running: 1,000 reads).
        now = {t.name: t for t in repo.history_delta(record.id, NO_NEW, names)} if names else {}
        for trial_name, state in list(self.active.items()):
            if trial_name in fresh:
                continue
            trial = now.get(trial_name)
            if trial is None:  # deleted meanwhile
                del self.active[trial_name]
                continue
            if trial.state is not state:
                changed.append(trial)
        for trial in changed:
            if trial.state in ACTIVE_STATES:
                self.active[trial.name] = trial.state
            else:
                self.active.pop(trial.name, None)
            events.append(
                Event(
                    kind="trial",
                    namespace=ns,
                    experiment=name,
                    trial=trial.name,
                    state=trial.state.value,
                    reason=trial.message,
                )
            )
        best = repo.best_trial(current)
        objective = current.experiment.spec.objective
        if (
            best is not None
            and best.objective is not None
            and (self.best is None or objective.better(best.objective, self.best))
        ):
            self.best = best.objective
            events.append(Event(kind="best", namespace=ns, experiment=name, value=best.objective))
        if current.phase is not self.phase:
            self.phase = current.phase
            events.append(Event.phase_of(current))
        return events, current.phase.finished
