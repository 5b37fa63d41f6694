"""``pipesim evaluate WORKLOAD.json SPLIT.json``: the cost of a given split."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from pipesim.api import evaluate, load_split
from pipesim.commands.common import console, load_workload, print_json
from pipesim.report.tables import device_table


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="per-device loads and max-load of a split")
    p.add_argument("workload", help="workload file (paper or native JSON)")
    p.add_argument("split", help="split file (paper split format, as solve -o writes it)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def run(args) -> int:
    workload = load_workload(args.workload)
    result = evaluate(workload, load_split(args.split, workload))
    if args.json:
        print_json({"workload": workload.name, **result.to_dict()})
        return 0
    console.print(device_table(result, title=f"{Path(args.split).name} on {workload.name}", graph=workload.graph))
    for violation in result.violations:
        console.print(f"[red]violation:[/red] {escape(violation)}")
    console.print(f"max-load: [bold]{result.max_load:.10g}[/bold]")
    return 0
