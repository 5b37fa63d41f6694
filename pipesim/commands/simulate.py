"""``pipesim simulate WORKLOAD.json SPLIT.json``: run a split on a microbatch stream.

Prints the predicted (evaluator max-load) and simulated steady-state
time-per-sample side by side, latency, bubbles and per-device figures; writes
a Chrome trace and a Gantt chart on request.  ``--json`` puts
``predicted_time_per_sample`` and ``simulated_time_per_sample`` at top level.
"""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from pipesim.api import load_split
from pipesim.commands import hetero_plan, hetero_simulate
from pipesim.commands.common import (
    arg,
    console,
    count,
    load_workload,
    print_json,
    writable,
)
from pipesim.errors import InputError, SimulationError
from pipesim.hardware.units import format_bytes
from pipesim.placement.options import Float
from pipesim.simulation import COMM_MODES, PLACEMENTS, SCHEDULES, simulate
from pipesim.simulation.gantt import GANTT_FORMATS, write_gantt
from pipesim.simulation.orders import SCHEDULE_SPECS
from pipesim.simulation.summary import device_stats_table, summary_table
from pipesim.simulation.trace import TRACE_MICROBATCHES, write_trace


def register(subparsers) -> None:
    p = subparsers.add_parser("simulate", help="simulate a split on a stream of microbatches")
    p.add_argument("workload", help="workload file (paper or native JSON)")
    p.add_argument("split", help="split file (paper split format, as solve -o writes it)")
    p.add_argument("--schedule", choices=SCHEDULES, help="default: stream for inference, 1f1b for training")
    p.add_argument("--microbatches", type=count, metavar="N", help="microbatches to run (default 20 x stages)")
    p.add_argument("--minibatch", type=count, metavar="M", help="microbatches per iteration of the flushed schedules (default 4 x stages)")
    p.add_argument("--virtual-stages", type=count, default=None, metavar="V",
                   help="chunks per device: the split's P·V stages fold onto P devices (required by the interleaved "
                   "schedules; zbv and dualpipev run 2; default 1)")
    p.add_argument("--weight-fraction", type=arg(Float(minimum=0.0), "--weight-fraction"), metavar="X",
                   help="share of each backward that is the weight gradient W (zero-bubble schedules; default 0.5)")
    p.add_argument("--placement", choices=PLACEMENTS, help="how chunks fold onto devices (default: the schedule's)")
    p.add_argument("--in-flight", type=count, metavar="W", help="stream: at most W microbatches in flight (default depth + 1)")
    p.add_argument("--comm", choices=COMM_MODES, default="paper", help="paper: transfers block the device (the solver's model); overlap: they run on links")
    p.add_argument("--trace", metavar="RUN.json", help=f"write a Chrome trace-event file of the first {TRACE_MICROBATCHES} microbatches (Perfetto, chrome://tracing)")
    p.add_argument("--gantt", metavar="RUN.png", help="write a Gantt chart of the first microbatches")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    hetero_simulate.add_arguments(p)
    p.set_defaults(run=run)


def _virtual_stages(schedule: str | None, given: int | None) -> int:
    """``--virtual-stages``, or the schedule's fixed count; an interleaved schedule needs it said."""
    spec = SCHEDULE_SPECS.get(schedule)
    if given is not None:
        return given
    if spec is not None and spec.virtual is None and spec.default_virtual > 1:
        # one chunk per device would silently run plain 1F1B-with-flush under an interleaved name
        raise InputError(None, "--virtual-stages", f"{schedule} folds the split's P·V stages onto P devices, V chunks "
                         f"each: give --virtual-stages V (e.g. {spec.default_virtual} for a split of 2P stages; "
                         "1 runs one chunk per device, the same as 1f1b-flush)")
    return spec.virtual if spec is not None and spec.virtual else 1


def run(args) -> int:
    if hetero_plan.applies(args.workload):  # a Sailor training config and its plan: docs/model.md §12.6
        return hetero_simulate.run(args)
    for option in ("hardware", "profiles", "whatif"):
        if getattr(args, option, None):
            raise InputError(None, f"--{option}", "applies to a Sailor training config and its plan only")
    writable(args.trace, "trace", "--trace")
    if args.gantt:
        if Path(args.gantt).suffix.lower() not in GANTT_FORMATS:
            raise InputError(args.gantt, None, f"unsupported chart format; use one of {', '.join(GANTT_FORMATS)}")
        writable(args.gantt, "Gantt chart", "--gantt")
    virtual = _virtual_stages(args.schedule, args.virtual_stages)
    workload = load_workload(args.workload)
    split = load_split(args.split, workload)
    try:
        result = simulate(
            workload,
            split,
            schedule=args.schedule,
            microbatches=args.microbatches,
            minibatch=args.minibatch,
            in_flight=args.in_flight,
            comm=args.comm,
            virtual_stages=virtual,
            weight_fraction=args.weight_fraction,
            placement=args.placement,
        )
    except SimulationError as exc:
        raise InputError(args.split, None, str(exc)) from None
    stages = result.run.program.stages
    if args.trace:
        write_trace(result.run, args.trace, TRACE_MICROBATCHES)
    if args.gantt:
        shown = 2 * result.minibatch if result.minibatch else 3 * stages
        write_gantt(result.run, args.gantt, shown, title=f"{workload.name}: {result.schedule}, {result.comm}, first {min(shown, result.microbatches)} microbatches")
    if args.json:
        print_json(result.to_dict())
        return 0
    console.print(summary_table(result))
    console.print(device_stats_table(result))
    for o in result.measurements.overflows:
        console.print(f"[red]memory overflow:[/red] {o.device} needs {format_bytes(o.memory)} from time {o.time:.6g} on; it has {format_bytes(o.capacity)}")
    for violation in result.evaluation.violations:
        console.print(f"[red]violation:[/red] {escape(violation)}")
    for warning in result.measurements.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    for note in result.measurements.assumptions:
        console.print(f"[dim]assumed: {escape(note)}[/dim]")
    for what, path in (("trace", args.trace), ("Gantt chart", args.gantt)):
        if path:
            console.print(f"{what} written to {path}")
    return 0
