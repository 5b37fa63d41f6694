"""``pipesim solve WORKLOAD.json --method dp|...``: the best split, printed and written.

Every method is a function ``(args, workload) -> PlacementResult`` in
:data:`METHODS`; methods add their own options through :data:`OPTIONS`.
Device counts and memory can be changed from the command line without
editing the workload file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipesim.commands.common import console, load_workload, print_json
from pipesim.commands.ip_method import ip_options, run_ip
from pipesim.hardware.units import BYTES, UnitError, parse
from pipesim.placement.contract import MERGE_MODES
from pipesim.placement.dp import solve_dp
from pipesim.placement.formats import InputError, write_split
from pipesim.placement.result import PlacementResult
from pipesim.placement.workload import Workload
from pipesim.report.tables import device_table


def _solve_dp(args, workload: Workload) -> PlacementResult:
    return solve_dp(
        workload,
        merge=args.merge,
        fuse_layers=args.fuse_layers,
        ideal_limit=args.ideal_limit,
        progress=args.progress,
    )


def _dp_options(p) -> None:
    g = p.add_argument_group("dp")
    g.add_argument("--merge", choices=MERGE_MODES, default="exact",
                   help="zero-cost node merging: exact (default), paper (the paper's, inexact when memory binds), none")
    g.add_argument("--fuse-layers", action="store_true", help="keep all nodes of a layerId together")
    g.add_argument("--ideal-limit", type=int, default=2_000_000, help="stop with an error past this many ideals")


#: method name -> solver taking (args, workload)
METHODS = {"dp": _solve_dp, "ip": run_ip}
#: functions adding each method's options to the parser
OPTIONS = [_dp_options, ip_options]


def register(subparsers) -> None:
    p = subparsers.add_parser("solve", help="find the split with the least max-load")
    p.add_argument("workload", help="workload file")
    p.add_argument("--method", choices=sorted(METHODS), default="dp", help="solver (default: dp, optimal contiguous)")
    p.add_argument("--accelerators", type=int, metavar="K", help="number of accelerators (paper class 'accelerator')")
    p.add_argument("--cpus", type=int, metavar="L", help="number of CPU cores (paper class 'cpu')")
    p.add_argument("--memory", metavar="BYTES", help='memory per accelerator, e.g. 17185374208 or "16GiB"')
    p.add_argument("--devices", action="append", default=[], metavar="CLASS=COUNT",
                   help="number of devices of any class (repeatable)")
    p.add_argument("-o", "--output", metavar="SPLIT.json", help="write the split (paper split format)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    for add in OPTIONS:
        add(p)
    p.set_defaults(run=run, progress=None)


def apply_device_options(workload: Workload, args) -> Workload:
    """The workload with ``--accelerators``, ``--cpus``, ``--memory`` and ``--devices`` applied."""
    changes: dict[str, dict] = {}
    if args.accelerators is not None:
        changes.setdefault("accelerator", {})["count"] = args.accelerators
    if args.cpus is not None:
        changes.setdefault("cpu", {})["count"] = args.cpus
    if args.memory is not None:
        try:
            changes.setdefault("accelerator", {})["memory"] = parse(args.memory, BYTES, "--memory")
        except UnitError as exc:
            raise InputError(None, None, str(exc)) from None
    for item in args.devices:
        name, _, count = item.partition("=")
        if not count.isdigit():
            raise InputError(None, "--devices", f"expected CLASS=COUNT, got {item!r}")
        changes.setdefault(name, {})["count"] = int(count)
    for name, change in changes.items():
        if change.get("count", 0) < 0:
            raise InputError(None, name, "a device count cannot be negative")
    try:
        return workload.with_devices(**changes)
    except KeyError as exc:
        known = ", ".join(dc.name for dc in workload.devices)
        raise InputError(workload.source, "devices", f"{exc.args[0]} (the workload has: {known})") from None


def report(result: PlacementResult, workload: Workload, args) -> None:
    """Print a solver's result (table or JSON) and write its split if asked."""
    if args.output and result.evaluation is not None:
        write_split(Path(args.output), result.evaluation)
    if args.json:
        print_json({"workload": workload.name, **result.to_dict()})
        return
    if result.evaluation is None:
        console.print(f"[red]{result.status}[/red]: {result.message}")
        return
    console.print(device_table(result.evaluation, title=f"{result.method} split of {workload.name}"))
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
    if args.progress is None:
        args.progress = sys.stderr.isatty() and not args.json
    workload = apply_device_options(load_workload(args.workload), args)
    result = METHODS[args.method](args, workload)
    report(result, workload, args)
    return 0 if result.evaluation is not None else 1
