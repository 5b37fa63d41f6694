"""The ``pipesim`` command line: a thin layer over the Python API (:mod:`pipesim.api`).

Every subcommand lives in :mod:`pipesim.commands` and is imported only when
it runs, so ``pipesim --version`` and ``pipesim --help`` stay fast.  Any
:class:`~pipesim.errors.PipesimError` — a malformed file, an unknown id, an
infeasible request — is reported as one line naming the file and the
problem, with exit code 2 and no traceback.

Two rules hold for every command, here and nowhere else (issue 18 items 1 and 3):

* **Ctrl-C** (SIGINT, and SIGTERM): the command stops within 2 s, prints its
  best answer so far where it has one (status ``interrupted``), then
  ``pipesim: interrupted`` on stderr, and exits 130; no child process or
  temporary folder outlives it (:func:`pipesim.placement.interrupt.command_interrupts`).
* **A closed stdout** (``pipesim plan … --json | head -1``): no traceback;
  the command stops quietly with exit code 141 (128 + SIGPIPE, what a shell
  reports for a Unix tool ended by a closed pipe).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import sys

from pipesim import __version__
from pipesim.commands import COMMANDS, EXIT_CODES, EXIT_INFEASIBLE, HELP

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

#: Exit code after Ctrl-C: 128 + SIGINT.
EXIT_INTERRUPTED = 130
#: Exit code when stdout was closed by its reader: 128 + SIGPIPE.
EXIT_BROKEN_PIPE = 141
#: Commands that print their solver's best answer so far on a first Ctrl-C (the solvers poll
#: pipesim.placement.interrupt.stop_requested); in the others a first Ctrl-C stops at once (``run``
#: too: its answer is the whole report, which an interrupted solve cannot give).
ANSWERS_SO_FAR = frozenset({"solve", "plan", "compare", "latency"})


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


def _stdout_closed() -> int:
    """The reader of stdout went away: stop quietly, as a Unix tool ended by SIGPIPE does."""
    # Point stdout at /dev/null so that the interpreter's final flush of what is still buffered
    # does not raise again ("Exception ignored ... BrokenPipeError").
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EXIT_BROKEN_PIPE


def _tables_raise_broken_pipe() -> None:
    """rich ends the process itself (exit 1) when stdout closes under a table: let it reach main instead."""
    from pipesim.commands.common import console

    def closed() -> None:
        console.quiet = True
        raise BrokenPipeError

    console.on_broken_pipe = closed


def _dispatch(argv: list[str], command: str | None, signals) -> int | None:
    """Parse and run one command; its exit code, or None when Ctrl-C ended it."""
    from pipesim.errors import InfeasibleError, PipesimError
    from pipesim.placement.interrupt import interruptible, trace

    try:
        try:
            args = build_parser(command).parse_args(argv)
        except SystemExit as exc:  # usage errors (one line, exit 2), --help and --version (exit 0)
            return exc.code if isinstance(exc.code, int) else 2
        _tables_raise_broken_pipe()
        with interruptible() if command in ANSWERS_SO_FAR else contextlib.nullcontext():
            code = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's exit
    except BrokenPipeError:
        return _stdout_closed()
    except PipesimError as exc:
        if signals.interrupted:
            trace("an error after the interrupt, taken as the interrupt", exc)
            return None
        print(f"pipesim: error: {exc}", file=sys.stderr)
        # no answer satisfies the constraints (a planner's search came back empty): the documented code of an
        # infeasible result, as when a solver returns one with its reason (EXIT_CODES)
        return EXIT_INFEASIBLE if isinstance(exc, InfeasibleError) else 2
    except Exception:
        # Once Ctrl-C has arrived, what it breaks on the way out (numba's "SystemError: ...
        # returned a result with an exception set", a broken process pool) is the interrupt.
        if not signals.interrupted:
            raise
        trace("an exception after the interrupt, taken as the interrupt", sys.exc_info()[1])
        return None
    return None if signals.interrupted else code


def main(argv: list[str] | None = None, *, exit_now: bool = True) -> int:
    """Run one command; its exit code.  After Ctrl-C the process ends here (exit 130) unless ``exit_now`` is false."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if a in COMMANDS), None)
    from pipesim.placement.interrupt import command_interrupts, trace

    message = "pipesim: interrupted"
    with command_interrupts(message, answers_so_far=command in ANSWERS_SO_FAR) as signals:
        # The handler raises KeyboardInterrupt at most once per command, and never after finish():
        # wherever it lands before finish(), this except catches it.
        try:
            code = _dispatch(argv, command, signals)
            signals.finish()
        except KeyboardInterrupt as stopped:
            trace("the interrupt ended the command", stopped)
            code = None
            signals.finish()
        if code is not None and not signals.interrupted:
            solver = sys.modules.get("pipesim.placement.mip_backend")
            if exit_now and solver is not None and solver.abandoned_solver_running():
                # a HiGHS solve given up at the time limit still runs: the interpreter's exit would wait
                # for it (or crash under it); the answer is out, so end now
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(OSError, ValueError):
                        stream.flush()
                os._exit(code)
            return code
        with contextlib.suppress(OSError, ValueError):  # the best answer so far, if one was printed
            sys.stdout.flush()
        print(message, file=sys.stderr)
        if exit_now:
            signals.abort(message=False)  # exit 130 at once, nothing left behind (see abort)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
