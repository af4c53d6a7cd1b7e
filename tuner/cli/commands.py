"""The short commands: validate a spec, read an experiment (any source), submit, migrate."""

from __future__ import annotations

import argparse
import sys
from contextlib import closing
from pathlib import Path

from tuner.cli.options import EXIT_OK, EXIT_USAGE, SERVER_ENV
from tuner.cli.render import leaderboard_table, print_json, status_text, trials_table
from tuner.cli.source import open_client, open_source
from tuner.errors import InvalidRequest


def validate_command(args: argparse.Namespace) -> int:
    from tuner.errors import SpecError
    from tuner.runners.local import LocalRunner
    from tuner.spec import load_spec, spec_warnings

    experiment = load_spec(Path(args.spec))
    for warning in spec_warnings(experiment):  # valid, so still exit 0
        print(f"warning: {warning}", file=sys.stderr)
    if experiment.spec.trial_template is not None:
        try:  # valid for Katib; say now what `tuner run` would refuse, and why
            LocalRunner(Path.cwd()).check(experiment)
        except SpecError as e:
            for problem in e.errors:
                print(f"note: `tuner run` cannot run it: {problem}", file=sys.stderr)
    print(f"{args.spec}: valid Experiment {experiment.namespace}/{experiment.name}")
    return EXIT_OK


def leaderboard_command(args: argparse.Namespace) -> int:
    with closing(open_source(args)) as source:
        info = source.experiment(args.name)
        try:
            rows = source.leaderboard(
                args.name, limit=args.limit, metric=args.metric, states=args.state or ()
            )
        except InvalidRequest as e:  # --metric or --state: a usage error, named with the choices
            print(f"error: {e.message}", file=sys.stderr)
            return EXIT_USAGE
    if args.json:
        print_json([r.to_json() for r in rows])
    else:
        leaderboard_table(info, rows)
    return EXIT_OK


def pareto_command(args: argparse.Namespace) -> int:
    """The Pareto front of an experiment with several objectives (any experiment works)."""
    with closing(open_source(args)) as source:
        info = source.experiment(args.name)
        rows = source.pareto(args.name)
    if args.json:
        print_json([r.to_json() for r in rows])
    else:
        leaderboard_table(info, rows)
    return EXIT_OK


def trials_command(args: argparse.Namespace) -> int:
    with closing(open_source(args)) as source:
        rows = source.trials(args.name, state=args.state)
    if args.json:
        print_json([r.to_json() for r in rows])
    else:
        trials_table(f"{args.namespace}/{args.name}", rows)
    return EXIT_OK


def status_command(args: argparse.Namespace) -> int:
    with closing(open_source(args)) as source:
        status = source.status(args.name)
    if args.json:
        print_json(status.document)
    else:
        status_text(f"{args.namespace}/{args.name}", status)
    return EXIT_OK


def submit_command(args: argparse.Namespace) -> int:
    if not args.server:
        raise InvalidRequest(
            f"submit needs --server URL (or ${SERVER_ENV}); `tuner run SPEC` runs a spec here"
        )
    with open_client(args) as client:
        experiment = client.submit(Path(args.spec), namespace=args.namespace)
    if args.json:
        print_json(experiment)
        return EXIT_OK
    meta, status = experiment["metadata"], experiment["status"]
    print(f"experiment {meta['namespace']}/{meta['name']} submitted: {status['phase']}")
    return EXIT_OK


def db_command(args: argparse.Namespace) -> int:
    from tuner.errors import NotFound
    from tuner.storage.engine import current_revision, make_engine, migrate

    try:  # `db current` reads: it never creates a database
        engine = make_engine(args.db, create_schema=False, must_exist=args.action == "current")
    except NotFound as e:
        print(f"schema revision: none ({e.message})")
        return EXIT_OK
    if args.action == "upgrade":
        migrate(engine)
    print(f"schema revision: {current_revision(engine) or 'none (run `tuner db upgrade`)'}")
    return EXIT_OK
