"""``pipesim schedule show|export|compare``: pipeline schedules, timed and exported.

``show NAME --stages P --microbatches M`` runs one iteration of a schedule on
a uniform chain of ``P·V`` virtual stages (:func:`pipesim.simulation.explorer.explore`)
and prints each rank's order (PyTorch's action strings), the makespan, the
bubble and the peak stashed microbatches per rank; ``--json`` and ``--png``.
``export`` writes the orders as PyTorch's compute-only schedule CSV
(``--format torch-csv``), for the uniform chain or for a given split
(``--split SPLIT.json --workload W.json``: ``P`` is its stage count over
``V``; the split is simulated first, so an order that deadlocks on it is an
error, not a file).  ``compare WORKLOAD --stages P --microbatches M`` puts
every flushed schedule on the DP's split side by side.
"""

from __future__ import annotations

from rich.table import Table

from pipesim.commands.common import console, count, load_workload, print_json, writable
from pipesim.errors import InputError, SimulationError
from pipesim.simulation.actions import format_action, write_torch_csv
from pipesim.simulation.explorer import executed_orders, explore
from pipesim.simulation.orders import FLUSHED_SCHEDULES, SCHEDULE_SPECS, rank_orders
from pipesim.simulation.schedules import SCHEDULES

SHOWN = (*FLUSHED_SCHEDULES, "1f1b", "stream")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise __import__("argparse").ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}")
    return value


def _time(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise __import__("argparse").ArgumentTypeError(f"expected a non-negative time, got {text!r}")
    return value


def _common(p, split_allowed: bool) -> None:
    p.add_argument("name", choices=SHOWN, metavar="NAME", help=f"schedule: {', '.join(SHOWN)}")
    p.add_argument("--stages", type=count, metavar="P", help="pipeline ranks (devices)")
    p.add_argument("--microbatches", type=count, required=True, metavar="M", help="microbatches per iteration")
    p.add_argument("--virtual", type=count, metavar="V", help="chunks (virtual stages) per rank (default: the schedule's, 1 or 2)")
    p.add_argument("--forward", type=_time, default=1.0, metavar="F", help="forward time of one virtual stage (default 1)")
    p.add_argument("--backward", type=_time, default=2.0, metavar="B", help="backward time of one virtual stage (default 2)")
    p.add_argument("--weight-fraction", type=_fraction, default=0.5, metavar="X", help="share of the backward that is the weight gradient W (zero-bubble schedules; default 0.5)")
    if split_allowed:
        p.add_argument("--split", metavar="SPLIT.json", help="export the order for this split (P·V stages) instead of a uniform chain")
        p.add_argument("--workload", metavar="W.json", help="the workload of --split")


def register(subparsers) -> None:
    p = subparsers.add_parser("schedule", help="show, export and compare pipeline schedules (F/B/I/W orders per rank)")
    sub = p.add_subparsers(dest="action", required=True, metavar="{show,export,compare}")
    show = sub.add_parser("show", help="time a schedule on a uniform chain and print each rank's order")
    _common(show, split_allowed=False)
    show.add_argument("--json", action="store_true", help="print JSON (makespan, bubble_fraction, peak_in_flight, ranks)")
    show.add_argument("--png", metavar="FILE", help="draw the schedule (one row per rank)")
    show.set_defaults(run=run_show)
    export = sub.add_parser("export", help="write a schedule's per-rank orders for PyTorch's pipeline runtime")
    _common(export, split_allowed=True)
    export.add_argument("--format", choices=("torch-csv",), default="torch-csv", help="torch-csv: _PipelineScheduleRuntime._load_csv's compute-only CSV")
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the CSV")
    export.set_defaults(run=run_export)
    compare = sub.add_parser("compare", help="every flushed schedule on the DP split of a training workload")
    compare.add_argument("workload", help="training workload file")
    compare.add_argument("--stages", type=count, required=True, metavar="P", help="pipeline devices")
    compare.add_argument("--microbatches", type=count, required=True, metavar="M", help="microbatches per iteration")
    compare.add_argument("--virtual", type=count, default=2, metavar="V", help="chunks per device where a schedule takes any (default 2)")
    compare.add_argument("--weight-fraction", type=_fraction, metavar="X", help="weight-gradient share of the backward (default 0.5)")
    compare.add_argument("--png", metavar="FILE", help="plot iteration time, bubble and activation memory per schedule")
    compare.add_argument("--json", action="store_true", help="print JSON rows")
    compare.set_defaults(run=run_compare)


def _explore(args):
    if args.stages is None:
        raise InputError(None, "--stages", "is required without --split")
    try:
        return explore(args.name, args.stages, args.microbatches, args.virtual, args.forward, args.backward, args.weight_fraction)
    except SimulationError as exc:
        raise InputError(None, "schedule", str(exc)) from None


def run_show(args) -> int:
    writable(args.png, "drawing", "--png")  # before the work: a bad path fails at once
    run = _explore(args)
    if args.png:
        from pipesim.simulation.gantt import write_gantt

        write_gantt(run.result.run, args.png, title=f"{run.schedule}: {run.ranks} ranks, {run.microbatches} microbatches, {run.virtual} chunk(s) per rank; makespan {run.makespan:g}",
                    unit="the chain's time unit")
    if args.json:
        print_json(run.to_dict())
        return 0
    spec = SCHEDULE_SPECS.get(run.schedule)
    console.print(f"[bold]{run.schedule}[/bold]: {run.ranks} ranks × {run.virtual} chunk(s), {run.microbatches} microbatches, "
                  f"F={args.forward:g}, B={args.backward:g} per virtual stage" + (f", W = {args.weight_fraction:g}·B" if run.result.weight_fraction is not None else ""))
    table = Table(show_header=True)
    table.add_column("rank", justify="right")
    table.add_column("peak stashed", justify="right")
    table.add_column("order (stage, kind, microbatch)")
    for r, order in enumerate(run.orders):
        table.add_row(str(r), str(run.peak_in_flight[r]), " ".join(format_action(a) for a in order))
    console.print(table)
    predicted = f" (predicted {run.predicted_iteration_time:g})" if run.predicted_iteration_time is not None else ""
    console.print(f"makespan {run.makespan:g}{predicted}; bubble {100 * run.bubble_fraction:.1f}% (idle / (ranks × makespan))")
    if spec:
        console.print(f"[dim]bubble: {spec.bubble}; memory: {spec.memory}[/dim]")
    if args.png:
        console.print(f"schedule drawn to {args.png}")
    return 0


def run_export(args) -> int:
    out = writable(args.output, "schedule CSV", "--output")
    if args.split or args.workload:
        if not (args.split and args.workload):
            raise InputError(None, "--split", "needs --workload too (and the other way round)")
        from pipesim.simulation.simulator import simulate

        workload = load_workload(args.workload)
        from pipesim.api import load_split

        split = load_split(args.split, workload)
        spec = SCHEDULE_SPECS.get(args.name)
        v = args.virtual or (spec.default_virtual if spec else 1)
        try:
            result = simulate(workload, split, schedule=args.name, microbatches=args.microbatches, minibatch=args.microbatches,
                              virtual_stages=v, weight_fraction=args.weight_fraction)
        except SimulationError as exc:
            raise InputError(args.split, None, str(exc)) from None
        spec_orders = SCHEDULE_SPECS.get(args.name)
        # the run completed, so the schedule's orders run on this split without deadlock
        orders = (rank_orders(args.name, result.run.program.stages, args.microbatches, v) if spec_orders
                  else executed_orders(result.run, False))
    else:
        orders = _explore(args).orders
    write_torch_csv(orders, out)
    console.print(f"{len(orders)} ranks' orders written to {out} (PyTorch compute-only CSV)")
    return 0


def run_compare(args) -> int:
    from pipesim.simulation.schedule_comparison import (
        compare_schedules,
        schedule_table,
        write_schedule_plot,
    )

    writable(args.png, "plot", "--png")
    workload = load_workload(args.workload)
    if not workload.graph.is_training:
        raise InputError(args.workload, None, "pipeline schedules need a training graph (with backward nodes)")
    rows = compare_schedules(workload, args.stages, args.microbatches, virtual=args.virtual, weight_fraction=args.weight_fraction)
    if args.png:
        write_schedule_plot(rows, args.png, f"{workload.name}: {args.stages} devices, {args.microbatches} microbatches")
    if args.json:
        print_json([r.to_dict() for r in rows])
        return 0
    table = schedule_table(rows, f"{workload.name}: {args.stages} devices, {args.microbatches} microbatches per "
                                 "iteration (DP splits)")
    console.print(table)
    if args.png:
        console.print(f"plot written to {args.png}")
    return 0


__all__ = ["SCHEDULES", "register"]
