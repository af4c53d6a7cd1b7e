"""``tuner enqueue``: parameter sets an experiment tries before its algorithm's own."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from contextlib import closing
from typing import Any

from tuner.cli.options import EXIT_OK
from tuner.cli.source import open_client, open_repository
from tuner.errors import InvalidRequest


def add_enqueue_command(
    sub: Any, source_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    p = sub.add_parser(
        "enqueue", help="enqueue parameter sets to try before the algorithm's suggestions"
    )
    p.add_argument("name", help="experiment name")
    p.add_argument(
        "--point",
        action="append",
        required=True,
        metavar="JSON",
        help='a parameter assignment as JSON, e.g. \'{"lr": 0.01, "optimizer": "adam"}\' '
        "(repeat for several, tried in order)",
    )
    source_options(p)
    p.set_defaults(func=enqueue_command)


def _points(texts: list[str]) -> list[dict[str, Any]]:
    points = []
    for i, text in enumerate(texts):
        try:
            point = json.loads(text)
        except json.JSONDecodeError as e:
            raise InvalidRequest(f"--point #{i + 1} is not JSON: {e}") from e
        if not isinstance(point, dict):
            raise InvalidRequest(f"--point #{i + 1} must be a JSON object, not {text!r}")
        points.append(point)
    return points


def enqueue_command(args: argparse.Namespace) -> int:
    points = _points(args.point)
    if args.server:
        with closing(open_client(args)) as client:
            result = client.enqueue(args.name, points)
        pending = int(result["pending"])
    else:
        from tuner import warmstart

        repo = open_repository(args, must_exist=True)
        record = repo.get_experiment(args.namespace, args.name)
        record = warmstart.enqueued(repo, record, points)
        pending = len(warmstart.pending_points(record.experiment.spec, repo.history(record.id)))
    print(f"experiment {args.namespace}/{args.name}: {len(points)} enqueued, {pending} pending")
    return EXIT_OK
