"""``tuner``: run, inspect and validate experiments from the command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tuner.errors import SpecError, TunerError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
TOKEN_ENV = "TUNER_API_TOKEN"
SERVER_ENV = "TUNER_SERVER"
SECRET_ENV = "TUNER_SECRET"
API_URL_ENV = "TUNER_API_URL"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except SpecError as e:
        _print_spec_errors(e)
        return EXIT_USAGE
    except TunerError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return EXIT_FAILED
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tuner", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def db_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--db", help="database URL (default: $TUNER_DATABASE_URL or sqlite:///./tuner.db)"
        )

    def server_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--server",
            default=os.environ.get(SERVER_ENV) or None,
            help=f"query a `tuner serve` at this URL instead of the database (${SERVER_ENV})",
        )
        p.add_argument(
            "--token-file", help=f"file holding the server's API token (default: ${TOKEN_ENV})"
        )

    def ref_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("name", help="experiment name")
        p.add_argument("-n", "--namespace", default="default")
        db_option(p)
        server_options(p)

    p = sub.add_parser("run", help="run an experiment in the foreground")
    p.add_argument("spec", help="Experiment spec (YAML or JSON)")
    db_option(p)
    p.add_argument("--workdir", default=".tuner", help="where trial logs go (default .tuner)")
    p.add_argument(
        "--replace", action="store_true", help="delete a stored experiment of the same name first"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("validate", help="check a spec without running it")
    p.add_argument("spec")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("leaderboard", help="trials best first")
    ref_options(p)
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--metric", help="order by this metric instead of the objective")
    p.add_argument("--json", action="store_true", help="JSON array output")
    p.set_defaults(func=_cmd_leaderboard)

    p = sub.add_parser("trials", help="list the trials of an experiment")
    ref_options(p)
    p.add_argument("--state", help="only trials in this state")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_trials)

    p = sub.add_parser("status", help="an experiment's phase, counts and optimal trial")
    ref_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser(
        "serve", help="run the REST API; it drives every Running experiment in the database"
    )
    db_option(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--token-file",
        help=f"file holding the API token every request must bear (default: ${TOKEN_ENV})",
    )
    p.add_argument("--workdir", default=".tuner", help="trial logs and the server secret")
    p.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    p.add_argument("--replica-id", help="this replica's name in experiment leases")
    p.add_argument(
        "--lease-ttl",
        type=float,
        default=10.0,
        help="seconds before another replica takes over a dead one's experiments (default 10)",
    )
    p.add_argument(
        "--trial-api-url",
        default=os.environ.get(API_URL_ENV) or None,
        help=f"the URL trials reach this server at, given to them as ${API_URL_ENV} (default: "
        f"${API_URL_ENV}, else the listening address; on a cluster: the Service's DNS name)",
    )
    k8s = p.add_argument_group("Kubernetes (--runner kubernetes)")
    k8s.add_argument(
        "--runner",
        choices=["local", "kubernetes"],
        default="local",
        help="run trials as host processes (local, default) or as batch/v1 Jobs (kubernetes)",
    )
    k8s.add_argument(
        "--kubeconfig",
        help="kubeconfig file (default: in-cluster config in a Pod, else $KUBECONFIG)",
    )
    k8s.add_argument("--context", help="kubeconfig context (default: the current one)")
    k8s.add_argument(
        "--namespace-scope",
        metavar="NAMESPACE",
        help="the operator watches Experiment resources in this namespace only (default: all)",
    )
    k8s.add_argument(
        "--no-operator",
        action="store_true",
        help="do not watch Experiment resources (experiments come through the REST API only)",
    )
    k8s.add_argument(
        "--resync-interval",
        type=float,
        default=30.0,
        help="seconds between status checks of every Experiment resource (default 30)",
    )
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("submit", help="submit a spec to a `tuner serve`")
    p.add_argument("spec", help="Experiment spec (YAML or JSON)")
    server_options(p)
    p.add_argument(
        "-n", "--namespace", help="namespace, when the spec's metadata.namespace does not give it"
    )
    p.add_argument("--json", action="store_true", help="print the stored experiment as JSON")
    p.set_defaults(func=_cmd_submit)

    p = sub.add_parser("db", help="database schema: upgrade applies the migrations")
    p.add_argument("action", choices=["upgrade", "current"])
    db_option(p)
    p.set_defaults(func=_cmd_db)
    return parser


# -- commands ------------------------------------------------------------------------------


def _cmd_validate(args: argparse.Namespace) -> int:
    from tuner.spec import load_spec

    experiment = load_spec(Path(args.spec))
    print(f"{args.spec}: valid Experiment {experiment.namespace}/{experiment.name}")
    return EXIT_OK


def _repo(args: argparse.Namespace) -> Any:
    from tuner.storage import Repository, make_engine

    return Repository(make_engine(args.db))


def _cmd_run(args: argparse.Namespace) -> int:
    from tuner.controller import ExperimentController
    from tuner.runners.local import LocalRunner
    from tuner.spec import load_spec
    from tuner.trials import ExperimentPhase

    experiment = load_spec(Path(args.spec))
    if experiment.spec.trial_template is None:
        raise TunerError(
            "this spec has no trialTemplate: submit it to `tuner serve` and drive it with ask/tell"
        )
    repo = _repo(args)
    record = _create_or_resume(repo, experiment, replace=args.replace)
    runner = LocalRunner(Path(args.workdir).resolve())
    controller = ExperimentController(repo, record, runner)

    async def drive() -> Any:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(
            signal.SIGINT, controller.request_stop, "interrupted by the user (Ctrl-C)"
        )
        loop.add_signal_handler(signal.SIGTERM, controller.request_stop, "terminated (SIGTERM)")
        done = asyncio.Event()
        progress = None if args.quiet else asyncio.create_task(_progress(repo, record, done))
        try:
            return await controller.run()
        finally:
            done.set()
            if progress is not None:
                await asyncio.gather(progress, return_exceptions=True)

    final = asyncio.run(drive())
    print(
        f"Experiment {final.namespace}/{final.name}: {final.phase.value} "
        f"({final.reason}): {final.message}"
    )
    _print_leaderboard(repo, final, limit=10, metric=None)
    if final.phase is ExperimentPhase.SUCCEEDED:
        return EXIT_OK
    if final.phase is ExperimentPhase.STOPPED:
        return EXIT_INTERRUPTED
    return EXIT_FAILED


def _create_or_resume(repo: Any, experiment: Any, *, replace: bool) -> Any:
    from tuner.errors import NotFound

    try:
        existing = repo.get_experiment(experiment.namespace, experiment.name)
    except NotFound:
        return repo.create_experiment(experiment)
    if replace:
        repo.delete_experiment(existing.id)
        return repo.create_experiment(experiment)
    if existing.spec.dump() != experiment.dump():
        raise TunerError(
            f"experiment {experiment.namespace}/{experiment.name} already exists with a different "
            "spec; pass --replace to start over, or rename it"
        )
    if existing.phase.finished:
        print(f"experiment {existing.name} already finished ({existing.phase.value}); showing it")
    else:
        print(f"resuming experiment {existing.name} from the database")
    return existing


async def _progress(repo: Any, record: Any, done: asyncio.Event) -> None:
    """A live bar: trials done of max, running, failed, best so far; refreshed from the DB."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    spec = record.spec.spec
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
            running = counts[_state("Running")] + counts[_state("Created")]
            failed = counts[_state("Failed")]
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


def _state(name: str) -> Any:
    from tuner.trials import TrialState

    return TrialState(name)


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    if args.server:
        with _client(args) as client:
            experiment = client.get(args.name)
            rows = client.leaderboard_rows(args.name, limit=args.limit, metric=args.metric)
        spec = experiment["spec"]
        parameters = [p["name"] for p in spec["parameters"]]
        objective = spec["objective"]
        metrics = [objective["objectiveMetricName"], *objective.get("additionalMetricNames", [])]
    else:
        from tuner.views import leaderboard_row

        repo = _repo(args)
        record = repo.get_experiment(args.namespace, args.name)
        trials = repo.leaderboard(record, metric=args.metric, limit=args.limit)
        rows = [leaderboard_row(t) for t in trials]
        parameters = [p.name for p in record.spec.spec.parameters]
        metrics = record.spec.spec.objective.metric_names
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    _leaderboard_table(f"{args.namespace}/{args.name}", parameters, metrics, rows)
    return EXIT_OK


def _print_leaderboard(repo: Any, record: Any, *, limit: int, metric: str | None) -> None:
    from tuner.views import leaderboard_row

    spec = record.spec.spec
    rows = [leaderboard_row(t) for t in repo.leaderboard(record, metric=metric, limit=limit)]
    _leaderboard_table(
        f"{record.namespace}/{record.name}",
        [p.name for p in spec.parameters],
        spec.objective.metric_names,
        rows,
    )


def _leaderboard_table(
    title: str, parameters: list[str], metrics: list[str], rows: list[dict[str, Any]]
) -> None:
    """Leaderboard rows (the shape of ``tuner leaderboard --json``) as a table."""
    from rich.table import Table

    table = Table(title=f"Leaderboard: {title}")
    table.add_column("#", justify="right")
    table.add_column("trial")
    table.add_column("status")
    for p in parameters:
        table.add_column(p, justify="right")
    for m in metrics:
        table.add_column(m, justify="right", style="bold" if m == metrics[0] else "")
    table.add_column("steps", justify="right")
    for rank, row in enumerate(rows, 1):
        table.add_row(
            str(rank),
            row["trial"],
            row["status"],
            *[_fmt(row["parameters"].get(p)) for p in parameters],
            *[_fmt(row["metrics"].get(m)) for m in metrics],
            str(row["steps"]),
        )
    _console().print(table)


def _console() -> Any:
    from rich.console import Console

    # Piped output (CI logs, files) gets a wide table instead of truncated columns.
    return Console() if sys.stdout.isatty() else Console(width=200)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cmd_trials(args: argparse.Namespace) -> int:
    from rich.table import Table

    from tuner.views import leaderboard_row

    # Leaderboard-shaped rows (what --json prints), and each trial's message for the table.
    rows: list[dict[str, Any]]
    if args.server:
        with _client(args) as client:
            trials = client.trial_rows(args.name, state=args.state)
        keys = ("trial", "status", "parameters", "objective", "metrics", "steps", "reason")
        rows = [{k: t[k] for k in keys} for t in trials]
        messages = [t.get("message") for t in trials]
    else:
        from tuner.trials import TrialState

        repo = _repo(args)
        record = repo.get_experiment(args.namespace, args.name)
        states = [TrialState(args.state)] if args.state else None
        stored = repo.trials(record.id, states=states)
        rows = [leaderboard_row(t) for t in stored]
        messages = [t.message for t in stored]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    table = Table(title=f"Trials: {args.namespace}/{args.name}")
    for column in ("trial", "status", "parameters", "objective", "steps", "message"):
        table.add_column(column)
    for row, message in zip(rows, messages, strict=True):
        params = " ".join(f"{k}={_fmt(v)}" for k, v in row["parameters"].items())
        table.add_row(
            row["trial"],
            row["status"],
            params,
            _fmt(row["objective"]),
            str(row["steps"]),
            message or "",
        )
    _console().print(table)
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    status: dict[str, Any]
    if args.server:
        with _client(args) as client:
            status = client.get(args.name)["status"]
    else:
        from tuner.views import experiment_summary

        repo = _repo(args)
        status = experiment_summary(repo, repo.get_experiment(args.namespace, args.name))
    if args.json:
        print(json.dumps(status, indent=2))
        return EXIT_OK
    print(f"{args.namespace}/{args.name}: {status['phase']}", end="")
    print(f" ({status['reason']}: {status['message']})" if status["reason"] else "")
    counts = ", ".join(f"{k} {v}" for k, v in status["trialCounts"].items() if v)
    print(f"trials: {status['trials']} ({counts or 'none'})")
    optimal = status["currentOptimalTrial"]
    if optimal:
        params = ", ".join(f"{a['name']}={a['value']}" for a in optimal["parameterAssignments"])
        values = ", ".join(f"{m['name']}={m['value']}" for m in optimal["observation"]["metrics"])
        print(f"optimal trial: {optimal['bestTrialName']} ({params}) -> {values}")
    return EXIT_OK


# -- against a server -------------------------------------------------------------------------


def _token(token_file: str | None) -> str | None:
    """The API token: the content of ``token_file``, else ``$TUNER_API_TOKEN``."""
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as e:
            raise TunerError(f"cannot read the token file {token_file}: {e.strerror}") from e
        if not token:
            raise TunerError(f"the token file {token_file} is empty")
        return token
    return os.environ.get(TOKEN_ENV) or None


def _client(args: argparse.Namespace) -> Any:
    from tuner.client import Client

    return Client(args.server, _token(args.token_file) or "", namespace=args.namespace)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _connect_url(host: str, port: int) -> str:
    """The URL local trials reach the server at (TUNER_API_URL)."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host.strip("[]"):
        host = f"[{host.strip('[]')}]"
    return f"http://{host}:{port}"


def _cmd_db(args: argparse.Namespace) -> int:
    from tuner.storage.engine import current_revision, make_engine, migrate

    engine = make_engine(args.db, create_schema=False)
    if args.action == "upgrade":
        migrate(engine)
    print(f"schema revision: {current_revision(engine) or 'none (run `tuner db upgrade`)'}")
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    token = _token(args.token_file)
    if token is None and not is_loopback(args.host):
        print(
            f"error: refusing to listen on {args.host} without an API token: the local runner "
            "executes the commands of the specs it receives, so an open port would let anyone "
            f"who can reach it run code on this host. Set ${TOKEN_ENV} or pass --token-file, "
            "or listen on 127.0.0.1.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not 0 < args.port < 65536:
        print("error: --port must be between 1 and 65535", file=sys.stderr)
        return EXIT_USAGE

    import logging

    import uvicorn

    from tuner.api.app import create_app
    from tuner.settings import Settings

    # The service's own messages (controllers, runner, operator) at the server's log level.
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tuner").setLevel(args.log_level.upper())
    url = _connect_url(args.host, args.port)
    secret = os.environ.get(SECRET_ENV)
    settings = Settings(
        db_url=args.db,
        api_token=token,
        secret=secret.encode() if secret else None,
        workdir=Path(args.workdir),
        api_url=args.trial_api_url or url,
        lease_ttl=args.lease_ttl,
        lease_interval=max(0.5, args.lease_ttl / 5),
    )
    if args.replica_id:
        settings.replica_id = args.replica_id
    if args.runner == "kubernetes":
        _kubernetes_settings(settings, args)
    print(
        f"tuner serve: {url} ({'API token required' if token else 'no API token: loopback only'})",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=5,
    )
    return EXIT_OK


def _kubernetes_settings(settings: Any, args: argparse.Namespace) -> None:
    """Trials as Jobs, and the operator of Experiment resources beside the service."""
    from functools import partial

    from tuner.operator import resource_owner_reference, run_operator
    from tuner.runners.kubernetes import KubernetesRunner

    runner = KubernetesRunner(
        kubeconfig=args.kubeconfig,
        context=args.context,
        owner_reference=resource_owner_reference,
    )
    settings.runner = runner
    if not args.no_operator:
        settings.companions.append(
            partial(
                run_operator,
                runner=runner,
                namespace=args.namespace_scope,
                resync_interval=args.resync_interval,
            )
        )


def _cmd_submit(args: argparse.Namespace) -> int:
    if not args.server:
        raise TunerError(
            f"submit needs --server URL (or ${SERVER_ENV}); `tuner run SPEC` runs a spec here"
        )
    with _client(args) as client:
        experiment = client.submit(Path(args.spec), namespace=args.namespace)
    if args.json:
        print(json.dumps(experiment, indent=2))
        return EXIT_OK
    meta, status = experiment["metadata"], experiment["status"]
    print(f"experiment {meta['namespace']}/{meta['name']} submitted: {status['phase']}")
    return EXIT_OK


def _print_spec_errors(error: SpecError) -> None:
    print(f"error: invalid Experiment spec ({len(error.errors)} problem(s)):", file=sys.stderr)
    for e in error.errors:
        print(f"  {e.path}: {e.message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
