"""The files a scenario run leaves behind: results, split, workload, trace, charts, report.

:func:`write_artefacts` writes what the scenario's ``output.artefacts`` asks
for into one folder (created if missing): ``result.json`` (everything, with
``max_load`` at top level), ``split.json`` (the paper's split format),
``workload.json`` (the workload that was solved, native format, so that
``pipesim evaluate workload.json split.json`` or ``pipesim simulate`` with
another schedule re-uses it), ``trace.json`` (Chrome trace events),
``gantt.png``, ``loads.png`` and ``report.html``.
"""

from __future__ import annotations

from pathlib import Path

from pipesim.output import output_folder
from pipesim.pipeline import Outcome, Step, no_step
from pipesim.placement.formats import write_json, write_split
from pipesim.simulation.gantt import write_gantt
from pipesim.simulation.trace import TRACE_MICROBATCHES, write_trace
from pipesim.workloads.native import write_native_workload

__all__ = ["write_artefacts"]


def _write_plan(outcome: Outcome, folder: Path, wanted: set, report, step: Step) -> dict[str, Path]:
    """A plan run's files: ``result.json``, ``plan.json`` (for ``pipesim plan --evaluate``), ``plan.png``, the report."""
    from pipesim.report.pages import plan_page
    from pipesim.report.plots import plan_plot

    files: dict[str, Path] = {}
    plan, scenario = outcome.plan, outcome.scenario
    if "result" in wanted:
        files["result"] = folder / "result.json"
        write_json(files["result"], outcome.to_dict())
        files["plan"] = folder / "plan.json"
        write_json(files["plan"], plan.to_dict())
    if plan.stages and ("plots" in wanted or "report" in wanted):
        with step("plotting"):
            per_node = scenario.cluster.nodes[0][0].devices if scenario.cluster else outcome.planning.devices
            files["plan_map"] = folder / "plan.png"
            plan_plot(plan.stages, per_node, outcome.planning.devices, files["plan_map"],
                      f"{scenario.name}: {len(plan.stages)} stages on {plan.devices_used} GPUs")
    if "report" in wanted:
        files["report"] = Path(report) if report else folder / "report.html"
        plan_page(outcome, {"plan": files.get("plan_map", Path())}).write(files["report"])
    return files


def write_artefacts(outcome: Outcome, folder: str | Path, report: str | Path | None = None,
                    step: Step = no_step) -> dict[str, Path]:
    """Write the scenario's artefacts (and the report if ``report`` names a file) into ``folder``.

    Parameters
    ----------
    outcome : Outcome
        From :func:`pipesim.pipeline.execute`.
    folder : str or Path
        Created if missing.
    report : str or Path, optional
        Also write the HTML report there.
    step : callable
        ``with step(label):`` around long steps.

    Returns
    -------
    dict
        Kind (``result``, ``split``, ``workload``, ``trace``, ``gantt``,
        ``loads``, ``report``) -> the file written.

    Raises
    ------
    InputError
        A file cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from pipesim.pipeline import execute
    >>> from pipesim.scenario import scenario_from_data
    >>> scenario = scenario_from_data({"model": {"generator": "transformer", "params": {"layers": 2, "hidden": 64,
    ...                                          "heads": 4, "seq": 16}}, "hardware": {"preset": "a100x8"},
    ...                                "simulate": {"microbatches": 10},
    ...                                "output": {"artefacts": ["result", "split"]}}, "tiny.yaml")
    >>> files = write_artefacts(execute(scenario), Path(tempfile.mkdtemp()))
    >>> sorted(files)
    ['result', 'split']
    """
    from pipesim.report.pages import run_page
    from pipesim.report.plots import loads_plot

    folder = output_folder(folder)
    wanted = set(outcome.scenario.artefacts) | ({"report"} if report else set())
    if outcome.plan is not None:
        return _write_plan(outcome, folder, wanted, report, step)
    ev, sim = outcome.result.evaluation, outcome.simulation
    files: dict[str, Path] = {}
    if "result" in wanted:
        files["result"] = folder / "result.json"
        write_json(files["result"], outcome.to_dict())
    if "split" in wanted and ev is not None:
        files["split"] = folder / "split.json"
        write_split(files["split"], ev)
    if "workload" in wanted:
        files["workload"] = folder / "workload.json"
        write_native_workload(files["workload"], outcome.workload, name=outcome.scenario.name)
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
    if outcome.schedules and ("plots" in wanted or "report" in wanted):
        from pipesim.simulation.schedule_comparison import write_schedule_plot

        files["schedules"] = folder / "schedules.png"
        write_schedule_plot(outcome.schedules, files["schedules"], f"{outcome.scenario.name}: schedules compared")
    if "report" in wanted:
        files["report"] = Path(report) if report else folder / "report.html"
        run_page(outcome, files).write(files["report"])
    return files
