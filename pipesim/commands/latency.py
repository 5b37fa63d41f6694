"""``pipesim latency WORKLOAD.json --method ip|greedy [--q N]`` or ``--split SPLIT.json``.

The latency of one sample through an inference graph (SPEC §4 "Latency"):
by the latency IP (at most ``q`` contiguous pieces per accelerator), by the
greedy, or of a given split.  With ``--json`` the headline number is the
top-level ``latency``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rich.table import Table

from pipesim.commands.common import console, load_workload, positive_int, print_json
from pipesim.commands.ip_method import mip_options, warm_start_split
from pipesim.placement.formats import read_split, write_split
from pipesim.placement.latency import (
    LatencyResult,
    latency_of_split,
    solve_latency_greedy,
    solve_latency_ip,
)
from pipesim.placement.result import FEASIBLE


def register(subparsers) -> None:
    p = subparsers.add_parser("latency", help="latency of one sample: latency IP, greedy, or of a given split")
    p.add_argument("workload", help="workload file (inference graph)")
    p.add_argument("--method", choices=["ip", "greedy"], default="ip", help="solver (default: ip)")
    p.add_argument("--q", type=positive_int, default=1, metavar="N", help="pieces per accelerator for the IP (default 1)")
    p.add_argument("--split", metavar="SPLIT.json", help="score this split instead of solving")
    p.add_argument("-o", "--output", metavar="SPLIT.json", help="write the split (paper split format)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="do not stream the solver's log")
    mip_options(p.add_argument_group("ip"))
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
    if args.progress is None:
        args.progress = sys.stderr.isatty() and not args.json
    workload = load_workload(args.workload)
    if args.split:
        began = time.perf_counter()
        schedule = latency_of_split(workload, read_split(Path(args.split)))
        result = LatencyResult("split", FEASIBLE, schedule, seconds=time.perf_counter() - began)
    elif args.method == "greedy":
        result = solve_latency_greedy(workload)
    else:
        result = solve_latency_ip(workload, q=args.q, solver=args.solver, time_limit=args.time_limit, gap=args.gap,
                                  warm_start=warm_start_split(args, workload), progress=args.progress)
    if args.output and result.schedule is not None:
        write_split(Path(args.output), result.schedule.evaluation)
    if args.json:
        print_json({"workload": workload.name, **result.to_dict()})
        return 0 if result.schedule is not None else 1
    if result.schedule is None:
        console.print(f"[red]{result.status}[/red]: {result.message}")
        return 1
    console.print(_pieces_table(result, f"{result.method} on {workload.name} (CPU nodes not shown)"))
    for violation in result.schedule.evaluation.violations:
        console.print(f"[red]violation:[/red] {violation}")
    detail = f"{result.status}, {result.seconds:.2f} s"
    if result.gap is not None:
        detail += f", gap {result.gap:.2%}"
    console.print(f"latency: [bold]{result.latency:.10g}[/bold] ({detail})")
    if result.message:
        console.print(result.message)
    return 0
