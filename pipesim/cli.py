"""The ``pipesim`` command line: a thin layer over the Python API (:mod:`pipesim.api`).

Every subcommand lives in :mod:`pipesim.commands` and is imported only when
it runs, so ``pipesim --version`` and ``pipesim --help`` stay fast.  Any
:class:`~pipesim.errors.PipesimError` — a malformed file, an unknown id, an
infeasible request — is reported as one line naming the file and the
problem, with exit code 2 and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys

from pipesim import __version__
from pipesim.commands import COMMANDS, EXIT_CODES, HELP

# a value such as -1GiB or -5ms is a (bad) value for the option before it, not an unknown option:
# argparse's own pattern only takes plain negative numbers, and "expected one argument" hides the real problem
_NEGATIVE_VALUE = re.compile(r"^-\.?\d")


def plain(text: str) -> str:
    """Docstring reST as terminal text: ``code`` and :role:`target` lose their markup.

    Examples
    --------
    >>> plain("The ``pipesim`` command line (:mod:`pipesim.api`, :func:`~pipesim.plan`)")
    'The pipesim command line (pipesim.api, pipesim.plan)'
    """
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    return text.replace("``", "")


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_VALUE

    def error(self, message: str):  # argparse's usage errors: one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command``, only that subcommand's module is imported (the others are listed)."""
    parser = _Parser(prog="pipesim", description=plain(__doc__.splitlines()[0]), epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"pipesim {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    for name in COMMANDS:
        if name == command:
            importlib.import_module(f"pipesim.commands.{name}").register(subparsers)
            subparsers.choices[name].epilog = subparsers.choices[name].epilog or EXIT_CODES
        else:
            subparsers.add_parser(name, help=HELP[name])
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if a in COMMANDS), None)
    from pipesim.errors import PipesimError

    try:
        args = build_parser(command).parse_args(argv)
    except SystemExit as exc:  # usage errors (one line, exit 2), --help and --version (exit 0)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.run(args)
    except PipesimError as exc:
        print(f"pipesim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pipesim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
