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
from tuner.errors import InvalidRequest, NotFound, SpecError, TunerError

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "is_loopback",
    "main",
]


#: Errors the user fixes in the command itself (a name, an argument, a file): exit 2.
USAGE_ERRORS: tuple[type[TunerError], ...] = (NotFound, InvalidRequest)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tuner`` command with ``argv`` (default: ``sys.argv[1:]``); the exit code.

    No traceback reaches the user: usage errors, an invalid spec, an unknown experiment or
    trial, a missing file and a bad database path exit 2 with one ``error:`` line on stderr
    (an invalid spec adds a line per problem); other failures (a server that cannot be
    reached or refuses the token, a conflict, a database error) exit 1; Ctrl-C outside
    ``tuner run`` exits 130.
    """
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except SpecError as e:
        if len(e.errors) == 1:  # one problem, one line (a missing file, for one)
            return _error(f"invalid Experiment spec: {e.errors[0]}", EXIT_USAGE)
        print_spec_errors(e)
        return EXIT_USAGE
    except USAGE_ERRORS as e:
        return _error(e.message, EXIT_USAGE)
    except TunerError as e:
        return _error(e.message, EXIT_FAILED)
    except FileNotFoundError as e:
        return _error(f"no such file: {e.filename}", EXIT_USAGE)
    except OSError as e:
        return _error(f"{e.filename or 'I/O'}: {e.strerror or e}", EXIT_FAILED)
    except KeyboardInterrupt:
        return _error("interrupted", EXIT_INTERRUPTED)
    except Exception as e:  # the last guard: a bug, or a database error, in one line
        from sqlalchemy.exc import SQLAlchemyError

        if isinstance(e, SQLAlchemyError):
            detail = str(getattr(e, "orig", None) or e).splitlines()[0]
            return _error(f"database: {detail}", EXIT_FAILED)
        return _error(f"unexpected {type(e).__name__}: {e} (please report it)", EXIT_FAILED)
    return code


def _error(message: str, code: int) -> int:
    """Print ``message`` as one line on stderr; return ``code``."""
    print("error: " + " ".join(message.split()), file=sys.stderr)
    return code
