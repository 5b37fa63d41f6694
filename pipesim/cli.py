"""The ``pipesim`` command line.

Every subcommand lives in :mod:`pipesim.commands`.  Bad input of any kind
(a malformed file, an unknown id, an infeasible request) is reported as one
line naming the file and the problem, with exit code 2 and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pipesim import __version__
from pipesim.commands import COMMANDS
from pipesim.hardware.units import HardwareError
from pipesim.placement.formats import InputError
from pipesim.placement.graph import GraphError
from pipesim.placement.ideals import IdealLimitError
from pipesim.placement.split import SplitError

#: Errors that mean "the user's input is wrong", not "pipesim is broken".
USER_ERRORS: tuple[type[Exception], ...] = (InputError, GraphError, SplitError, HardwareError, IdealLimitError)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's usage errors: one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pipesim", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"pipesim {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"pipesim.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except USER_ERRORS as exc:
        print(f"pipesim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pipesim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
