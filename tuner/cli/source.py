"""Where the read commands get an experiment's data: this database, or a ``tuner serve``.

The commands read through :class:`ExperimentSource` and render the same typed rows whichever
source answers, so ``tuner leaderboard NAME --db URL`` and ``tuner leaderboard NAME --server URL``
print the same thing. :func:`open_source` picks the source once, from the arguments.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tuner.cli.options import read_token

if TYPE_CHECKING:
    from tuner.client import Client
    from tuner.storage import ExperimentRecord, Repository
    from tuner.trials import Trial


@dataclass(frozen=True)
class ExperimentInfo:
    """What the tables need to know of an experiment.

    Attributes:
        parameters: parameter names, in spec order.
        metrics: metric names, the objective first.
    """

    namespace: str
    name: str
    parameters: list[str]
    metrics: list[str]


@dataclass(frozen=True)
class TrialRow:
    """One trial, as a leaderboard row (:func:`tuner.views.leaderboard_row`) shows it.

    Attributes:
        reason: why the trial ended, unless it succeeded.
        message: the trial's message; filled by :meth:`ExperimentSource.trials`.
    """

    trial: str
    status: str
    parameters: dict[str, Any]
    objective: float | None
    metrics: dict[str, float | None]
    steps: int
    reason: str | None
    message: str | None = None

    @classmethod
    def from_json(cls, row: Mapping[str, Any], message: str | None = None) -> TrialRow:
        """From a leaderboard row (or the REST API's trial, which has its keys and more)."""
        return cls(
            trial=row["trial"],
            status=row["status"],
            parameters=row["parameters"],
            objective=row["objective"],
            metrics=row["metrics"],
            steps=row["steps"],
            reason=row["reason"],
            message=message,
        )

    def to_json(self) -> dict[str, Any]:
        """The leaderboard row: what ``--json`` prints, the REST leaderboard's shape."""
        return {
            "trial": self.trial,
            "status": self.status,
            "parameters": self.parameters,
            "objective": self.objective,
            "metrics": self.metrics,
            "steps": self.steps,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class OptimalTrial:
    """The current optimal trial: its parameter assignments and observed metrics, in order."""

    name: str
    parameters: list[tuple[str, Any]]
    metrics: list[tuple[str, float | None]]


@dataclass(frozen=True)
class ExperimentStatus:
    """An experiment's Katib-shaped status.

    Attributes:
        trial_counts: trials per state, every state.
        total_steps: steps run by all trials; ``steps_without_stopping`` estimates how many a
            run without early stopping would have taken.
        document: the whole status as the REST API serves it (conditions, step totals, times
            too): what ``tuner status --json`` prints.
    """

    phase: str
    reason: str | None
    message: str | None
    trials: int
    trial_counts: dict[str, int]
    optimal: OptimalTrial | None
    document: dict[str, Any]
    total_steps: int = 0
    steps_without_stopping: int | None = None

    @classmethod
    def from_json(cls, status: dict[str, Any]) -> ExperimentStatus:
        """From the status of :func:`tuner.views.experiment_summary` or of the REST API."""
        found = status["currentOptimalTrial"]
        optimal = None
        if found:
            optimal = OptimalTrial(
                name=found["bestTrialName"],
                parameters=[(a["name"], a["value"]) for a in found["parameterAssignments"]],
                metrics=[(m["name"], m["value"]) for m in found["observation"]["metrics"]],
            )
        return cls(
            phase=status["phase"],
            reason=status["reason"],
            message=status["message"],
            trials=status["trials"],
            trial_counts=status["trialCounts"],
            optimal=optimal,
            document=status,
            total_steps=status.get("totalSteps") or 0,
            steps_without_stopping=status.get("stepsWithoutStopping"),
        )


class ExperimentSource(Protocol):
    """The reads of ``tuner leaderboard``, ``trials`` and ``status``, by experiment name.

    A source is bound to one namespace. Missing experiments raise :class:`tuner.errors.NotFound`.
    """

    def experiment(self, name: str) -> ExperimentInfo:
        """The experiment's parameter and metric names."""
        ...

    def leaderboard(
        self, name: str, *, limit: int, metric: str | None, states: Sequence[str] = ()
    ) -> list[TrialRow]:
        """At most ``limit`` trials, best first by the objective (or by ``metric``).

        ``states``: state names or comma lists (:func:`tuner.views.leaderboard_states`);
        none means the trials that finished with their metrics (Succeeded, EarlyStopped).
        An unknown metric or state raises :class:`tuner.errors.InvalidRequest`.
        """
        ...

    def trials(self, name: str, *, state: str | None) -> list[TrialRow]:
        """Every trial (only those in ``state``, if given) in creation order, with messages."""
        ...

    def status(self, name: str) -> ExperimentStatus:
        """Phase, counts and optimal trial."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class LocalSource:
    """Reads the database through a :class:`~tuner.storage.Repository`."""

    def __init__(self, repo: Repository, namespace: str) -> None:
        self.repo = repo
        self.namespace = namespace

    def _record(self, name: str) -> ExperimentRecord:
        return self.repo.get_experiment(self.namespace, name)

    def experiment(self, name: str) -> ExperimentInfo:
        record = self._record(name)
        spec = record.experiment.spec
        return ExperimentInfo(
            namespace=record.namespace,
            name=record.name,
            parameters=[p.name for p in spec.parameters],
            metrics=spec.objective.metric_names,
        )

    def leaderboard(
        self, name: str, *, limit: int, metric: str | None, states: Sequence[str] = ()
    ) -> list[TrialRow]:
        from tuner.views import check_metric, leaderboard_states

        record = self._record(name)
        check_metric(record.experiment.spec.objective, metric)
        chosen = leaderboard_states(states)
        trials = self.repo.leaderboard(record, metric=metric, states=chosen, limit=limit)
        return [_row(t) for t in trials]

    def trials(self, name: str, *, state: str | None) -> list[TrialRow]:
        from tuner.trials import TrialState

        states = [TrialState(state)] if state else None
        return [_row(t) for t in self.repo.trials(self._record(name).id, states=states)]

    def status(self, name: str) -> ExperimentStatus:
        from tuner.views import experiment_summary

        return ExperimentStatus.from_json(experiment_summary(self.repo, self._record(name)))

    def close(self) -> None:
        self.repo.engine.dispose()


def _row(trial: Trial) -> TrialRow:
    from tuner.views import leaderboard_row

    return TrialRow.from_json(leaderboard_row(trial), message=trial.message)


class RemoteSource:
    """Asks a ``tuner serve`` through a :class:`tuner.client.Client` (bound to its namespace)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def experiment(self, name: str) -> ExperimentInfo:
        experiment = self.client.get(name)
        spec, meta = experiment["spec"], experiment["metadata"]
        objective = spec["objective"]
        return ExperimentInfo(
            namespace=meta["namespace"],
            name=meta["name"],
            parameters=[p["name"] for p in spec["parameters"]],
            metrics=[objective["objectiveMetricName"], *objective.get("additionalMetricNames", [])],
        )

    def leaderboard(
        self, name: str, *, limit: int, metric: str | None, states: Sequence[str] = ()
    ) -> list[TrialRow]:
        rows = self.client.leaderboard_rows(name, limit=limit, metric=metric, status=states or None)
        return [TrialRow.from_json(r) for r in rows]

    def trials(self, name: str, *, state: str | None) -> list[TrialRow]:
        rows = self.client.trial_rows(name, state=state)
        return [TrialRow.from_json(r, message=r.get("message")) for r in rows]

    def status(self, name: str) -> ExperimentStatus:
        return ExperimentStatus.from_json(self.client.get(name)["status"])

    def close(self) -> None:
        self.client.close()


def open_client(args: argparse.Namespace) -> Client:
    """A client of ``args.server``, with the token of ``--token-file`` or the environment."""
    from tuner.client import Client

    return Client(args.server, read_token(args.token_file) or "", namespace=args.namespace)


def open_repository(args: argparse.Namespace) -> Repository:
    """The repository of ``--db`` (default: ``$TUNER_DATABASE_URL``, else ``./tuner.db``)."""
    from tuner.storage import Repository, make_engine

    return Repository(make_engine(args.db))


def open_source(args: argparse.Namespace) -> ExperimentSource:
    """The server of ``--server`` (or ``$TUNER_SERVER``) if given, else the database."""
    if args.server:
        return RemoteSource(open_client(args))
    return LocalSource(open_repository(args), args.namespace)
