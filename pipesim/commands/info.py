"""``pipesim info WORKLOAD.json``: a workload's vital statistics."""

from __future__ import annotations

from pipesim.commands.common import console, load_workload, print_json
from pipesim.report.tables import workload_info, workload_table


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="print a workload's vital statistics")
    p.add_argument("workload", help="workload file (paper or native JSON)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def run(args) -> int:
    workload = load_workload(args.workload)
    if args.json:
        print_json(workload_info(workload))
    else:
        console.print(workload_table(workload))
    return 0
