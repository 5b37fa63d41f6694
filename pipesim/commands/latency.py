"""``pipesim latency WORKLOAD.json --method ip|greedy [--q N]`` or ``--split SPLIT.json``.

The latency of one sample through an inference graph (docs/model.md §4.4):
by the latency IP (at most ``q`` contiguous pieces per accelerator), by the
greedy, or of a given split (:func:`pipesim.api.latency`).  With ``--json``
the headline number is the top-level ``latency``.
"""

from __future__ import annotations

import argparse
import sys

from rich.markup import escape
from rich.table import Table

from pipesim.api import latency, load_split
from pipesim.commands import EXIT_INFEASIBLE
from pipesim.commands.common import (
    add_method_options,
    console,
    load_workload,
    method_options,
    print_json,
    writable,
)
from pipesim.errors import InputError
from pipesim.placement.formats import write_split
from pipesim.placement.interrupt import interruptible
from pipesim.placement.latency import LatencyResult
from pipesim.placement.methods import LATENCY_METHODS, get_method


def _method_name(text: str) -> str:
    try:
        return get_method(text, LATENCY_METHODS).name
    except InputError as exc:  # argparse shows an ArgumentTypeError's message; a ValueError's it replaces
        raise argparse.ArgumentTypeError(exc.problem) from None


def register(subparsers) -> None:
    p = subparsers.add_parser("latency", help="latency of one sample: latency IP, greedy, or of a given split")
    p.add_argument("workload", help="workload file (paper or native JSON; an inference graph)")
    p.add_argument("--method", type=_method_name, default="ip",
                   metavar="{" + ",".join(LATENCY_METHODS) + "}", help="solver (default: ip)")
    p.add_argument("--split", metavar="SPLIT.json", help="score this split (paper split format) instead of solving")
    p.add_argument("-o", "--output", metavar="SPLIT.json", help="write the split here (paper split format; folders are created)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON (top-level latency)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="do not stream the solver's log")
    add_method_options(p, LATENCY_METHODS, "latency IP options")
    p.set_defaults(run=run, progress=None)


def _pieces_table(result: LatencyResult, title: str) -> Table:
    table = Table(title=title)
    for column in ("device", "piece", "nodes", "start", "receive", "compute", "send", "finish"):
        table.add_column(column, justify="left" if column in ("device", "nodes") else "right")
    for p in result.schedule.pieces:
        nodes = ", ".join(map(str, p.nodes[:8])) + (" …" if len(p.nodes) > 8 else "")
        table.add_row(f"{p.device_class}[{p.index}]", str(p.order), nodes,
                      *(f"{x:.6g}" for x in (p.start, p.receive, p.compute, p.send, p.finish)))
    return table


def run(args) -> int:
    progress = sys.stderr.isatty() and not args.json if args.progress is None else args.progress
    method = get_method(args.method, LATENCY_METHODS)
    options = method_options(args, method)
    writable(args.output, "split", "--output")
    workload = load_workload(args.workload)
    if args.split:
        result = latency(workload, split=load_split(args.split, workload), **options)
    else:
        with interruptible():
            result = latency(workload, method.name, **options, **({"progress": True} if progress and method.progress else {}))
    if args.output and result.schedule is not None:
        write_split(args.output, result.schedule.evaluation)
    if args.json:
        print_json({"workload": workload.name, **result.to_dict()})
        return 0 if result.schedule is not None else EXIT_INFEASIBLE
    if result.schedule is None:
        console.print(f"[red]{result.status}[/red]: {escape(result.message)}")
        return EXIT_INFEASIBLE
    console.print(_pieces_table(result, f"{result.method} on {workload.name} (CPU nodes not shown)"))
    for violation in result.schedule.evaluation.violations:
        console.print(f"[red]violation:[/red] {escape(violation)}")
    detail = f"{result.status}, {result.seconds:.2f} s"
    if result.gap is not None:
        detail += f", gap {result.gap:.2%}"
    console.print(f"latency: [bold]{result.latency:.10g}[/bold] ({detail})")
    if result.message:
        console.print(result.message)
    return 0
