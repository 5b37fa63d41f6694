"""Benchmark: the MILPs on the paper's workloads, CBC and HiGHS side by side.

    python -m benchmarks.milp [--time-limit 60] [--latency-time-limit 600]
                              [--solvers highs,cbc] [--only NAME ...] [--dp] [--json OUT.json]

Throughput (``throughput/LayerGraphs``): the contiguous IP and the
non-contiguous IP; with ``--dp`` both start from the DP's split and the DP's
optimum is shown.  Latency (``latency/LayerGraphs``): the greedy, then the
latency IP (q = 1) starting from it.  Each row: objective (max-load or
latency, always the evaluator's), best bound, gap, status and seconds.

Targets (issue 4): on bert24 inference and training the contiguous IP proves
the DP optimum (gap < 1e-6) within 60 s; the non-contiguous IP is no worse
than the DP; the latency IP is no worse than the greedy within 10 minutes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipesim.placement.formats import read_paper_workload
from pipesim.placement.latency import solve_latency_greedy, solve_latency_ip
from pipesim.placement.milp import solve_ip
from pipesim.placement.mip_backend import SOLVERS

PAPER = Path(__file__).resolve().parents[2] / "shared" / "workloads" / "paper"
THROUGHPUT = ["bert24_inference", "bert24_training", "gnmt_inference", "gnmt_training"]
LATENCY = ["bert24_inference", "gnmt_inference", "resnet50_inference", "inceptionv3_inference"]


def _row(kind: str, name: str, method: str, solver: str, value, bound, gap, status: str, seconds: float) -> dict:
    return {"kind": kind, "workload": name, "method": method, "solver": solver, "objective": value,
            "bound": bound, "gap": gap, "status": status, "seconds": round(seconds, 2)}


def throughput_rows(name: str, solvers, time_limit: float, with_dp: bool, console: Console):
    workload = read_paper_workload(PAPER / "throughput" / "LayerGraphs" / f"{name}.json")
    start = None
    if with_dp:
        from pipesim.placement.dp.solve import solve_dp

        dp = solve_dp(workload)
        start = dp.evaluation.split
        yield _row("max-load", name, "dp", "-", dp.max_load, dp.bound, dp.gap, dp.status, dp.seconds)
    for contiguous in (True, False):
        for solver in solvers:
            console.log(f"{name}: {'contiguous' if contiguous else 'non-contiguous'} IP on {solver}")
            r = solve_ip(workload, contiguous=contiguous, solver=solver, time_limit=time_limit, warm_start=start)
            method = "ip" if contiguous else "ip-noncontiguous"
            yield _row("max-load", name, method, solver, r.max_load, r.bound, r.gap, r.status, r.seconds)


def latency_rows(name: str, solvers, time_limit: float, console: Console):
    workload = read_paper_workload(PAPER / "latency" / "LayerGraphs" / f"{name}.json")
    greedy = solve_latency_greedy(workload)
    yield _row("latency", name, "greedy", "-", greedy.latency, None, None, greedy.status, greedy.seconds)
    for solver in solvers:
        console.log(f"{name}: latency IP on {solver}")
        r = solve_latency_ip(workload, solver=solver, time_limit=time_limit)
        yield _row("latency", name, "latency-ip", solver, r.latency, r.bound, r.gap, r.status, r.seconds)


def _fmt(x) -> str:
    if x is None:
        return "-"
    return f"{x:.3e}" if isinstance(x, float) and 0 < abs(x) < 1e-3 else f"{x:.10g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per throughput IP (default 60)")
    parser.add_argument("--latency-time-limit", type=float, default=600.0, help="seconds per latency IP (default 600)")
    parser.add_argument("--solvers", default=",".join(SOLVERS), help="comma-separated backends (default: all)")
    parser.add_argument("--only", nargs="*", help="workload names to run (default: all listed in the module)")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--dp", action="store_true", help="warm-start the throughput IPs from the DP")
    parser.add_argument("--json", metavar="OUT.json", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    solvers = args.solvers.split(",")
    console = Console(stderr=True)
    rows: list[dict] = []
    if not args.skip_throughput:
        for name in THROUGHPUT:
            if not args.only or name in args.only:
                rows += throughput_rows(name, solvers, args.time_limit, args.dp, console)
    if not args.skip_latency:
        for name in LATENCY:
            if not args.only or name in args.only:
                rows += latency_rows(name, solvers, args.latency_time_limit, console)
    table = Table(title="MILPs on the paper's LayerGraphs")
    columns = ("kind", "workload", "method", "solver", "objective", "bound", "gap", "status", "seconds")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(row[c] if isinstance(row[c], str) else _fmt(row[c]) for c in columns))
    Console(width=160).print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
