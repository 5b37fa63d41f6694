"""``pipesim solve WORKLOAD.json --method NAME``: the best split, printed and written.

Every method of the one registry (:data:`pipesim.placement.methods.METHODS`)
is available, with its options as flags (``--merge``, ``--time-limit``, …);
device counts and memory can be changed without editing the workload file.
"""

from __future__ import annotations

import argparse
import sys

from rich.markup import escape

from pipesim.commands import EXIT_INFEASIBLE
from pipesim.commands.common import (
    add_method_options,
    arg,
    console,
    load_workload,
    method_options,
    print_json,
    writable,
)
from pipesim.commands.progress import progress_bar
from pipesim.errors import InputError
from pipesim.placement.formats import write_split
from pipesim.placement.interrupt import interruptible
from pipesim.placement.methods import METHODS, get_method
from pipesim.placement.options import Int, Size
from pipesim.placement.result import PlacementResult
from pipesim.placement.workload import Workload
from pipesim.report.tables import device_table

_COUNT = Int(minimum=0)


def _method_name(text: str) -> str:
    if text.strip().lower() == "plan":  # a plan is not a split: its own command
        raise argparse.ArgumentTypeError("plan makes a hybrid-parallel plan, not a split: use `pipesim plan WORKLOAD` "
                                         "(or solve: {method: plan} in a scenario)")
    try:
        return get_method(text).name
    except InputError as exc:  # argparse shows an ArgumentTypeError's message; a ValueError's it replaces
        raise argparse.ArgumentTypeError(exc.problem) from None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "solve", help="find the split with the least max-load",
        description="Place a workload (paper or native JSON) with one of: "
                    + "; ".join(f"{m.name} ({m.summary})" for m in METHODS.values()))
    p.add_argument("workload", help="workload file (paper or native JSON)")
    p.add_argument("--method", type=_method_name, default="dp", metavar="{" + ",".join(METHODS) + "}",
                   help="placement method (default: dp, optimal contiguous)")
    p.add_argument("--accelerators", type=arg(_COUNT), metavar="K", help="number of accelerators (paper class 'accelerator')")
    p.add_argument("--cpus", type=arg(_COUNT), metavar="L", help="number of CPU cores (paper class 'cpu')")
    p.add_argument("--memory", type=arg(Size()), metavar="BYTES", help='memory per accelerator, e.g. 17185374208 or "16GiB"')
    p.add_argument("--devices", action="append", default=[], metavar="CLASS=COUNT",
                   help="number of devices of any class (repeatable)")
    p.add_argument("-o", "--output", metavar="SPLIT.json", help="write the split here (paper split format; folders are created)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON (top-level max_load)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    add_method_options(p, METHODS)
    p.set_defaults(run=run, progress=None)


def apply_device_options(workload: Workload, args) -> Workload:
    """The workload with ``--accelerators``, ``--cpus``, ``--memory`` and ``--devices`` applied."""
    changes: dict[str, dict] = {}
    if args.accelerators is not None:
        changes.setdefault("accelerator", {})["count"] = args.accelerators
    if args.cpus is not None:
        changes.setdefault("cpu", {})["count"] = args.cpus
    if args.memory is not None:
        changes.setdefault("accelerator", {})["memory"] = args.memory
    for item in args.devices:
        name, sep, count = item.partition("=")
        if not sep or not name:
            raise InputError(None, "--devices", f"expected CLASS=COUNT, got {item!r}")
        changes.setdefault(name, {})["count"] = _COUNT.convert(count, f"--devices {name}")
    return workload.with_devices(**changes)


def report(result: PlacementResult, workload: Workload, args) -> None:
    """Print a solver's result (table or JSON) and write its split if asked."""
    if args.output and result.evaluation is not None:
        write_split(args.output, result.evaluation)
    if args.json:
        print_json({"workload": workload.name, **result.to_dict()})
        return
    if result.evaluation is None:
        console.print(f"[red]{result.status}[/red]: {escape(result.message)}")
        return
    console.print(device_table(result.evaluation, title=f"{result.method} split of {workload.name}", graph=workload.graph))
    detail = f"{result.status}, {result.seconds:.2f} s"
    if result.gap is not None and result.status != "optimal":
        detail += f", gap {result.gap:.2%}"
    for key in ("ideals", "ideal_pairs"):
        if key in result.stats:
            detail += f", {result.stats[key]:,} {key.replace('_', ' ')}"
    console.print(f"max-load: [bold]{result.max_load:.10g}[/bold] ({detail})")
    if result.message:
        console.print(result.message)
    if args.output:
        console.print(f"split written to {args.output}")


def run(args) -> int:
    method = get_method(args.method)
    options = method_options(args, method)
    writable(args.output, "split", "--output")
    workload = apply_device_options(load_workload(args.workload), args)
    show = sys.stderr.isatty() and not args.json if args.progress is None else args.progress
    with progress_bar(show and method.progress == "callback") as bar, interruptible():
        result = method(workload, progress=bar if bar is not None else show, **options)
    report(result, workload, args)
    return 0 if result.evaluation is not None else EXIT_INFEASIBLE
