"""``tuner run``: an experiment in the foreground, with a live progress bar; Ctrl-C stops it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner.cli.options import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from tuner.cli.render import leaderboard_table
from tuner.cli.source import LocalSource, open_repository
from tuner.errors import TunerError

if TYPE_CHECKING:
    from tuner.events import Event
    from tuner.spec import Experiment
    from tuner.storage import ExperimentRecord, Repository
    from tuner.storage.aio import AsyncRepository


def run_command(args: argparse.Namespace) -> int:
    from tuner.controller import ExperimentController
    from tuner.logs import configure_logging
    from tuner.runners.local import LocalRunner
    from tuner.spec import load_spec
    from tuner.storage.aio import AsyncRepository
    from tuner.trials import ExperimentPhase

    configure_logging(args.log_format, "warning")
    experiment = load_spec(Path(args.spec))
    if experiment.spec.trial_template is None:
        raise TunerError(
            "this spec has no trialTemplate: submit it to `tuner serve` and drive it with ask/tell"
        )
    repo = open_repository(args)
    record = create_or_resume(repo, experiment, replace=args.replace)
    db = AsyncRepository(repo)  # the controller and the progress bar share its one thread
    workdir = Path(args.workdir).resolve()
    runner = LocalRunner(workdir)
    loopback = None
    if needs_push_endpoint(experiment) and not record.phase.finished:
        from tuner.cli.loopback import make_loopback

        loopback = make_loopback(workdir)
        controller = ExperimentController(
            db,
            record,
            runner,
            trial_env=loopback.endpoint.trial_env(loopback.url),
            listeners=[print_failed_trial],
        )
        loopback.endpoint.attach(controller)
    else:
        controller = ExperimentController(db, record, runner, listeners=[print_failed_trial])

    async def drive() -> ExperimentRecord:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(
            signal.SIGINT, controller.request_stop, "interrupted by the user (Ctrl-C)"
        )
        loop.add_signal_handler(signal.SIGTERM, controller.request_stop, "terminated (SIGTERM)")
        if loopback is not None:
            await loopback.start()
        done = asyncio.Event()
        bar = None if args.quiet else asyncio.create_task(progress(db, record, done))
        try:
            return await controller.run()
        finally:
            done.set()
            if bar is not None:
                await asyncio.gather(bar, return_exceptions=True)
            if loopback is not None:
                await loopback.close()
            db.close()

    final = asyncio.run(drive())
    print(
        f"Experiment {final.namespace}/{final.name}: {final.phase.value} "
        f"({final.reason}): {final.message}"
    )
    source = LocalSource(repo, final.namespace)
    leaderboard_table(
        source.experiment(final.name), source.leaderboard(final.name, limit=10, metric=None)
    )
    if final.phase is ExperimentPhase.SUCCEEDED:
        return EXIT_OK
    if final.phase is ExperimentPhase.STOPPED:
        return EXIT_INTERRUPTED
    return EXIT_FAILED


def needs_push_endpoint(experiment: Experiment) -> bool:
    """Whether the trials push their metrics (``tuner.report``), so the run must serve them."""
    from tuner.spec import CollectorKind

    return experiment.spec.metrics_collector_spec.kind is CollectorKind.PUSH


def print_failed_trial(event: Event) -> None:
    """One line per failed trial as it ends: why (the end of its stderr) and where its log is."""
    if event.kind == "trial" and event.state == "Failed":
        print(f"trial {event.trial} failed: {event.reason or 'no reason given'}", flush=True)


def create_or_resume(
    repo: Repository, experiment: Experiment, *, replace: bool
) -> ExperimentRecord:
    """The stored experiment of the spec's name: created if there is none, replaced on request,
    else continued.

    A spec that differs from the stored one only in its budget (maxTrialCount,
    parallelTrialCount, maxFailedTrialCount) is a budget edit (:func:`tuner.lifecycle.
    edit_budget`); any other difference needs ``replace``. A Stopped experiment (after Ctrl-C)
    continues; a finished one continues when the edit leaves it room (:func:`budget_resume`).
    """
    from tuner import lifecycle
    from tuner.errors import NotFound
    from tuner.trials import ExperimentPhase

    try:
        existing = repo.get_experiment(experiment.namespace, experiment.name)
    except NotFound:
        return repo.create_experiment(experiment)
    if replace:
        repo.delete_experiment(existing.id)
        return repo.create_experiment(experiment)
    changes = budget_changes(existing.experiment, experiment)
    if changes:
        edited = lifecycle.edit_budget(existing.experiment, changes)
        repo.update_spec(existing.id, edited)
        print(f"experiment {existing.name}: budget changed ({_describe(changes)})")
        resumed = budget_resume(repo, existing, edited, changes)
        if resumed is not None:
            repo.set_phase(existing.id, ExperimentPhase.RUNNING, *resumed)
        existing = repo.experiment_by_id(existing.id)
    elif existing.phase is ExperimentPhase.STOPPED:
        reason, message = lifecycle.resume(existing.name, existing.phase)
        repo.set_phase(existing.id, ExperimentPhase.RUNNING, reason, message)
        existing = repo.experiment_by_id(existing.id)
    if existing.phase.finished:
        print(f"experiment {existing.name} already finished ({existing.phase.value}); showing it")
    else:
        print(f"resuming experiment {existing.name} from the database")
    return existing


def budget_changes(stored: Experiment, given: Experiment) -> dict[str, Any]:
    """The budget fields ``given`` changes; :class:`TunerError` if it changes anything else."""
    from tuner.lifecycle import BUDGET_FIELDS

    old, new = stored.dump(), given.dump()
    changes = {
        key: new["spec"].get(key)
        for key in sorted(BUDGET_FIELDS)
        if old["spec"].get(key) != new["spec"].get(key)
    }
    for data in (old, new):
        for key in BUDGET_FIELDS:
            data["spec"].pop(key, None)
    if old != new:
        raise TunerError(
            f"experiment {given.namespace}/{given.name} already exists with a different "
            "spec (more than its budget); pass --replace to start over, or rename it"
        )
    return changes


def budget_resume(
    repo: Repository, record: ExperimentRecord, edited: Experiment, changes: dict[str, Any]
) -> tuple[str, str] | None:
    """``(reason, message)`` when a budget edit continues the experiment; ``None`` otherwise.

    A Stopped experiment always continues. A finished one continues on a raised
    ``maxTrialCount`` (:func:`tuner.lifecycle.resumed_by`), or when the edit leaves the stored
    trials short of every ending (a raised ``maxFailedTrialCount`` after too many failures).
    """
    from tuner import lifecycle
    from tuner.trials import ExperimentPhase

    if not record.phase.finished:
        return None
    if record.phase is ExperimentPhase.STOPPED:
        return lifecycle.resume(record.name, record.phase)
    resumed = lifecycle.resumed_by(record.experiment.spec, edited.spec, changes)
    if resumed is not None:
        return resumed
    if lifecycle.experiment_verdict(edited.spec, repo.history(record.id)) is None:
        return "ExperimentRestarted", f"budget changed ({_describe(changes)})"
    return None


def _describe(changes: dict[str, Any]) -> str:
    return ", ".join(f"{k} {'unlimited' if v is None else v}" for k, v in changes.items())


async def progress(db: AsyncRepository, record: ExperimentRecord, done: asyncio.Event) -> None:
    """A live bar: trials done of max, running, failed, best so far; refreshed from the DB.

    "failed" counts what uses up ``maxFailedTrialCount`` (Failed and MetricsUnavailable).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tuner.trials import TrialState

    spec = record.experiment.spec
    total = spec.max_trial_count
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task(record.name, total=total, detail="")
        while True:
            counts, best = await db.run(
                lambda repo: (repo.counts(record.id), repo.best_trial(record))
            )
            finished = sum(n for state, n in counts.items() if state.finished)
            running = counts[TrialState.RUNNING] + counts[TrialState.CREATED]
            failed = counts[TrialState.FAILED] + counts[TrialState.METRICS_UNAVAILABLE]
            best_text = (
                f"best {spec.objective.objective_metric_name}={best.objective:.4g}" if best else ""
            )
            detail = f"running {running}  failed {failed}  {best_text}"
            bar.update(task, completed=finished, detail=detail)
            if done.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.5)
