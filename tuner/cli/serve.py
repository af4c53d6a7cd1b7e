"""``tuner serve``: the REST API and dashboard, driving every Running experiment."""

from __future__ import annotations

import argparse
import copy
import ipaddress
import logging
import os
import re
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tuner.cli.heap import spare_the_heap
from tuner.cli.katib_grpc import grpc_settings
from tuner.cli.options import EXIT_OK, EXIT_USAGE, SECRET_ENV, TOKEN_ENV, read_token
from tuner.logs import configure_logging
from tuner.tokens import (
    SECRET_FILE,
    default_api_token_path,
    default_secret_path,
    load_or_create_api_token,
)

if TYPE_CHECKING:
    from tuner.settings import Settings

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def serve_command(args: argparse.Namespace) -> int:
    token = read_token(args.token_file)
    if token is not None and args.no_token:
        print(
            f"error: --no-token contradicts the API token of --token-file or ${TOKEN_ENV}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.no_token and not is_loopback(args.host):
        print(
            f"error: refusing to listen on {args.host} without an API token: the local runner "
            "executes the commands of the specs it receives, so an open port would let anyone "
            "who can reach it run code on this host. Drop --no-token, or listen on 127.0.0.1.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not 0 < args.port < 65536:
        print("error: --port must be between 1 and 65535", file=sys.stderr)
        return EXIT_USAGE
    if args.ask_timeout is not None and not args.ask_timeout > 0:
        print("error: --ask-timeout must be a positive number of seconds", file=sys.stderr)
        return EXIT_USAGE
    token_note = "no API token (--no-token): loopback only"
    if token is not None:
        token_note = "API token required"
    elif not args.no_token:
        path = default_api_token_path()
        token, _ = load_or_create_api_token(path)
        # Printed once, here, like Jupyter's: the dashboard's login asks for it; the command
        # line and tuner.client read the file when they talk to a server on this host.
        token_note = f"API token required: {token} (kept in {path}, mode 0600)"

    import uvicorn

    from tuner.api.app import create_app
    from tuner.api.guards import allowed_hosts
    from tuner.settings import Settings

    url = connect_url(args.host, args.port)
    secret = os.environ.get(SECRET_ENV)
    trial_url = args.trial_api_url or url
    settings = Settings(
        db_url=args.db,
        api_token=token,
        allowed_hosts=allowed_hosts(
            args.host, args.allowed_host, also=[urlsplit(trial_url).hostname or ""]
        ),
        secret=secret.encode() if secret else None,
        workdir=Path(args.workdir),
        api_url=trial_url,
        lease_ttl=args.lease_ttl,
        lease_interval=max(0.5, args.lease_ttl / 5),
        max_pending_reports=args.max_pending_reports,
        wrong_token_limit=args.wrong_token_limit,
    )
    if args.ask_timeout is not None:
        settings.ask_timeout = args.ask_timeout
    if args.replica_id:
        settings.replica_id = args.replica_id
    # The service's own events (controllers, runner, operator) at the server's log level, in
    # the chosen format, one per line; uvicorn's access and error logs alike.
    log_config = access_log_config(
        configure_logging(args.log_format, args.log_level, replica=settings.replica_id)
    )
    if args.runner == "kubernetes":
        kubernetes_settings(settings, args)
    if (problem := grpc_settings(settings, args)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    check_database(args.db)
    if (Path(args.workdir) / SECRET_FILE).exists():
        print(
            f"warning: {Path(args.workdir) / SECRET_FILE} is no longer used (the secret now "
            f"lives in {default_secret_path().parent}, out of trials' reach); delete it",
            file=sys.stderr,
        )
    logging.getLogger("tuner.serve").info("tuner serve: %s (%s)", url, token_note)
    spare_the_heap()
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        log_config=log_config,
        timeout_graceful_shutdown=5,
        loop=args.loop,
        http=args.http,
    )
    return EXIT_OK


def check_database(url: str | None) -> None:
    """Open (and migrate) the database before the server starts, so that a bad URL or an
    unreachable database is one error line, not a failed application start-up."""
    from tuner.storage import make_engine

    make_engine(url).dispose()


QUIET_ROUTES = re.compile(
    r"^(POST /api/v1/experiments/[^/?]+/trials/[^/?]+/observations"  # tuner.report(), per step
    r"|GET /healthz"  # probes
    r"|GET /api/v1/overview"  # the dashboard's refreshes, at each event
    r"|GET /api/v1/experiments/[^/?]+/(plots/[^/?]+|leaderboard)"
    r"|GET /ui/static/[^?]+"
    r")(\?.*)?$"
)
"""Requests left out of the access log when they succeed: those made at a high rate."""


class QuietAccess(logging.Filter):
    """Drops access-log lines of successful requests to :data:`QUIET_ROUTES`; errors stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn's access record: (client address, method, path with query, HTTP version,
        # status code).
        args = record.args
        if not isinstance(args, tuple) or len(args) != 5:
            return True
        _, method, path, _, status = args
        if not isinstance(status, int) or status >= 400:
            return True
        return QUIET_ROUTES.match(f"{method} {path}") is None


def access_log_config(base: dict[str, Any] | None = None) -> dict[str, Any]:
    """uvicorn's logging configuration (``base``, default uvicorn's own) with
    :class:`QuietAccess` on its access log."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(base or LOGGING_CONFIG)
    config.setdefault("filters", {})["quiet"] = {"()": QuietAccess}
    config["loggers"]["uvicorn.access"].setdefault("filters", []).append("quiet")
    return config


def kubernetes_settings(settings: Settings, args: argparse.Namespace) -> None:
    """Trials as Jobs, and the operator of Experiment resources beside the service."""
    from functools import partial

    from tuner.k8s.ratelimit import token_bucket
    from tuner.operator import ResourceMirror, resource_owner_reference, run_operator
    from tuner.runners.kubernetes import KubernetesRunner

    runner = KubernetesRunner(
        kubeconfig=args.kubeconfig,
        context=args.context,
        owner_reference=resource_owner_reference,
        installation=args.installation,
        collector_image=args.collector_image,
        collector_command=shlex.split(args.collector_command),
        log_streams=args.kube_log_streams,
    )
    runner.client.rate = token_bucket(args.kube_api_qps, args.kube_api_burst)
    settings.runner = runner
    if not args.no_operator:
        settings.companions.append(
            partial(
                run_operator,
                runner=runner,
                namespace=args.namespace_scope,
                resync_interval=args.resync_interval,
                lease_namespace=args.lease_namespace or service_namespace(),
                lease_duration=args.leader_lease_duration,
            )
        )
        settings.resource_hooks = ResourceMirror(runner, namespace=args.namespace_scope)


def service_namespace() -> str:
    """The namespace this service runs in: ``$POD_NAMESPACE``, else the service account's
    (inside a Pod), else ``default``."""
    if namespace := os.environ.get("POD_NAMESPACE"):
        return namespace
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def connect_url(host: str, port: int) -> str:
    """The URL local trials reach the server at (TUNER_API_URL)."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host.strip("[]"):
        host = f"[{host.strip('[]')}]"
    return f"http://{host}:{port}"
