"""``pipesim run SCENARIO.yaml``: build, solve, evaluate, simulate, report.

Prints one row per device (nodes, compute, communication, memory, load) and a
summary (predicted beside simulated time-per-pass and throughput, latency,
bottleneck, bubble, utilisation, cost), and writes into the output folder
what :func:`pipesim.artefacts.write_artefacts` writes (``result.json``,
``split.json``, ``workload.json``, ``trace.json``, ``gantt.png``,
``loads.png``, ``report.html``).  Each long step is shown on stderr with its
duration.  ``--set PATH=VALUE`` overrides any field of the scenario
(``--set simulate.microbatches=50``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipesim.artefacts import write_artefacts
from pipesim.commands import EXIT_INFEASIBLE
from pipesim.commands.common import console, print_json, writable
from pipesim.errors import InputError
from pipesim.output import output_folder
from pipesim.pipeline import Outcome, execute, no_step
from pipesim.placement.interrupt import interruptible
from pipesim.report.pages import (
    PLAN_COLUMNS,
    SCHEDULE_COLUMNS,
    plan_cells,
    plan_summary_rows,
    schedule_cells,
    summary_rows,
)
from pipesim.report.tables import device_table, print_table
from pipesim.scenario import load_scenario

progress_console = Console(stderr=True)


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="run a scenario file: build, solve, simulate, report")
    p.add_argument("scenario", help="scenario file (YAML)")
    add_scenario_options(p)
    p.add_argument("-o", "--output", metavar="DIR", help="output folder (default: the scenario's output.dir; created if missing)")
    p.add_argument("--report", metavar="REPORT.html", help="also write a self-contained HTML report here")
    p.add_argument("--json", action="store_true", help="print result.json's content instead of tables")
    p.set_defaults(run=run)


def add_scenario_options(p) -> None:
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="override a scenario field, e.g. simulate.microbatches=50 or hardware.whatif.a100.count=4")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress lines on stderr")


def step_reporter(enabled: bool):
    """``with step("solving"):`` — a spinner on a terminal, a line with the duration otherwise."""
    if not enabled:
        return no_step

    @contextmanager
    def step(label: str) -> Iterator[None]:
        started = time.perf_counter()
        if progress_console.is_terminal:
            with progress_console.status(label + " …"):
                yield
        else:
            yield
        progress_console.print(f"[dim]{label}: {time.perf_counter() - started:.2f} s[/dim]", highlight=False)

    return step


def summary_table(outcome: Outcome) -> Table:
    table = Table(title=f"{outcome.scenario.name}: summary")
    for header in ("", "model", "simulated"):
        table.add_column(header, justify="left" if not header else "right")
    for row in summary_rows(outcome.summary()):
        table.add_row(*row)
    return table


def _print_plan(outcome: Outcome, files: dict, as_json: bool) -> int:
    plan = outcome.plan
    if as_json:
        print_json({**outcome.to_dict(), "files": {k: str(v) for k, v in files.items()}})
        return 0 if plan.feasible else EXIT_INFEASIBLE
    if plan.stages:
        s = outcome.scenario
        per_node = s.cluster.nodes[0][0].devices if s.cluster is not None else outcome.planning.devices
        names = {layer.id: layer.name or str(layer.id) for layer in outcome.planning.layers}
        table = Table(title=f"{s.name}: {plan.objective} plan on {s.cluster.name if s.cluster else 'the devices'}")
        for header in PLAN_COLUMNS:
            table.add_column(header, justify="left" if header in ("layers", "GPUs (node:gpu)") else "right")
        for i, stage in enumerate(plan.stages):
            table.add_row(*plan_cells(i, stage, names, per_node))
        print_table(console, table)
    if plan.reason:
        console.print(f"[{'red' if not plan.feasible else 'yellow'}]{plan.status}:[/] {escape(plan.reason)}")
    summary = Table(title=f"{outcome.scenario.name}: summary")
    for header in ("", "model", "simulated"):
        summary.add_column(header, justify="left" if not header else "right")
    for row in plan_summary_rows(outcome.summary()):
        summary.add_row(*row)
    console.print(summary)
    if outcome.plan_simulation is not None:
        for note in outcome.plan_simulation.contention:
            console.print(f"[yellow]contention:[/yellow] {escape(note)}")
    console.print("wrote " + ", ".join(str(p) for p in files.values()), highlight=False)
    return 0 if plan.feasible else EXIT_INFEASIBLE


def _run_megatron(args, data: dict) -> int:
    """An LLM scenario (``solve: {method: plan, options: {objective: megatron, gbs: …}}``): the planner's pick
    (docs/model.md §11.9), simulated by the discrete-event simulator (§11.10); ``result.json`` in the output folder.
    The work is :func:`pipesim.llm_scenario.run_llm_scenario` (the same from Python: :func:`pipesim.run_scenario`)."""
    from pipesim.commands.estimate import table
    from pipesim.llm_scenario import run_llm_scenario

    if args.set:
        raise InputError(args.scenario, "--set", "not supported for LLM (objective: megatron|time|cost) scenarios")
    step = step_reporter(args.progress and not args.json)
    outcome = run_llm_scenario(args.scenario, args.output or True, data=data, step=step)
    if args.json:
        print_json({**outcome.to_dict(), "files": outcome.files})
        return 0
    plan, simulation = outcome.plan, outcome.simulation
    if hasattr(plan, "best"):
        console.print(table(plan.best, outcome.scenario))
        searched = f"searched {plan.searched} configurations in {plan.seconds:.2f} s"
        notes = plan.notes  # e.g. no runnable configuration fits: the pick is a per-stage plan
    else:  # objective time|cost: the heterogeneous plan (docs/model.md §12.7)
        from pipesim.commands.hetero_plan import print_plan

        print_plan(plan, outcome.scenario, data["hardware"]["cluster"], data["solve"]["options"]["objective"])
        searched, notes = "", ()  # the plan's table says it
    console.print(f"simulated iteration: {simulation.simulated_iteration_time:.4f} s "
                  f"({simulation.difference:+.2%} against the model's {plan.iteration_time:.4f} s)"
                  + (f"; {searched}" if searched else ""))
    for note in notes:
        console.print(f"note: {note}")
    if outcome.files:
        console.print("wrote " + ", ".join(outcome.files.values()), highlight=False)
    return 0


def _run_hetero(args, data: dict) -> int:
    """A heterogeneous scenario (``model: {sailor: CONFIG}``): the planner's plan across GPU types and zones
    (docs/model.md §12.4), run as events (§12.6); ``result.json`` in the output folder.
    The work is :func:`pipesim.hetero_scenario.run_hetero_scenario` (from Python: :func:`pipesim.run_scenario`)."""
    from pipesim.hetero_scenario import run_hetero_scenario

    for option in ("set", "report"):
        if getattr(args, option, None):
            raise InputError(args.scenario, f"--{option}", "not supported for heterogeneous (model: sailor) scenarios")
    step = step_reporter(args.progress and not args.json)
    with interruptible():
        outcome = run_hetero_scenario(args.scenario, args.output or True, data=data, step=step)
    if args.json:
        print_json({**outcome.to_dict(), "files": outcome.files})
        return 0
    from pipesim.commands.hetero_plan import print_plan

    s, plan = outcome.summary(), outcome.plan
    print_plan(plan, outcome.scenario, data["hardware"]["cluster"] if isinstance(data.get("hardware"), dict) else "",
               plan.objective)
    console.print(f"simulated iteration: {s['simulated_iteration_time']:.4f} s ({s['difference']:+.2%} against the "
                  f"model's {s['iteration_time']:.4f} s)")
    console.print("wrote " + ", ".join(str(p) for p in outcome.files.values()), highlight=False)
    return 0


def run(args) -> int:
    from pipesim.hetero_scenario import hetero_scenario_data
    from pipesim.llm_scenario import llm_scenario_data

    llm = llm_scenario_data(args.scenario)
    if llm is not None:
        return _run_megatron(args, llm)
    hetero = hetero_scenario_data(args.scenario)
    if hetero is not None:
        return _run_hetero(args, hetero)
    progress = args.progress and not args.json
    step = step_reporter(progress)
    scenario = load_scenario(args.scenario, args.set)
    # before the work: a bad output path fails at once, in one line naming the option
    folder = output_folder(args.output, "--output") if args.output else output_folder(scenario.output_dir, "output.dir")
    writable(args.report, "report", "--report")
    with interruptible():
        outcome = execute(scenario, step=step, progress=progress and sys.stderr.isatty())
    files = write_artefacts(outcome, folder, Path(args.report) if args.report else None, step)
    if outcome.plan is not None:
        return _print_plan(outcome, files, args.json)
    if args.json:
        print_json({**outcome.to_dict(), "files": {k: str(v) for k, v in files.items()}})
        return 0 if outcome.result.evaluation is not None else EXIT_INFEASIBLE
    ev = outcome.result.evaluation
    if ev is None:
        console.print(f"[red]{outcome.result.status}[/red]: {escape(outcome.result.message)}")
    else:
        sim = outcome.simulation
        print_table(console, device_table(ev, title=f"{outcome.result.method} split of {outcome.workload.name}",
                                          graph=outcome.workload.graph, overflows=sim.measurements.overflows if sim else (),
                                          schedule=sim.schedule if sim else None))
        for violation in ev.violations:
            console.print(f"[red]violation:[/red] {escape(violation)}")
    console.print(summary_table(outcome))
    if outcome.schedules:
        table = Table(title=f"{outcome.scenario.name}: schedules compared (times in ms per iteration)")
        for header in SCHEDULE_COLUMNS:
            table.add_column(header, justify="left" if header in ("schedule", "placement") else "right",
                             no_wrap=header == "schedule")
        for row in outcome.schedules:
            table.add_row(*schedule_cells(row))
        console.print(table)
    if outcome.simulation is not None:
        for warning in outcome.simulation.measurements.warnings:
            console.print(f"[yellow]simulation warning:[/yellow] {escape(warning)}")
        warning = outcome.summary().get("warning")
        if warning:
            console.print(f"[bold red]{escape(warning)}[/bold red]")
    console.print("wrote " + ", ".join(str(p) for p in files.values()), highlight=False)
    return 0 if ev is not None else EXIT_INFEASIBLE
