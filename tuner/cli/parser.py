"""The arguments of every ``tuner`` command."""

from __future__ import annotations

import argparse
import os

from tuner.cli.commands import (
    db_command,
    leaderboard_command,
    status_command,
    submit_command,
    trials_command,
    validate_command,
)
from tuner.cli.options import API_URL_ENV, SERVER_ENV, TOKEN_ENV
from tuner.cli.run import run_command
from tuner.cli.serve import serve_command

DESCRIPTION = "``tuner``: run, inspect and validate experiments from the command line."


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``tuner`` command; each subcommand sets ``func``, its implementation."""
    parser = argparse.ArgumentParser(prog="tuner", description=DESCRIPTION)
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
    p.set_defaults(func=run_command)

    p = sub.add_parser("validate", help="check a spec without running it")
    p.add_argument("spec")
    p.set_defaults(func=validate_command)

    p = sub.add_parser("leaderboard", help="trials best first")
    ref_options(p)
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--metric", help="order by this metric instead of the objective")
    p.add_argument("--json", action="store_true", help="JSON array output")
    p.set_defaults(func=leaderboard_command)

    p = sub.add_parser("trials", help="list the trials of an experiment")
    ref_options(p)
    p.add_argument("--state", help="only trials in this state")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=trials_command)

    p = sub.add_parser("status", help="an experiment's phase, counts and optimal trial")
    ref_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=status_command)

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
        "--ask-timeout",
        type=float,
        metavar="SECONDS",
        help="an ask/tell trial neither reported nor told for this long is Killed (AskExpired) "
        "and frees its slot (default 86400, a day)",
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
    p.set_defaults(func=serve_command)

    p = sub.add_parser("submit", help="submit a spec to a `tuner serve`")
    p.add_argument("spec", help="Experiment spec (YAML or JSON)")
    server_options(p)
    p.add_argument(
        "-n", "--namespace", help="namespace, when the spec's metadata.namespace does not give it"
    )
    p.add_argument("--json", action="store_true", help="print the stored experiment as JSON")
    p.set_defaults(func=submit_command)

    p = sub.add_parser("db", help="database schema: upgrade applies the migrations")
    p.add_argument("action", choices=["upgrade", "current"])
    db_option(p)
    p.set_defaults(func=db_command)
    return parser
