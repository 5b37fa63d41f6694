"""``pipesim compare WORKLOAD.json|SCENARIO.yaml [--methods ...] [--latency] [--json|--csv]``: the paper's table.

One row per method (DP, PipeDream-style, local search, METIS partitioner,
single accelerator, expert split, and the IPs on request): max-load, ratio to
the DP's optimum, devices used, contiguous or not, solve time.  ``--latency``
adds the latency table (latency IP, greedy, and the latency of every
throughput split).  The table logic is :mod:`pipesim.comparison`.

Inputs are loaded through :data:`LOADERS` (file suffix -> loader returning
the workload and the comparison options it implies): paper JSON, and
scenario files (:mod:`pipesim.scenario`; their ``solve.options`` of a
baseline, e.g. ``expert`` or ``restarts``, apply unless given on the
command line).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pipesim.commands.common import console, load_workload, positive_int, print_json
from pipesim.comparison import (
    DEFAULT_METHODS,
    LATENCY,
    MAX_LOAD,
    METHODS,
    Options,
    compare,
    comparison_table,
    rows_to_csv,
)
from pipesim.placement.formats import InputError
from pipesim.placement.workload import Workload


def _paper_json(path: Path) -> tuple[Workload, Options]:
    return load_workload(str(path)), Options()


def _scenario(path: Path) -> tuple[Workload, Options]:
    from pipesim.pipeline import (
        load_for_compare,  # scenario files (pipesim run's format)
    )

    return load_for_compare(path)


#: file suffix -> loader of (workload, options).
LOADERS: dict[str, Callable[[Path], tuple[Workload, Options]]] = {".json": _paper_json, ".yaml": _scenario, ".yml": _scenario}


def _methods(text: str) -> list[str]:
    names = [m.strip().replace("-", "_") for m in text.split(",") if m.strip()]
    for name in names:
        if name not in METHODS:
            raise InputError(None, "--methods", f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    return names


def _ids(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise InputError(None, "--pipedream-ignore", f"expected comma-separated node ids, got {text!r}") from None


def register(subparsers) -> None:
    p = subparsers.add_parser("compare", help="every method on one workload: max-load, ratio to the optimum, time")
    p.add_argument("workload", help="workload file (paper JSON) or scenario file (YAML)")
    p.add_argument("--methods", default=None, metavar="M1,M2",
                   help=f"methods to run (default: {','.join(DEFAULT_METHODS)}; all: {','.join(METHODS)})")
    p.add_argument("--expert", metavar="SPLIT.json", help="a split file to score as the 'expert' row")
    p.add_argument("--restarts", type=positive_int, default=None, help="local-search restarts (default 10)")
    p.add_argument("--seed", type=positive_int, default=None, help="seed of local search and partitioner (default 0)")
    p.add_argument("--time-limit", type=float, default=None, metavar="S",
                   help="seconds allowed to each IP and to the local search")
    p.add_argument("--method-timeout", type=float, default=None, metavar="S",
                   help="abandon any method still running after S seconds (its row says so)")
    p.add_argument("--pipedream-ignore", default="", metavar="IDS",
                   help="nodes whose out-edges PipeDream-style fusion ignores (input layers)")
    p.add_argument("--latency", action="store_true", help="also the latency table (inference graphs)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    out.add_argument("--csv", action="store_true", help="print CSV")
    p.set_defaults(run=run)


def run(args) -> int:
    path = Path(args.workload)
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise InputError(path, None, f"unsupported input type {path.suffix!r}; expected one of {', '.join(LOADERS)}")
    workload, options = loader(path)
    options = replace(
        options,
        expert=Path(args.expert) if args.expert else options.expert,
        restarts=options.restarts if args.restarts is None else args.restarts,
        seed=options.seed if args.seed is None else args.seed,
        time_limit=options.time_limit if args.time_limit is None else args.time_limit,
        method_timeout=args.method_timeout,
        ignore_sources=_ids(args.pipedream_ignore) or options.ignore_sources,
    )
    if args.methods:
        methods = _methods(args.methods)
    else:
        methods = [m for m in DEFAULT_METHODS if m != "expert" or options.expert is not None]
    comparison = compare(workload, methods, options, latency=args.latency)
    if args.json:
        print_json(comparison.to_dict())
    elif args.csv:
        sys.stdout.write(rows_to_csv([comparison]))
    else:
        console.print(comparison_table(comparison, MAX_LOAD))
        if args.latency and comparison.by_objective(LATENCY):
            console.print(comparison_table(comparison, LATENCY))
        for method, reason in comparison.skipped.items():
            console.print(f"[yellow]skipped {method}:[/yellow] {reason}")
    return 0
