"""Where the read commands get an experiment's data: this database, or a ``tuner serve``.

The commands read through :class:`ExperimentSource` and render the same typed rows whichever
source answers, so ``tuner leaderboard NAME --db URL`` and ``tuner leaderboard NAME --server URL``
print the same thing. :func:`open_source` picks the source once, from the arguments.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
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

    @classmethod
    def from_json(cls, found: dict[str, Any]) -> OptimalTrial:
        """From one ``currentOptimalTrial`` entry."""
        return cls(
            name=found["bestTrialName"],
            parameters=[(a["name"], a["value"]) for a in found["parameterAssignments"]],
            metrics=[(m["name"], m["value"]) for m in found["observation"]["metrics"]],
        )


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
    front: tuple[OptimalTrial, ...] = ()
    """With several objectives: the Pareto front (``optimal`` is then ``None``)."""

    @classmethod
    def from_json(cls, status: dict[str, Any]) -> ExperimentStatus:
        """From the status of :func:`tuner.views.experiment_summary` or of the REST API."""
        found = status["currentOptimalTrial"]
        optimal = None
        front: tuple[OptimalTrial, ...] = ()
        if isinstance(found, list):  # several objectives: the Pareto front
            front = tuple(OptimalTrial.from_json(f) for f in found)
        elif found:
            optimal = OptimalTrial.from_json(found)
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
            front=front,
        )


@dataclass(frozen=True)
class ExperimentItem:
    """One experiment of ``tuner list``."""

    namespace: str
    name: str
    status: ExperimentStatus

    def to_json(self) -> dict[str, Any]:
        """What ``tuner list --json`` prints per experiment."""
        return {"namespace": self.namespace, "name": self.name, "status": self.status.document}


class ExperimentSource(Protocol):
    """What the commands read and change, by experiment name: the same from either source.

    A source is bound to one namespace. Missing experiments raise :class:`tuner.errors.NotFound`.
    """

    def list_experiments(self, *, phase: str | None, limit: int) -> list[ExperimentItem]:
        """Experiments of the namespace, newest first (only those in ``phase``, if given)."""
        ...

    def stop(self, name: str) -> ExperimentStatus:
        """End the experiment as Stopped (a finished one stays as it is)."""
        ...

    def resume(self, name: str) -> ExperimentStatus:
        """Continue a Stopped experiment (:func:`tuner.lifecycle.resume`)."""
        ...

    def delete(self, name: str) -> None:
        """Remove the experiment with its trials and observations."""
        ...

    def edit_budget(self, name: str, changes: dict[str, int | None]) -> ExperimentStatus:
        """Change maxTrialCount, parallelTrialCount or maxFailedTrialCount; raising
        maxTrialCount of a finished experiment resumes it."""
        ...

    def logs(self, name: str, trial: str) -> str:
        """The trial's output (stdout and stderr)."""
        ...

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

    def pareto(self, name: str) -> list[TrialRow]:
        """The Pareto front (:mod:`tuner.pareto`), in creation order."""
        ...

    def status(self, name: str) -> ExperimentStatus:
        """Phase, counts and optimal trial."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class LocalSource:
    """Reads and changes the database through a :class:`~tuner.storage.Repository`.

    Changes are made in the database only: a ``tuner run`` (or ``tuner serve``) driving the
    experiment sees a stop at its next pass and kills its trials; a resumed experiment runs
    when ``tuner run SPEC`` (or a starting ``tuner serve``) drives it. Trial logs are read
    under ``workdir``, where ``tuner run --workdir`` wrote them.
    """

    def __init__(self, repo: Repository, namespace: str, workdir: Path | None = None) -> None:
        self.repo = repo
        self.namespace = namespace
        self.workdir = workdir or Path(".tuner")

    def _record(self, name: str) -> ExperimentRecord:
        from tuner.errors import NotFound

        try:
            return self.repo.get_experiment(self.namespace, name)
        except NotFound as e:
            database = self.repo.engine.url.render_as_string(hide_password=True)
            raise NotFound(f"{e.message} in the database {database}") from e

    def _status(self, record: ExperimentRecord) -> ExperimentStatus:
        from tuner.views import experiment_summary

        return ExperimentStatus.from_json(experiment_summary(self.repo, record))

    def list_experiments(self, *, phase: str | None, limit: int) -> list[ExperimentItem]:
        records = self.repo.list_experiments(namespace=self.namespace, phase=phase, limit=limit)
        return [ExperimentItem(r.namespace, r.name, self._status(r)) for r in records]

    def stop(self, name: str) -> ExperimentStatus:
        from tuner import lifecycle

        record = self._record(name)
        if not record.phase.finished:
            verdict = lifecycle.stopped("stopped by the user")
            self.repo.set_phase(record.id, verdict.phase, verdict.reason, verdict.message)
        return self._status(self.repo.experiment_by_id(record.id))

    def resume(self, name: str) -> ExperimentStatus:
        from tuner import lifecycle
        from tuner.trials import ExperimentPhase

        record = self._record(name)
        reason, message = lifecycle.resume(record.name, record.phase)
        self.repo.set_phase(record.id, ExperimentPhase.RUNNING, reason, message)
        return self._status(self.repo.experiment_by_id(record.id))

    def delete(self, name: str) -> None:
        from tuner.errors import Conflict

        record = self._record(name)
        if not record.phase.finished:
            raise Conflict(
                f"experiment {name} is {record.phase.value}: stop it first (`tuner stop {name}`)"
            )
        self.repo.delete_experiment(record.id)

    def edit_budget(self, name: str, changes: dict[str, int | None]) -> ExperimentStatus:
        from tuner import lifecycle
        from tuner.trials import ExperimentPhase

        record = self._record(name)
        edited = lifecycle.edit_budget(record.experiment, changes)
        trials = len(self.repo.history(record.id))
        old = record.experiment.spec
        lifecycle.check_edit(record.name, record.phase, record.reason, old, edited.spec, trials)
        self.repo.update_spec(record.id, edited)
        resumed = lifecycle.resumed_by(record.experiment.spec, edited.spec, changes)
        if record.phase.finished and resumed is not None:
            self.repo.set_phase(record.id, ExperimentPhase.RUNNING, *resumed)
        return self._status(self.repo.experiment_by_id(record.id))

    def logs(self, name: str, trial: str) -> str:
        from tuner.errors import NotFound
        from tuner.runners.local import LocalRunner

        record = self._record(name)
        self.repo.get_trial(record.id, trial)  # NotFound for an unknown trial
        path = LocalRunner(self.workdir.resolve()).log_path(record.experiment, trial)
        try:
            return path.read_text(errors="replace")
        except OSError as e:
            raise NotFound(
                f"trial {trial} has no log at {path} (give the --workdir `tuner run` used)"
            ) from e

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

    def pareto(self, name: str) -> list[TrialRow]:
        from tuner.pareto_view import front_trials

        return [_row(t) for t in front_trials(self.repo, self._record(name))]

    def trials(self, name: str, *, state: str | None) -> list[TrialRow]:
        from tuner.trials import TrialState

        states = [TrialState(state)] if state else None
        return [_row(t) for t in self.repo.trials(self._record(name).id, states=states)]

    def status(self, name: str) -> ExperimentStatus:
        return self._status(self._record(name))

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

    def pareto(self, name: str) -> list[TrialRow]:
        return [TrialRow.from_json(r) for r in self.client.pareto_rows(name)]

    def trials(self, name: str, *, state: str | None) -> list[TrialRow]:
        rows = self.client.trial_rows(name, state=state)
        return [TrialRow.from_json(r, message=r.get("message")) for r in rows]

    def status(self, name: str) -> ExperimentStatus:
        return ExperimentStatus.from_json(self.client.get(name)["status"])

    def list_experiments(self, *, phase: str | None, limit: int) -> list[ExperimentItem]:
        return [
            ExperimentItem(
                e["metadata"]["namespace"],
                e["metadata"]["name"],
                ExperimentStatus.from_json(e["status"]),
            )
            for e in self.client.list_experiments(phase, limit=limit)
        ]

    def stop(self, name: str) -> ExperimentStatus:
        return ExperimentStatus.from_json(self.client.stop(name)["status"])

    def resume(self, name: str) -> ExperimentStatus:
        return ExperimentStatus.from_json(self.client.resume(name)["status"])

    def delete(self, name: str) -> None:
        self.client.delete(name)

    def edit_budget(self, name: str, changes: dict[str, int | None]) -> ExperimentStatus:
        experiment = self.client.edit_budget(
            name,
            max_trial_count=changes.get("maxTrialCount"),
            parallel_trial_count=changes.get("parallelTrialCount"),
            max_failed_trial_count=changes.get("maxFailedTrialCount"),
        )
        return ExperimentStatus.from_json(experiment["status"])

    def logs(self, name: str, trial: str) -> str:
        return self.client.logs(name, trial)

    def close(self) -> None:
        self.client.close()


def open_client(args: argparse.Namespace) -> Client:
    """A client of ``args.server``, with the token of ``--token-file`` or the environment, else
    (a server on this host) the token file of ``tuner serve``."""
    from tuner.client import Client

    return Client(args.server, read_token(args.token_file), namespace=args.namespace)


def open_repository(args: argparse.Namespace, *, must_exist: bool = False) -> Repository:
    """The repository of ``--db`` (default: ``$TUNER_DATABASE_URL``, else ``./tuner.db``).

    With ``must_exist`` (the commands that only read or change what is stored), a missing
    SQLite file raises :class:`tuner.errors.NotFound` instead of being created.
    """
    from tuner.storage import Repository, make_engine

    return Repository(make_engine(args.db, must_exist=must_exist))


def open_source(args: argparse.Namespace) -> ExperimentSource:
    """The server of ``--server`` (or ``$TUNER_SERVER``) if given, else the database (which
    must exist: these commands never create one)."""
    if args.server:
        return RemoteSource(open_client(args))
    workdir = getattr(args, "workdir", None)
    return LocalSource(
        open_repository(args, must_exist=True),
        args.namespace,
        Path(workdir) if workdir else None,
    )
