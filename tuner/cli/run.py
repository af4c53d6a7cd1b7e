"""``tuner run``: an experiment in the foreground, with a live progress bar; Ctrl-C stops it.

It drives the experiment under the experiment's lease (:mod:`tuner.leases`), as a replica of
``tuner serve`` does: a second ``tuner run`` of the same experiment on the same database (or a
server that would resume it) refuses at once, naming the holder, or waits with ``--wait``. A run
killed with SIGKILL leaves its trials running and its lease behind; the next ``tuner run`` sees
that the holder is dead, takes the lease at once and re-adopts the trials.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner.cli.heap import spare_the_heap
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
    from tuner.katib_grpc.remote import validate_remotely
    from tuner.leases import Leases
    from tuner.logs import configure_logging
    from tuner.processes import identity
    from tuner.runners.local import LocalRunner
    from tuner.spec import load_spec
    from tuner.storage.aio import AsyncRepository
    from tuner.trials import ExperimentPhase
    from tuner.warmstart import check_warm_start

    configure_logging(args.log_format, "warning")
    experiment = load_spec(Path(args.spec))
    if experiment.spec.trial_template is None:
        raise TunerError(
            "this spec has no trialTemplate: submit it to `tuner serve` and drive it with ask/tell"
        )
    workdir = Path(args.workdir).resolve()
    runner = LocalRunner(workdir)
    runner.check(experiment)  # SpecError for what a local process cannot run, before storing
    experiment = validate_remotely(experiment)  # an algorithm served by a Katib Suggestion service
    repo = open_repository(args)
    check_warm_start(repo, experiment)  # SpecError: a missing or incompatible source
    owner = identity("run")
    existing = stored(repo, experiment)
    if existing is not None:  # before any change to it: it may be another process's to drive
        hold_lease(repo, existing, owner, wait=args.wait)
    record = create_or_resume(repo, experiment, replace=args.replace)
    if existing is None or existing.id != record.id:
        hold_lease(repo, record, owner, wait=args.wait)
    db = AsyncRepository(repo)  # the controller and the progress bar share its one thread
    leases = Leases(db, owner, LEASE_TTL, LEASE_INTERVAL)
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
        driving = asyncio.create_task(controller.run())

        def lost(_: int) -> None:
            # Another process took the experiment over: leave the trials to it, running.
            print("lost the experiment's lease to another process; leaving it", flush=True)
            runner.detached = True
            driving.cancel()

        keeper = asyncio.create_task(leases.keep(lambda: [record.id], lost, _nothing))
        try:
            return await driving
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            with contextlib.suppress(Exception):
                await leases.release(record.id)
            done.set()
            if bar is not None:
                await asyncio.gather(bar, return_exceptions=True)
            if loopback is not None:
                await loopback.close()
            db.close()

    spare_the_heap()
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


LEASE_TTL = 10.0
"""Seconds ``tuner run``'s lease lasts unrenewed (a hung run; a killed one loses it at once)."""
LEASE_INTERVAL = 2.0
WAIT_POLL = 1.0
"""Seconds between looks at a held lease under ``--wait``."""


def stored(repo: Repository, experiment: Experiment) -> ExperimentRecord | None:
    from tuner.errors import NotFound

    try:
        return repo.get_experiment(experiment.namespace, experiment.name)
    except NotFound:
        return None


def hold_lease(repo: Repository, record: ExperimentRecord, owner: str, *, wait: bool) -> None:
    """Take the experiment's lease for this run, or refuse (:class:`TunerError`) naming its
    holder; with ``wait``, wait until it is free."""
    from tuner import leases

    announced = False
    while not leases.acquire(repo, record.id, owner, LEASE_TTL):
        holder = repo.lease_holder(record.id) or "another process"
        where = f"experiment {record.namespace}/{record.name}"
        if not wait:
            raise TunerError(
                f"{where} is being driven by {holder} on this database; one process drives "
                "an experiment at a time. Wait for it to end (or pass --wait to wait here), "
                f"or stop it with `tuner stop {record.name}`"
            )
        if not announced:
            print(f"{where} is being driven by {holder}; waiting for it to end", flush=True)
            announced = True
        time.sleep(WAIT_POLL)


async def _nothing() -> None:
    """No orphans to scan for: a run drives its one experiment."""


def needs_push_endpoint(experiment: Experiment) -> bool:
    """Whether the trials push their metrics (``tuner.report``), so the run must serve them."""
    from tuner.spec import CollectorKind

    return experiment.spec.metrics_collector_spec.kind is CollectorKind.PUSH


def print_failed_trial(event: Event) -> None:
    """One line per failed trial as it ends: why (the end of its log) and where its log is."""
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
        lifecycle.check_edit(
            existing.name,
            existing.phase,
            existing.reason,
            existing.experiment.spec,
            edited.spec,
            len(repo.history(existing.id)),
        )
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

    A Stopped experiment always continues. A finished one (that
    :func:`tuner.lifecycle.check_edit` let be edited) continues on a raised ``maxTrialCount``
    (:func:`tuner.lifecycle.resumed_by`), or when the edit leaves the stored trials short of
    every ending.
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
        return lifecycle.RESTARTING, f"budget changed ({_describe(changes)})"
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
