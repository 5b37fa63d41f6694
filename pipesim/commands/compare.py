"""``pipesim compare WORKLOAD.json|SCENARIO.yaml [--methods ...] [--latency] [--json|--csv]``: the paper's table.

One row per method of the registry (DP, PipeDream-style, local search, METIS
partitioner, single accelerator, the expert split given with ``--split``, and
the IPs on request): max-load, ratio to the DP's optimum, devices used,
contiguous or not, solve time.  ``--latency`` adds the latency table (latency
IP, greedy, and the latency of every throughput split).  Method options have
the same flags as in ``pipesim solve``; a scenario file's ``solve.options``
apply unless given on the command line.  The table logic is
:mod:`pipesim.comparison`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.markup import escape

from pipesim.commands.common import (
    add_method_options,
    arg,
    console,
    load_workload,
    print_json,
)
from pipesim.comparison import (
    DEFAULT_METHODS,
    LATENCY,
    MAX_LOAD,
    compare,
    comparison_table,
    rows_to_csv,
)
from pipesim.errors import InputError
from pipesim.placement.interrupt import interruptible
from pipesim.placement.methods import METHODS, get_method
from pipesim.placement.options import Duration

SCENARIO_SUFFIXES = (".yaml", ".yml")


def _methods(text: str) -> list[str]:
    """``--methods``: names separated by commas, or ``all`` (every method of the registry)."""
    if text.strip().lower() == "all":
        return list(METHODS)
    try:
        return [get_method(m.strip()).name for m in text.split(",") if m.strip()]
    except InputError as exc:
        raise InputError(None, "--methods", exc.problem) from None


def register(subparsers) -> None:
    p = subparsers.add_parser("compare", help="every method on one workload: max-load, ratio to the optimum, time")
    p.add_argument("workload", help="workload file (paper or native JSON) or scenario file (YAML)")
    p.add_argument("--methods", default=None, metavar="M1,M2",
                   help=f"methods to run (default: {','.join(DEFAULT_METHODS)}; all: {','.join(METHODS)})")
    p.add_argument("--method-timeout", type=arg(Duration(), "--method-timeout"), default=None, metavar="S",
                   help="abandon any method still running after S seconds (its row says so)")
    p.add_argument("--latency", action="store_true", help="also the latency table (inference graphs)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    out.add_argument("--csv", action="store_true", help="print CSV")
    add_method_options(p, METHODS)
    p.set_defaults(run=run)


def run(args) -> int:
    path = Path(args.workload)
    if path.suffix.lower() in SCENARIO_SUFFIXES:
        from pipesim.pipeline import load_for_compare

        workload, options = load_for_compare(path)
    elif path.suffix.lower() == ".json":
        workload, options = load_workload(path), {}
    else:
        raise InputError(path, None, f"unsupported input type {path.suffix!r}; expected .json (workload) or .yaml (scenario)")
    options.update({k[4:]: v for k, v in vars(args).items() if k.startswith("opt_") and v is not None})
    methods = _methods(args.methods) if args.methods else [m for m in DEFAULT_METHODS if m != "expert" or "split" in options]
    with interruptible():
        comparison = compare(workload, methods, options, latency=args.latency, method_timeout=args.method_timeout)
    if args.methods and not comparison.by_objective(MAX_LOAD) and comparison.skipped:
        # every method asked for was skipped (e.g. partitioner without pymetis): an empty table is no answer
        reasons = "; ".join(f"{m}: {why}" for m, why in comparison.skipped.items())
        raise InputError(None, "--methods", f"no method could run ({reasons})")
    if args.json:
        print_json(comparison.to_dict())
    elif args.csv:
        sys.stdout.write(rows_to_csv([comparison]))
    else:
        console.print(comparison_table(comparison, MAX_LOAD))
        if args.latency and comparison.by_objective(LATENCY):
            console.print(comparison_table(comparison, LATENCY))
        for method, reason in comparison.skipped.items():
            console.print(f"[yellow]skipped {method}:[/yellow] {escape(reason)}")
    return 0
