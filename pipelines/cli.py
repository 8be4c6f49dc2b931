"""How the command lines start and fail: `run(main)` instead of `absl.app.run(main)`.

A bad flag or configuration ends the program with one line on stderr,

    Error: Invalid value for argument `methods`. Expected ... Received: ...

and exit status 2 (the shell convention for usage errors), instead of absl's
usage dump or a Python traceback. `--verbosity=1` (or higher) keeps the
traceback, for debugging. What counts as a usage error: absl flag parsing
errors, `app.UsageError`, and the `ValueError` / `TypeError` / `FileNotFoundError`
that the library raises for invalid arguments (its messages name the argument and
the fix). Anything else is a bug and keeps its traceback.
"""

import sys

from absl import app
from absl import flags
from absl import logging

__all__ = ["USAGE_ERRORS", "run"]

USAGE_ERRORS = (app.UsageError, ValueError, TypeError, FileNotFoundError)
_EXIT_USAGE = 2


def _fail(message) -> None:
    print(f"Error: {message}", file=sys.stderr, flush=True)
    sys.exit(_EXIT_USAGE)


def _parse_flags(argv):
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        _fail(error)


def run(main) -> None:
    """Runs an absl `main(argv)` with one-line usage errors (see the module docstring)."""

    def guarded_main(argv):
        try:
            return main(argv)
        except USAGE_ERRORS as error:
            if logging.get_verbosity() >= logging.DEBUG:
                raise
            _fail(error)

    app.run(guarded_main, flags_parser=_parse_flags)
