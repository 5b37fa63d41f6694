"""``pipesim run SCENARIO.yaml``: build, solve, evaluate, simulate, report.

Prints one row per device (nodes, compute, communication, memory, load) and a
summary (predicted beside simulated time-per-pass and throughput, latency,
bottleneck, bubble, utilisation, cost), and writes into the output folder
``result.json``, ``split.json`` (paper split format), ``trace.json`` (Chrome
trace events), ``gantt.png``, ``loads.png`` and, on request, ``report.html``
(``--report FILE`` or ``output.artefacts``).  Each long step is shown on
stderr with its duration.  ``--set PATH=VALUE`` overrides any field of the
scenario (``--set simulate.microbatches=50``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipesim.commands.common import console, print_json
from pipesim.commands.simulate import TRACE_MICROBATCHES
from pipesim.pipeline import Outcome, execute, no_step
from pipesim.placement.formats import write_json, write_split
from pipesim.report.pages import run_page, summary_rows
from pipesim.report.plots import loads_plot
from pipesim.report.tables import device_table
from pipesim.scenario import load_scenario
from pipesim.simulate.gantt import write_gantt
from pipesim.simulate.trace import write_trace

progress_console = Console(stderr=True)


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="run a scenario file: build, solve, simulate, report")
    p.add_argument("scenario", help="scenario file (YAML)")
    add_scenario_options(p)
    p.add_argument("-o", "--output", metavar="DIR", help="output folder (default: the scenario's output.dir)")
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


def write_artefacts(outcome: Outcome, folder: Path, report: Path | None, step) -> dict[str, Path]:
    """Write what the scenario asks for into ``folder``; the files written, by kind."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = set(outcome.scenario.artefacts) | ({"report"} if report else set())
    ev, sim = outcome.result.evaluation, outcome.simulation
    files: dict[str, Path] = {}
    if "result" in wanted:
        files["result"] = folder / "result.json"
        write_json(files["result"], outcome.to_dict())
    if "split" in wanted and ev is not None:
        files["split"] = folder / "split.json"
        write_split(files["split"], ev)
    if sim is not None and "trace" in wanted:
        files["trace"] = folder / "trace.json"
        write_trace(sim.run, files["trace"], TRACE_MICROBATCHES)
    with step("plotting"):
        if sim is not None and ("gantt" in wanted or "report" in wanted):
            files["gantt"] = folder / "gantt.png"
            shown = 2 * sim.minibatch if sim.minibatch else 3 * sim.run.program.stages
            write_gantt(sim.run, files["gantt"], shown,
                        title=f"{outcome.scenario.name}: {sim.schedule}, {sim.comm}, first {min(shown, sim.microbatches)} microbatches")
        if ev is not None and ("plots" in wanted or "report" in wanted):
            files["loads"] = folder / "loads.png"
            loads_plot(ev, sim, files["loads"], f"{outcome.scenario.name}: {outcome.result.method} split, load per device")
    if "report" in wanted:
        files["report"] = report or folder / "report.html"
        files["report"].parent.mkdir(parents=True, exist_ok=True)
        run_page(outcome, files).write(files["report"])
    return files


def run(args) -> int:
    progress = args.progress and not args.json
    step = step_reporter(progress)
    scenario = load_scenario(args.scenario, args.set)
    outcome = execute(scenario, step=step, progress=progress and sys.stderr.isatty())
    folder = Path(args.output) if args.output else scenario.output_dir
    files = write_artefacts(outcome, folder, Path(args.report) if args.report else None, step)
    if args.json:
        print_json({**outcome.to_dict(), "files": {k: str(v) for k, v in files.items()}})
        return 0 if outcome.result.evaluation is not None else 1
    ev = outcome.result.evaluation
    if ev is None:
        console.print(f"[red]{outcome.result.status}[/red]: {outcome.result.message}")
    else:
        console.print(device_table(ev, title=f"{outcome.result.method} split of {outcome.workload.name}"))
        for violation in ev.violations:
            console.print(f"[red]violation:[/red] {violation}")
    console.print(summary_table(outcome))
    if outcome.simulation is not None:
        for o in outcome.simulation.measurements.overflows:
            console.print(f"[red]memory overflow in simulation:[/red] {o.device} needs {o.memory / 2**30:.3g} GiB, has {o.capacity / 2**30:.3g} GiB")
    console.print("wrote " + ", ".join(str(p) for p in files.values()), highlight=False)
    return 0 if ev is not None else 1
