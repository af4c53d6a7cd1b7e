"""``tuner run``: an experiment in the foreground, with a live progress bar; Ctrl-C stops it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from tuner.cli.options import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from tuner.cli.render import leaderboard_table
from tuner.cli.source import LocalSource, open_repository
from tuner.errors import TunerError

if TYPE_CHECKING:
    from tuner.events import Event
    from tuner.spec import Experiment
    from tuner.storage import ExperimentRecord, Repository


def run_command(args: argparse.Namespace) -> int:
    from tuner.controller import ExperimentController
    from tuner.runners.local import LocalRunner
    from tuner.spec import load_spec
    from tuner.trials import ExperimentPhase

    experiment = load_spec(Path(args.spec))
    if experiment.spec.trial_template is None:
        raise TunerError(
            "this spec has no trialTemplate: submit it to `tuner serve` and drive it with ask/tell"
        )
    repo = open_repository(args)
    record = create_or_resume(repo, experiment, replace=args.replace)
    runner = LocalRunner(Path(args.workdir).resolve())
    controller = ExperimentController(repo, record, runner, listeners=[print_failed_trial])

    async def drive() -> ExperimentRecord:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(
            signal.SIGINT, controller.request_stop, "interrupted by the user (Ctrl-C)"
        )
        loop.add_signal_handler(signal.SIGTERM, controller.request_stop, "terminated (SIGTERM)")
        done = asyncio.Event()
        bar = None if args.quiet else asyncio.create_task(progress(repo, record, done))
        try:
            return await controller.run()
        finally:
            done.set()
            if bar is not None:
                await asyncio.gather(bar, return_exceptions=True)

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


def print_failed_trial(event: Event) -> None:
    """One line per failed trial as it ends: why (the end of its stderr) and where its log is."""
    if event.kind == "trial" and event.state == "Failed":
        print(f"trial {event.trial} failed: {event.reason or 'no reason given'}", flush=True)


def create_or_resume(
    repo: Repository, experiment: Experiment, *, replace: bool
) -> ExperimentRecord:
    """The stored experiment of the spec's name: resumed if the spec is the same, replaced on
    request, created if there is none."""
    from tuner.errors import NotFound

    try:
        existing = repo.get_experiment(experiment.namespace, experiment.name)
    except NotFound:
        return repo.create_experiment(experiment)
    if replace:
        repo.delete_experiment(existing.id)
        return repo.create_experiment(experiment)
    if existing.experiment.dump() != experiment.dump():
        raise TunerError(
            f"experiment {experiment.namespace}/{experiment.name} already exists with a different "
            "spec; pass --replace to start over, or rename it"
        )
    if existing.phase.finished:
        print(f"experiment {existing.name} already finished ({existing.phase.value}); showing it")
    else:
        print(f"resuming experiment {existing.name} from the database")
    return existing


async def progress(repo: Repository, record: ExperimentRecord, done: asyncio.Event) -> None:
    """A live bar: trials done of max, running, failed, best so far; refreshed from the DB."""
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
            counts = repo.counts(record.id)
            finished = sum(n for state, n in counts.items() if state.finished)
            running = counts[TrialState.RUNNING] + counts[TrialState.CREATED]
            failed = counts[TrialState.FAILED]
            best = repo.best_trial(record)
            best_text = (
                f"best {spec.objective.objective_metric_name}={best.objective:.4g}" if best else ""
            )
            detail = f"running {running}  failed {failed}  {best_text}"
            bar.update(task, completed=finished, detail=detail)
            if done.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.5)
