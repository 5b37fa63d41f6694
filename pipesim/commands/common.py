"""What several subcommands share: loading inputs, typed arguments, method options, printing."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console

from pipesim.errors import InputError
from pipesim.placement.formats import dumps
from pipesim.output import check_writable
from pipesim.placement.methods import Method
from pipesim.placement.options import Bool, Field, Int
from pipesim.workloads.io import load_workload

__all__ = ["add_method_options", "arg", "console", "count", "load_workload", "method_options", "print_json",
           "writable"]

# Wide enough for the device tables when output is piped (no terminal to measure).
console = Console(width=shutil.get_terminal_size((120, 24)).columns)


def print_json(data: Any) -> None:
    sys.stdout.write(dumps(data, indent=2))  # strict JSON: non-finite numbers as null
    sys.stdout.write("\n")


def arg(field: Field, name: str = "value") -> Callable[[str], Any]:
    """An argparse ``type=`` from a typed field: its problem becomes argparse's one-line message."""

    def convert(text: str) -> Any:
        try:
            return field.convert(text, name)
        except InputError as exc:
            raise argparse.ArgumentTypeError(exc.problem) from None

    convert.__name__ = field.metavar.lower()  # argparse names it in "invalid ... value" only if no message
    return convert


#: ``--microbatches`` and friends: a positive whole number
count = arg(Int(minimum=1))


def writable(path: str | None, what: str = "output", option: str | None = None) -> Path | None:
    """``path`` as a file to write, checked before any work (:func:`pipesim.output.check_writable`).

    Its folder is created; a directory, a path through a file or an unwritable
    folder is one line naming the path and ``option``.
    """
    if path is None:
        return None
    return check_writable(path, option, what)


def add_method_options(parser, registry: Mapping[str, Method], title: str = "method options") -> None:
    """One ``--flag`` per option of the registry's methods (an option has one meaning in every method)."""
    group = parser.add_argument_group(title)
    seen: dict[str, list[str]] = {}
    for method in registry.values():
        for name in method.options:
            seen.setdefault(name, []).append(method.name)
    for name, methods in seen.items():
        field = next(m.options[name] for m in registry.values() if name in m.options)
        flag = "--" + name.replace("_", "-")
        help_text = f"{field.help} [{', '.join(methods)}]"
        if isinstance(field, Bool):
            group.add_argument(flag, dest=f"opt_{name}", action="store_const", const=True, default=None, help=help_text)
        else:
            group.add_argument(flag, dest=f"opt_{name}", type=arg(field, name), default=None,
                               metavar=field.metavar, help=help_text)


def method_options(args, method: Method) -> dict[str, Any]:
    """The method options given on the command line; one not taken by ``method`` is an error."""
    given = {k[4:]: v for k, v in vars(args).items() if k.startswith("opt_") and v is not None}
    for name in given:
        if name not in method.options:
            known = ", ".join("--" + o.replace("_", "-") for o in method.options) or "none"
            raise InputError(None, "--" + name.replace("_", "-"), f"not an option of {method.name} (its options: {known})")
    return given


def solve_options(data: Mapping) -> dict:
    """A scenario's ``solve.options`` mapping ({} where the file has none, or not as a mapping)."""
    solve = data.get("solve")
    options = solve.get("options") if isinstance(solve, dict) else None
    return options if isinstance(options, dict) else {}


def print_conditions(console, conditions, detail: str = "") -> None:
    """The run's measurement verdict (:mod:`pipesim.runtime.trust`), in bold yellow when it is not trusted."""
    if conditions is not None:
        console.print(detail + conditions.verdict(), style=None if conditions.trusted else "bold yellow",
                      markup=False, highlight=False)
