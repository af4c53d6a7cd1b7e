"""``tuner import-optuna`` and ``tuner export-optuna``: studies in and out of the database."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from tuner.cli.options import EXIT_OK
from tuner.cli.render import print_json
from tuner.cli.source import open_repository


def add_optuna_commands(sub: Any, db_option: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register both commands on the ``tuner`` subparsers."""
    p = sub.add_parser(
        "import-optuna", help="store an Optuna study (its finished trials) as an experiment"
    )
    p.add_argument("--storage", required=True, help="Optuna storage URL (sqlite:///study.db)")
    p.add_argument("--study", required=True, help="the study's name")
    p.add_argument("--experiment", help="the experiment's name (default: the study's)")
    p.add_argument("-n", "--namespace", default="default", help="namespace (default default)")
    p.add_argument("--metric", default="value", help="the objective metric's name (default value)")
    p.add_argument(
        "--algorithm", default="tpe", help="algorithmName of the experiment (default tpe)"
    )
    p.add_argument("--json", action="store_true", help="print what was imported as JSON")
    db_option(p)
    p.set_defaults(func=import_optuna_command)

    p = sub.add_parser(
        "export-optuna", help="write an experiment's trials to an Optuna storage as a new study"
    )
    p.add_argument("name", help="experiment name")
    p.add_argument("--storage", required=True, help="Optuna storage URL (sqlite:///x.db)")
    p.add_argument("--study", help="the study's name (default: the experiment's)")
    p.add_argument("-n", "--namespace", default="default", help="namespace (default default)")
    p.add_argument("--json", action="store_true", help="print what was exported as JSON")
    db_option(p)
    p.set_defaults(func=export_optuna_command)


def import_optuna_command(args: argparse.Namespace) -> int:
    from tuner.optuna_io import import_study

    repo = open_repository(args)
    done = import_study(
        repo,
        args.storage,
        args.study,
        experiment=args.experiment,
        namespace=args.namespace,
        metric=args.metric,
        algorithm=args.algorithm,
    )
    _print(args, f"imported Optuna study {done.study} as experiment {done.experiment}", done)
    return EXIT_OK


def export_optuna_command(args: argparse.Namespace) -> int:
    from tuner.optuna_io import export_study

    repo = open_repository(args, must_exist=True)
    record = repo.get_experiment(args.namespace, args.name)
    done = export_study(repo, record, args.storage, args.study)
    _print(args, f"exported experiment {done.experiment} as Optuna study {done.study}", done)
    return EXIT_OK


def _print(args: argparse.Namespace, what: str, done: Any) -> None:
    if args.json:
        print_json(
            {
                "experiment": done.experiment,
                "study": done.study,
                "trials": done.trials,
                "skipped": done.skipped,
            }
        )
        return
    left_out = f", {done.skipped} left out" if done.skipped else ""
    print(f"{what}: {done.trials} trials{left_out}")
