"""What a run and a sweep report show: the summary rows, and the two HTML pages.

Problem: the terminal and the HTML report must say the same thing, so the
summary (predicted beside simulated time-per-sample and throughput, latency,
bottleneck, bubble, utilisation, cost) is built once, by
:func:`summary_rows`, from :meth:`pipesim.pipeline.Outcome.summary`.
:func:`run_page` and :func:`sweep_page` lay those out with the per-device
tables and the plots (:mod:`pipesim.report.html`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from pipesim.hardware.units import format_bytes
from pipesim.report.html import Page, fmt
from pipesim.report.placement import describe_nodes, pipeline_order

__all__ = ["PLAN_COLUMNS", "SCHEDULE_COLUMNS", "SWEEP_COLUMNS", "plan_cells", "plan_page", "plan_summary_rows",
           "run_page", "schedule_cells", "summary_rows", "sweep_cells", "sweep_page"]

#: A plan's stage table (terminal and HTML): times in ms per microbatch on one replica
PLAN_COLUMNS = ["stage", "layers", "t x d", "GPUs (node:gpu)", "recomputed", "compute ms", "pipeline ms (link)",
                "all-reduce ms", "memory/GPU", "in flight"]


def _gpus(devices, per_node: int) -> str:
    nodes: dict[int, list[int]] = {}
    for d in devices:
        nodes.setdefault(d // per_node, []).append(d % per_node)
    return ", ".join(f"n{n}:{g[0]}-{g[-1]}" if len(g) > 1 else f"n{n}:{g[0]}" for n, g in sorted(nodes.items()))


def plan_cells(i: int, stage, names: dict, per_node: int) -> list[str]:
    """One stage of a plan as table cells (:data:`PLAN_COLUMNS`)."""
    layers = [names.get(v, str(v)) for v in stage.nodes]
    span = layers[0] if len(layers) == 1 else f"{layers[0]} … {layers[-1]} ({len(layers)})"
    recomputed = sum(1 for c in stage.configuration.values() if "recomp" in c.lower())
    link = stage.link_out or stage.link_in
    return [str(i), span, f"{stage.tensor_parallel} x {stage.data_parallel}", _gpus(stage.devices, per_node),
            f"{recomputed}/{len(stage.nodes)}", fmt(stage.compute * 1e3, 4),
            fmt(stage.communication * 1e3, 4) + (f" ({link})" if link else ""),
            fmt((stage.allreduce if stage.allreduce == stage.allreduce else stage.resync) * 1e3, 4),
            format_bytes(stage.memory), str(stage.in_flight)]


def plan_summary_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(what, model, simulated)`` rows of a plan run's summary (:meth:`pipesim.pipeline.Outcome.summary`)."""
    s = summary
    diff = "—" if s["relative_difference"] is None else f"{100 * s['relative_difference']:+.3f}%"
    ms = lambda x: fmt(None if x is None else x * 1e3)  # noqa: E731
    return [
        (f"iteration time (ms; {s['microbatches']} microbatches, 1F1B with flush)", ms(s["predicted_iteration_time"]),
         ms(s["simulated_iteration_time"])),
        ("difference (simulated vs model)", "", diff),
        ("throughput (samples/s)", fmt(s["predicted_throughput"]), fmt(s["simulated_throughput"])),
        ("peak memory per GPU", format_bytes(s["peak_memory_predicted"]) if s["peak_memory_predicted"] else "—",
         format_bytes(s["peak_memory_simulated"]) if s["peak_memory_simulated"] else "—"),
        ("stages (layers, t x d)", s["shape"], ""),
        ("GPUs used", f"{s['devices_used']} of {s['devices']}", ""),
        ("planner", f"{s['objective']}: {s['status']}" + (f" ({s['reason']})" if s.get("reason") else ""), ""),
    ]


def plan_page(outcome, images: dict[str, Path]) -> Page:
    """The report of a ``solve.method: plan`` run: summary, the stages with t x d, the GPU map."""
    s, plan, sim = outcome.scenario, outcome.plan, outcome.plan_simulation
    page = Page(f"pipesim: {s.name}", s.description or str(s.source))
    page.heading("Summary", "model = the flush model (docs/model.md §10); simulated = the plan run as events")
    page.table(["", "model", "simulated"], plan_summary_rows(outcome.summary()))
    per_node = s.cluster.nodes[0][0].devices if s.cluster is not None else outcome.planning.devices
    names = {layer.id: layer.name or str(layer.id) for layer in outcome.planning.layers}
    if plan.stages:
        page.heading("Plan", "stages in pipeline order; times per microbatch on one replica")
        page.table(PLAN_COLUMNS, [plan_cells(i, st, names, per_node) for i, st in enumerate(plan.stages)])
        page.image(images.get("plan", Path()), "which GPU of which node holds what")
    if plan.reason:
        page.text(f"{plan.status}: {plan.reason}")
    if sim is not None:
        page.heading("Simulation", f"{sim.iterations} iterations of {sim.microbatches} microbatches")
        page.table(["stage", "busy ms (replica, own work)", "all-reduce ms model", "all-reduce ms simulated",
                    "memory/GPU model", "memory/GPU simulated"],
                   [[i, b * 1e3, pa * 1e3, sa * 1e3, format_bytes(pm), format_bytes(sm)] for i, (b, pa, sa, pm, sm) in
                    enumerate(zip(sim.busy, sim.predicted_allreduce, sim.simulated_allreduce, sim.predicted_memory,
                                  sim.simulated_memory))])
        for note in sim.contention:
            page.text(f"contention: {note}")
    page.heading("Scenario", "as run, after --set overrides")
    page.code(yaml.safe_dump(s.data, sort_keys=False))
    return page

#: The schedule comparison's columns (terminal and HTML)
SCHEDULE_COLUMNS = ["schedule", "chunks", "placement", "iteration (predicted)", "iteration (simulated)", "difference",
                    "bubble", "peak activations", "peak memory"]


def schedule_cells(row) -> list[str]:
    """One :class:`~pipesim.simulation.schedule_comparison.ScheduleRow` as table cells."""
    if row.error:
        return [row.schedule, str(row.virtual_stages), row.placement, row.error, "", "", "", "", ""]
    diff = "—" if row.difference is None else f"{100 * row.difference:+.2f}%"
    return [row.schedule, str(row.virtual_stages), row.placement, fmt(row.predicted_iteration_time),
            fmt(row.simulated_iteration_time), diff, _pct(row.bubble_fraction),
            "—" if row.peak_activation is None else format_bytes(row.peak_activation), format_bytes(row.peak_memory)]


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


def summary_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(what, predicted by the model, simulated)`` rows of a run's summary.

    Parameters
    ----------
    summary : dict
        :meth:`pipesim.pipeline.Outcome.summary`.

    Returns
    -------
    list of (str, str, str)
    """
    s = summary
    latency = fmt(s["latency"])
    flushed = s.get("predicted_iteration_time") is not None
    per_pass = (f"time per pass (ms; {s['schedule']} iteration ÷ {s.get('minibatch')} microbatches, flush included)"
                if flushed else "time per pass (ms; max-load)")
    rows = [
        (per_pass, fmt(s["predicted_time_per_sample"]), fmt(s["simulated_time_per_sample"])),
        (f"throughput (samples/s; {s['samples_per_pass']} per pass)", fmt(s["predicted_throughput"]),
         fmt(s["simulated_throughput"])),
        ("difference (simulated vs predicted)", "", "—" if s["relative_difference"] is None
         else f"{100 * s['relative_difference']:+.3f}%" + ("" if s.get("settled") is not False else " (not settled)")),
        ("latency of one pass (ms)", latency if s["latency_source"] == "model" else "—",
         latency if s["latency_source"] == "simulation" else "—"),
        *([("max-load (ms; steady state without flushes, the solver's objective)", fmt(s.get("max_load")), "")]
          if flushed else []),
        ("bottleneck device (load)", f"{s['bottleneck']} ({fmt(s['bottleneck_load'])})" if s["bottleneck"] else "—", ""),
        ("devices used", fmt(s["devices_used"]), ""),
        *([(f"iteration time (ms; {s['schedule']}, predicted vs simulated)", fmt(s["predicted_iteration_time"]),
            fmt(s["simulated_iteration_time"]))] if s.get("predicted_iteration_time") is not None else []),
        ("bubble fraction", "", _pct(s["bubble_fraction"])),
        ("mean device utilisation", "", _pct(s["mean_utilisation"])),
    ]
    if s.get("runnable") is not None:
        overflows = s.get("memory_overflows") or []
        held = "static (node memories)" if s.get("memory_model", "static") == "static" else f"{s['memory_model']} in flight"
        rows.append((f"memory under {s['schedule']} (solver's model: {held})", "fits",
                     "fits" if not overflows else "OVERFLOW: " + ", ".join(
                         f"{o['device']} {format_bytes(o['memory'])} > {format_bytes(o['capacity'])}" for o in overflows)))
    if s.get("cost_per_hour") is not None:
        rows.append(("cost per hour / per million samples", f"{fmt(s['cost_per_hour'], 4)} / {fmt(s['cost_per_million_samples'], 4)}", ""))
    rows.append(("solver status", f"{s['method']}: {s['status']}" + ("" if s["feasible"] is not False else " (violations)")
                 + (" — NOT RUNNABLE (memory)" if s.get("runnable") is False else ""), ""))
    return rows


def run_page(outcome, images: dict[str, Path]) -> Page:
    """The report of one ``pipesim run``: summary (model beside simulation), devices, charts.

    Parameters
    ----------
    outcome : Outcome
        From :func:`pipesim.pipeline.execute`.
    images : dict of str to Path
        PNGs to embed by kind (``gantt``, ``loads``); missing files get a note.

    Returns
    -------
    Page
    """
    s = outcome.scenario
    page = Page(f"pipesim: {s.name}", s.description or str(s.source))
    page.heading("Summary", "model = the evaluator's prediction (docs/model.md §2.3); simulated = the discrete-event run (docs/model.md §6)")
    summary = outcome.summary()
    if summary.get("warning"):
        page.warning(summary["warning"])
    page.table(["", "model", "simulated"], summary_rows(summary))
    ev = outcome.result.evaluation
    overflowing = {o.device: o for o in outcome.simulation.measurements.overflows} if outcome.simulation else {}
    if ev is not None:
        page.heading("Devices", "in pipeline order; the bottleneck is highlighted; times in ms per pass")
        bottleneck = ev.bottleneck
        rows, classes = [], []
        graph = outcome.workload.graph
        for d in pipeline_order(ev):
            over = overflowing.get(d.name)
            rows.append([d.name, describe_nodes(graph, d.nodes, limit=120), len(d.nodes), d.compute, d.send, d.receive,
                         d.load, f"{format_bytes(d.memory)} / {format_bytes(d.capacity)}"
                         + (f" (needs {format_bytes(over.memory)} under {outcome.simulation.schedule}: OVERFLOW)"
                            if over else ""), d.contiguous])
            classes.append("bad" if over else "mark" if d is bottleneck and d.load > 0 else "")
        page.table(["device", "holds", "nodes", "compute", "send", "receive", "load", "memory", "contiguous"], rows,
                   classes)
        for v in ev.violations:
            page.text(f"violation: {v}")
    page.image(images.get("loads", Path()), "per-device loads")
    if outcome.schedules:
        page.heading("Schedules", "every flushed schedule on this model: one iteration, predicted (the schedule's order, each action its stage's time) beside simulated")
        page.table(SCHEDULE_COLUMNS, [schedule_cells(row) for row in outcome.schedules])
        page.image(images.get("schedules", Path()), "iteration time, bubble and peak activations per schedule")
    sim = outcome.simulation
    if sim is not None:
        page.heading("Simulation", f"{sim.schedule} schedule, {sim.comm} communication, {sim.microbatches} microbatches")
        page.table(
            ["device", "stage", "pred. load", "sim. load", "compute", "comm", "idle", "utilisation", "peak in flight",
             "peak memory / capacity"],
            [[d.device, d.stage, d.predicted_load, d.simulated_load, d.compute, d.comm, d.idle, _pct(d.utilisation),
              d.peak_in_flight, f"{format_bytes(d.peak_memory)} / {format_bytes(d.capacity)}"]
             for d in sim.measurements.devices],
            ["bad" if d.device in overflowing else "" for d in sim.measurements.devices],
        )
        page.image(images.get("gantt", Path()), "Gantt chart of the first microbatches")
        for note in sim.measurements.assumptions:
            page.text(f"assumed: {note}")
    page.heading("Scenario", "as run, after --set overrides")
    page.code(yaml.safe_dump(s.data, sort_keys=False))
    return page


#: Sweep table columns: (header, summary key).
SWEEP_COLUMNS = (
    ("status", "status"),
    ("pred. ms/pass", "predicted_time_per_sample"),
    ("sim. ms/pass", "simulated_time_per_sample"),
    ("samples/s", "simulated_throughput"),
    ("latency ms", "latency"),
    ("bottleneck", "bottleneck"),
    ("bubble", "bubble_fraction"),
    ("cost/M samples", "cost_per_million_samples"),
)


def sweep_cells(row: dict) -> list[str]:
    """A sweep row's cells for :data:`SWEEP_COLUMNS` (fractions as percentages).

    Examples
    --------
    >>> cells = sweep_cells({"status": "ok", "bubble_fraction": 0.125})
    >>> len(cells) == len(SWEEP_COLUMNS), "12.50%" in cells
    (True, True)
    """
    return [_pct(row.get(key)) if key == "bubble_fraction" else fmt(row.get(key), 5) for _, key in SWEEP_COLUMNS]


def sweep_page(title: str, records: Sequence[dict], varied: Sequence[str], plot: Path | None) -> Page:
    """The sweep report: the plot, then one table row per point (failed points in red).

    Parameters
    ----------
    title : str
    records : sequence of dict
        Sweep rows (:func:`pipesim.sweep.run_point`).
    varied : sequence of str
        The varied field paths, in grid order.
    plot : Path, optional
        A PNG to embed (:func:`pipesim.report.plots.sweep_plot`).

    Returns
    -------
    Page

    Examples
    --------
    >>> rows = [{"params": {"solve.method": "dp"}, "status": "ok", "predicted_time_per_sample": 2.0}]
    >>> "<td>dp</td>" in sweep_page("demo", rows, ["solve.method"], None).render()
    True
    """
    page = Page(f"pipesim sweep: {title}", f"{len(records)} points over {', '.join(varied)}")
    if plot is not None:
        page.image(plot, "sweep plot")
    page.heading("Points")
    headers = [v.rsplit(".", 1)[-1] if len(v) > 24 else v for v in varied] + [h for h, _ in SWEEP_COLUMNS] + ["error"]
    rows, classes = [], []
    for r in records:
        rows.append([r["params"][v] for v in varied] + sweep_cells(r) + [r.get("error") or ""])
        classes.append("bad" if r.get("status") != "ok" else "")
    page.table(headers, rows, classes)
    return page
