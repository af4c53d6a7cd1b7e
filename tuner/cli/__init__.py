"""The ``tuner`` command: run, inspect and validate experiments from the command line.

Modules:

* :mod:`~tuner.cli.parser`: the arguments of every command;
* :mod:`~tuner.cli.source`: one read interface, :class:`~tuner.cli.source.ExperimentSource`,
  over the local database or a ``tuner serve`` (``--server``), chosen once from the arguments;
* :mod:`~tuner.cli.render`: tables and text, the same from either source;
* :mod:`~tuner.cli.commands` (validate, leaderboard, trials, status, submit, db),
  :mod:`~tuner.cli.run` (an experiment in the foreground), :mod:`~tuner.cli.serve` (the server);
* :mod:`~tuner.cli.options`: exit codes, environment variables, the API token.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tuner.cli.options import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from tuner.cli.parser import build_parser
from tuner.cli.render import print_spec_errors
from tuner.cli.serve import is_loopback
from tuner.errors import SpecError, TunerError

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "is_loopback",
    "main",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tuner`` command with ``argv`` (default: ``sys.argv[1:]``); the exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except SpecError as e:
        print_spec_errors(e)
        return EXIT_USAGE
    except TunerError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return EXIT_FAILED
    return code
