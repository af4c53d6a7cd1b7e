"""The command-line side of Katib's gRPC APIs (the ``grpc`` extra): ``tuner serve``'s
DB-manager port and ``tuner suggestion-service``."""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
from functools import partial
from typing import TYPE_CHECKING, Any

from tuner.cli.options import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from tuner.settings import Settings

DEFAULT_SUGGESTION_PORT = 6789  # Katib's suggestion services and DB-manager listen there


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return port


def service_address(text: str) -> tuple[str, str]:
    """``NAME=HOST:PORT`` of ``--suggestion-service``."""
    from tuner.katib_grpc.remote import valid_address

    name, _, address = text.partition("=")
    if not name or not valid_address(address):
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=HOST:PORT")
    return name, address


def add_serve_options(p: argparse.ArgumentParser) -> None:
    """``tuner serve``'s options for Katib's gRPC APIs."""
    g = p.add_argument_group("Katib's gRPC APIs (the grpc extra)")
    g.add_argument(
        "--suggestion-service",
        type=service_address,
        action="append",
        default=[],
        metavar="NAME=HOST:PORT",
        help="serve algorithmName NAME from the Katib Suggestion service at HOST:PORT "
        "(repeatable; a spec submitted here gets the address in its algorithm settings)",
    )
    g.add_argument(
        "--katib-db-manager-port",
        type=port_number,
        metavar="PORT",
        help="serve Katib's DB-manager API (report_metrics, get_trial_metrics) on this port "
        "(Katib's is 6789); it has NO authentication, as Katib's: open it only where trials "
        "and trusted clients alone reach it",
    )
    g.add_argument(
        "--katib-db-manager-host",
        metavar="HOST",
        help="the address it listens on (default: --host)",
    )


def grpc_settings(settings: Settings, args: argparse.Namespace) -> str | None:
    """Register the suggestion services and add the DB-manager to the service's companions;
    an error message if that cannot be done."""
    if args.katib_db_manager_port is None and not args.suggestion_service:
        return None
    from tuner.algorithms.registry import use_suggestion_service
    from tuner.errors import GrpcMissing
    from tuner.katib_grpc.protos import require_grpc

    try:
        require_grpc()
    except GrpcMissing as e:
        return e.message
    for name, address in args.suggestion_service:
        use_suggestion_service(name, address)
    if args.katib_db_manager_port is None:
        return None
    from tuner.katib_grpc.dbmanager import serve_db_manager

    host = args.katib_db_manager_host or args.host
    if (busy := unbindable(host, args.katib_db_manager_port)) is not None:
        return (
            f"--katib-db-manager-port: cannot listen on {host}:{args.katib_db_manager_port}: {busy}"
        )
    settings.companions.append(
        partial(serve_db_manager, host=host, port=args.katib_db_manager_port)
    )
    return None


def unbindable(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (checked before the server starts), or None."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host.strip("[]"), port))
        except OSError as e:
            return e.strerror or str(e)
    return None


def add_suggestion_service_command(sub: Any) -> None:
    from tuner.algorithms.registry import algorithm_names

    p = sub.add_parser(
        "suggestion-service",
        help="serve one of tuner's algorithms over Katib's Suggestion gRPC API",
    )
    p.add_argument("--algorithm", required=True, choices=algorithm_names())
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_SUGGESTION_PORT,
        help=f"port (default {DEFAULT_SUGGESTION_PORT}; 0 picks a free one and prints it)",
    )
    p.set_defaults(func=suggestion_service_command)


def suggestion_service_command(args: argparse.Namespace) -> int:
    from tuner.errors import GrpcMissing
    from tuner.katib_grpc.protos import require_grpc

    try:
        require_grpc()
    except GrpcMissing as e:
        print(f"error: {e.message}", file=sys.stderr)
        return EXIT_USAGE
    from tuner.katib_grpc.suggestion_service import serve_forever

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve_forever(args.algorithm, args.host, args.port, stop)
    except RuntimeError as e:  # grpc: the port cannot be bound
        print(f"error: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK
