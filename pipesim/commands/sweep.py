"""``pipesim sweep SCENARIO.yaml --vary PATH=V1,V2 [--vary …]``: a what-if grid, resumable.

Each point is the scenario with the varied fields overridden (any field path:
``hardware.whatif.a100.count=2,4,8``, ``hardware.devices[0].host_link.bandwidth=8GB/s,32GB/s``),
solved and simulated.  Without ``--vary`` the scenario's ``sweep.vary`` is
used.  Points run on ``--workers`` local processes (default: one per CPU),
or on a Dask cluster with ``--dask ADDRESS``.  Rows go to
``DIR/sweep.jsonl`` and ``DIR/sweep.csv`` as points finish; running the same
command again skips finished points.  At the end ``DIR/sweep.png`` plots
throughput (and cost per million samples when prices are given) against the
varied fields; ``--report FILE`` writes an HTML page with the plot and table.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from rich.table import Table

from pipesim.commands.common import console, count, print_json, writable
from pipesim.output import output_folder
from pipesim.commands.run import add_scenario_options, progress_console
from pipesim.placement.formats import InputError
from pipesim.report.html import fmt
from pipesim.report.pages import SWEEP_COLUMNS, sweep_cells, sweep_page
from pipesim.report.plots import sweep_plot
from pipesim.scenario import load_scenario, parse_value, set_path
from pipesim.sweep import grid, run_sweep


def register(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="run a scenario over a grid of what-if values")
    p.add_argument("scenario", help="scenario file (YAML)")
    p.add_argument("--vary", action="append", default=[], metavar="PATH=V1,V2,...",
                   help="a field and its values (repeatable: the grid is the product)")
    add_scenario_options(p)
    p.add_argument("--workers", type=count, default=None, metavar="N",
                   help="local worker processes (default: one per CPU; 1 runs in this process)")
    p.add_argument("--dask", metavar="ADDRESS", help="run points on this Dask scheduler (e.g. tcp://host:8786)")
    p.add_argument("-o", "--output", metavar="DIR", help="sweep folder (default: the scenario's output dir + /sweep)")
    p.add_argument("--retry-failed", action="store_true", help="run failed points again when resuming")
    p.add_argument("--report", metavar="REPORT.html", help="write a self-contained HTML report")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(run=run)


def parse_vary(texts: list[str]) -> dict[str, list]:
    vary: dict[str, list] = {}
    for text in texts:
        path, sep, values = text.partition("=")
        if not sep or not path.strip() or not values.strip():
            raise InputError(None, "--vary", f"expected PATH=V1,V2,... (e.g. hardware.whatif.a100.count=2,4), got {text!r}")
        vary[path.strip()] = [parse_value(v.strip()) for v in values.split(",")]
    return vary


def run(args) -> int:
    scenario = load_scenario(args.scenario, args.set)
    vary = parse_vary(args.vary) if args.vary else scenario.vary
    if not vary:
        raise InputError(args.scenario, "--vary", "nothing to vary: give --vary PATH=V1,V2 or sweep.vary in the scenario")
    for path, values in vary.items():  # a bad path fails here, once, not at every point
        try:
            set_path(copy.deepcopy(scenario.data), path, values[0])
        except InputError as exc:
            raise InputError(args.scenario, f"--vary {path}", exc.problem) from None
    # before the work: a bad output path fails at once, in one line naming the option
    folder = output_folder(args.output, "--output") if args.output else output_folder(scenario.output_dir / "sweep", "output.dir")
    writable(args.report, "report", "--report")
    workers = args.workers or os.cpu_count() or 1
    total = len(grid(vary))

    def on_row(row: dict, done: int, total: int) -> None:
        if args.progress and not args.json:
            what = ", ".join(f"{p.rsplit('.', 1)[-1]}={v}" for p, v in row["params"].items())
            result = (f"{fmt(row.get('simulated_throughput') or row.get('predicted_throughput'), 5)} samples/s"
                      if row["status"] == "ok" else f"[red]{row['status']}[/red]: {row.get('error')}")
            progress_console.print(f"[{done}/{total}] {what}: {result} ({row['seconds']:.1f} s)", highlight=False)

    where = f"Dask at {args.dask}" if args.dask else f"{workers} local process{'es' if workers > 1 else ''}"
    if args.progress and not args.json:
        progress_console.print(f"sweep of {total} points on {where}, rows in {folder / 'sweep.jsonl'}", highlight=False)
    result = run_sweep(scenario.data, scenario.source, vary, folder, workers=workers, dask=args.dask,
                       retry_failed=args.retry_failed, on_row=on_row)
    varied = list(vary)
    plot = folder / "sweep.png"
    sweep_plot(result.rows, varied, plot, f"{scenario.name}: throughput against {', '.join(p.rsplit('.', 1)[-1] for p in varied)}")
    if args.report:
        sweep_page(scenario.name, result.rows, varied, plot).write(args.report)
    if args.json:
        print_json({"rows": result.rows, "ran": result.ran, "skipped": result.skipped, "folder": str(folder)})
        return 0
    table = Table(title=f"{scenario.name}: {len(result.rows)} points ({result.ran} run now, {result.skipped} from before)")
    for p in varied:
        table.add_column(p.rsplit(".", 1)[-1] if len(p) > 24 else p, justify="right")
    for header, _ in SWEEP_COLUMNS:
        table.add_column(header, justify="left" if header in ("status", "bottleneck") else "right")
    for row in result.rows:
        table.add_row(*[fmt(row["params"][p]) for p in varied], *sweep_cells(row),
                      style="red" if row["status"] != "ok" else None)
    console.print(table)
    written = [result.jsonl, result.csv, plot] + ([Path(args.report)] if args.report else [])
    console.print("wrote " + ", ".join(map(str, written)), highlight=False)
    failed = sum(1 for r in result.rows if r["status"] != "ok")
    return 1 if failed == len(result.rows) else 0
