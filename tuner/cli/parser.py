"""The arguments of every ``tuner`` command."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import NoReturn

from tuner.cli.commands import (
    db_command,
    leaderboard_command,
    pareto_command,
    status_command,
    submit_command,
    trials_command,
    validate_command,
)
from tuner.cli.enqueue import add_enqueue_command
from tuner.cli.katib_grpc import add_serve_options, add_suggestion_service_command
from tuner.cli.manage import (
    budget_command,
    delete_command,
    list_command,
    logs_command,
    resume_command,
    stop_command,
)
from tuner.cli.options import API_URL_ENV, EXIT_USAGE, SERVER_ENV, TOKEN_ENV
from tuner.cli.optuna_cmd import add_optuna_commands
from tuner.cli.run import run_command
from tuner.cli.serve import serve_command
from tuner.collectors.sidecar import DEFAULT_COLLECTOR_IMAGE, RELAY_COMMAND
from tuner.k8s.log_slots import DEFAULT_FOLLOWS
from tuner.k8s.ratelimit import DEFAULT_BURST, DEFAULT_QPS
from tuner.names import ENV_COLLECTOR_IMAGE, ENV_INSTALLATION
from tuner.trials import ExperimentPhase, TrialState

DESCRIPTION = "``tuner``: run, inspect and validate experiments from the command line."


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit 2), no usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def at_least(minimum: int) -> Callable[[str], int]:
    """An argument type: an integer of ``minimum`` or more."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, not {value}")
        return value

    return parse


positive_int = at_least(1)
count = at_least(0)


def rate(text: str) -> float:
    """An argument type: a number of requests a second, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more, not {text}")
    return value


def tuner_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tuner")
    except PackageNotFoundError:
        return "unknown (not installed)"


def log_format_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="log events as text or as JSON objects, one per line (default text)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``tuner`` command; each subcommand sets ``func``, its implementation."""
    parser = Parser(prog="tuner", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"tuner {tuner_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    def db_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--db",
            help="database URL or SQLite file path "
            "(default: $TUNER_DATABASE_URL or sqlite:///./tuner.db)",
        )

    def server_options(p: argparse.ArgumentParser, what: str) -> None:
        p.add_argument(
            "--server",
            default=os.environ.get(SERVER_ENV) or None,
            help=f"{what} (default: ${SERVER_ENV})",
        )
        p.add_argument(
            "--token-file", help=f"file holding the server's API token (default: ${TOKEN_ENV})"
        )

    def source_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("-n", "--namespace", default="default", help="namespace (default default)")
        db_option(p)
        server_options(p, "ask the `tuner serve` at this URL instead of reading the database")

    def ref_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("name", help="experiment name")
        source_options(p)

    p = sub.add_parser("run", help="run an experiment in the foreground")
    p.add_argument("spec", help="Experiment spec (YAML or JSON)")
    db_option(p)
    p.add_argument("--workdir", default=".tuner", help="where trial logs go (default .tuner)")
    p.add_argument(
        "--replace", action="store_true", help="delete a stored experiment of the same name first"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--wait",
        action="store_true",
        help="when another process drives the experiment, wait for it to end instead of refusing",
    )
    log_format_option(p)
    p.set_defaults(func=run_command)

    p = sub.add_parser("validate", help="check a spec without running it")
    p.add_argument("spec", help="Experiment spec (YAML or JSON)")
    p.set_defaults(func=validate_command)

    p = sub.add_parser("leaderboard", help="trials best first")
    ref_options(p)
    p.add_argument("--limit", type=positive_int, default=20, help="at most this many (default 20)")
    p.add_argument("--metric", help="order by this metric instead of the objective")
    p.add_argument(
        "--state",
        action="append",
        metavar="STATE",
        help=(
            "only trials in these states (repeatable, or comma-separated; `all` for every "
            "state); default: Succeeded and EarlyStopped, the trials that finished with metrics"
        ),
    )
    p.add_argument("--json", action="store_true", help="JSON array output")
    p.set_defaults(func=leaderboard_command)

    p = sub.add_parser("pareto", help="the Pareto front: trials no other trial beats everywhere")
    ref_options(p)
    p.add_argument("--json", action="store_true", help="JSON array output")
    p.set_defaults(func=pareto_command)

    p = sub.add_parser("trials", help="list the trials of an experiment")
    ref_options(p)
    p.add_argument(
        "--state", choices=[s.value for s in TrialState], help="only trials in this state"
    )
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=trials_command)

    p = sub.add_parser("status", help="an experiment's phase, counts and optimal trial")
    ref_options(p)
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=status_command)

    p = sub.add_parser(
        "serve", help="run the REST API; it drives every Running experiment in the database"
    )
    db_option(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--token-file",
        help=f"file holding the API token every request must bear (default: ${TOKEN_ENV}, "
        "else the user's token file, created on first start and printed at each start)",
    )
    p.add_argument(
        "--no-token",
        action="store_true",
        help="no API token at all (loopback addresses only; web pages are still kept out by "
        "the Host, Origin and Content-Type checks)",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name clients may address this server by (repeatable; default: the "
        "address it listens on, and the loopback names on loopback)",
    )
    p.add_argument("--workdir", default=".tuner", help="trial directories and logs")
    p.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    log_format_option(p)
    p.add_argument("--replica-id", help="this replica's name in experiment leases")
    p.add_argument(
        "--lease-ttl",
        type=float,
        default=10.0,
        help="seconds before another replica takes over a dead one's experiments (default 10)",
    )
    p.add_argument(
        "--ask-timeout",
        type=float,
        metavar="SECONDS",
        help="an ask/tell trial neither reported nor told for this long is Killed (AskExpired) "
        "and frees its slot (default 86400, a day)",
    )
    p.add_argument(
        "--max-pending-reports",
        type=positive_int,
        default=256,
        metavar="N",
        help="metric reports in flight beyond which a new one is answered 503 with "
        "Retry-After at once, rather than queued (default 256)",
    )
    p.add_argument(
        "--wrong-token-limit",
        type=positive_int,
        default=10,
        metavar="N",
        help="wrong API tokens from one address within a minute before every token from it is "
        "refused (429) for the rest of that minute (default 10)",
    )
    p.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="uvicorn's event loop (default auto: uvloop when installed)",
    )
    p.add_argument(
        "--http",
        choices=["auto", "h11", "httptools"],
        default="auto",
        help="uvicorn's HTTP parser (default auto: httptools when installed)",
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
        "--installation",
        default=os.environ.get(ENV_INSTALLATION) or "default",
        help="this installation's name: it labels every Kubernetes object it creates, and it "
        "ignores the objects of other installations in the same namespaces (default: "
        f"${ENV_INSTALLATION}, else 'default')",
    )
    k8s.add_argument(
        "--collector-image",
        default=os.environ.get(ENV_COLLECTOR_IMAGE) or DEFAULT_COLLECTOR_IMAGE,
        help="image of the metrics-collector sidecar that File and TensorFlowEvent trials get "
        f"(tuner's own image; default: ${ENV_COLLECTOR_IMAGE}, else {DEFAULT_COLLECTOR_IMAGE})",
    )
    k8s.add_argument(
        "--collector-command",
        default=" ".join(RELAY_COMMAND),
        help="how the sidecar starts the relay in that image (shell words; default: "
        f"{' '.join(RELAY_COMMAND)!r})",
    )
    k8s.add_argument(
        "--kube-api-qps",
        type=rate,
        default=DEFAULT_QPS,
        help="requests a second this service sends to the apiserver, on average (client-side "
        f"flow control; default {DEFAULT_QPS:g}; 0: no limit)",
    )
    k8s.add_argument(
        "--kube-api-burst",
        type=positive_int,
        default=DEFAULT_BURST,
        help=f"requests it may send at once after a quiet spell (default {DEFAULT_BURST})",
    )
    k8s.add_argument(
        "--kube-log-streams",
        type=positive_int,
        default=DEFAULT_FOLLOWS,
        help="StdOut trials whose logs are followed at once; the others' logs are read in one "
        f"request when their container ends (default {DEFAULT_FOLLOWS})",
    )
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
        "--lease-namespace",
        metavar="NAMESPACE",
        help="where the operator replicas' leader-election Lease lives (default: $POD_NAMESPACE, "
        "else the service account's namespace in a Pod, else 'default')",
    )
    k8s.add_argument(
        "--leader-lease-duration",
        type=float,
        default=15.0,
        help="seconds without renewal after which another replica takes the operator's "
        "leadership over (default 15)",
    )
    k8s.add_argument(
        "--resync-interval",
        type=float,
        default=30.0,
        help="seconds between status checks of every Experiment resource (default 30)",
    )
    add_serve_options(p)
    p.set_defaults(func=serve_command)

    add_suggestion_service_command(sub)

    p = sub.add_parser("submit", help="submit a spec to a `tuner serve`")
    p.add_argument("spec", help="Experiment spec (YAML or JSON)")
    server_options(p, "the `tuner serve` to submit to (required)")
    p.add_argument(
        "-n", "--namespace", help="namespace, when the spec's metadata.namespace does not give it"
    )
    p.add_argument("--json", action="store_true", help="print the stored experiment as JSON")
    p.set_defaults(func=submit_command)

    p = sub.add_parser("db", help="database schema: upgrade applies the migrations")
    p.add_argument("action", choices=["upgrade", "current"])
    db_option(p)
    p.set_defaults(func=db_command)

    p = sub.add_parser("list", help="experiments of a namespace, newest first")
    source_options(p)
    p.add_argument(
        "--phase", choices=[s.value for s in ExperimentPhase], help="only experiments in this phase"
    )
    p.add_argument(
        "--limit", type=positive_int, default=100, help="at most this many (default 100)"
    )
    p.add_argument("--json", action="store_true", help="JSON array output")
    p.set_defaults(func=list_command)

    p = sub.add_parser("stop", help="kill an experiment's running trials and mark it Stopped")
    ref_options(p)
    p.set_defaults(func=stop_command)

    p = sub.add_parser("resume", help="continue a Stopped experiment with its budget as it is")
    ref_options(p)
    p.set_defaults(func=resume_command)

    p = sub.add_parser("delete", help="remove an experiment with its trials and observations")
    ref_options(p)
    p.set_defaults(func=delete_command)

    p = sub.add_parser(
        "budget", help="change an experiment's budget; a raised --max-trial-count continues it"
    )
    ref_options(p)
    p.add_argument("--max-trial-count", type=positive_int, help="new maxTrialCount")
    p.add_argument("--parallel-trial-count", type=positive_int, help="new parallelTrialCount")
    p.add_argument("--max-failed-trial-count", type=count, help="new maxFailedTrialCount")
    p.set_defaults(func=budget_command)

    p = sub.add_parser("logs", help="a trial's output (stdout and stderr)")
    p.add_argument("name", help="experiment name")
    p.add_argument("trial", help="trial name")
    source_options(p)
    p.add_argument(
        "--workdir", default=".tuner", help="where `tuner run` wrote trial logs (default .tuner)"
    )
    p.set_defaults(func=logs_command)

    add_optuna_commands(sub, db_option)  # import-optuna, export-optuna
    add_enqueue_command(sub, source_options)
    return parser
